"""What the benchmark scripts share, one module a concern (see benchmarks/README.md)."""
