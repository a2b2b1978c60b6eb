"""One party's maths: the logistic model, local training, class imbalance."""
