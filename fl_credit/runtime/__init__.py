"""Running Flower: the simulation engine, the Flower patches, process exit, threads, run log."""
