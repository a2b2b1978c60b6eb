"""fl-credit: federated credit scoring on Flower."""
