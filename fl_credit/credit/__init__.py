"""Credit-risk outputs: metrics, calibration, thresholds, WoE, PSI, scorecard, plots."""
