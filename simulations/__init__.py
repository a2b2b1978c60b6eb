"""Studies built on the application: ``sweeps`` (the Hydra sweep callbacks and the sweep and
threat-matrix reports), ``studies`` (one-off measurements and audits of runs) and ``bench``
(the timing benchmarks, which write ``simulations/results/``)."""
