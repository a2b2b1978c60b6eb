"""Record keys both sides read: the standardiser's, the class weight's."""

SCALER_MEAN = "scaler-mean"
SCALER_STD = "scaler-std"
SCALER_KEYS = (SCALER_MEAN, SCALER_STD, "scaler-low", "scaler-high")
POS_WEIGHT = "pos-weight"
