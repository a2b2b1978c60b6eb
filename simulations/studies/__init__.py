"""Studies: one command per question (calibration, Newton convergence, the privacy audit of
finished runs, free-rider detection, boosting against logistic regression, Flower's FedXgbBagging
baseline, the floor of a default run, the configuration's import walk)."""
