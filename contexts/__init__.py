"""Bounded contexts. They never import each other, nor `shopstream`."""
