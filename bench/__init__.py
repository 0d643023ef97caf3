"""`make bench`: benchmarks that print figures against in-run baselines."""
