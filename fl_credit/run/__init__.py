"""One simulated run: the experiment, baselines, the run folder, its outputs, report and console."""
