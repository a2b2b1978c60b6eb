"""Federated histogram gradient boosting (``model=gbm``); see docs/boosting.md."""
