"""Logging, metrics and tracing, each defined once."""
