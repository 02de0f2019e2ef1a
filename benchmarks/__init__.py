"""tokenrouter benchmarks: `make bench` runs them and prints figures (targets are reported)."""
