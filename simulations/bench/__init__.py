"""Benchmarks: timings of secure aggregation, homomorphic encryption, DP training, the engines,
sweeps, deployment and data loading; each writes its JSON to ``simulations/results/``."""
