"""The HTTP edge every context's routes share."""
