"""Benchmarks that print figures: `python -m bench NAME [NAME ...]` runs `bench.NAME.main()`."""
