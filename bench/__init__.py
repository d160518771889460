"""Benchmarks of ShopStream's building blocks against the raw client libraries they sit on."""
