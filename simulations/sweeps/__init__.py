"""Sweep reports: the Hydra multirun callbacks and the self-summarising sweep and threat-matrix
reports (tables, plots, paired intervals) built from the sweep's run folders."""
