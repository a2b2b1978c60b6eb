"""Credit outputs: metrics, calibration, thresholds, WoE, PSI, odds ratios, reason codes, plots."""
