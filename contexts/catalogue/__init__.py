"""The catalogue bounded context."""
