"""Tests of the identity context."""
