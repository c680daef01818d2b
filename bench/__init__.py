"""Benchmarks and their recorded results (not part of the test suite): ``uv run python -m bench.run``."""
