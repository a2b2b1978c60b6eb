"""Studies: one command per question (calibration, Newton convergence, the privacy audit of
finished runs, free-rider detection, the threat lab's positive controls, boosting against
logistic regression, Flower's FedXgbBagging baseline, the floor of a default run, the
configuration's import walk)."""
