"""Running one experiment and writing its run folder."""
