"""Experiment sweeps: Hydra multirun callbacks and the self-summarising sweep report."""
