"""End-to-end tests: a real `shopstream` process driven over HTTP."""
