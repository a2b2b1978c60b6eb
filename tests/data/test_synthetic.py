"""The synthetic loan.csv generator: raw schema, messy formats, determinism, command line."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from fl_credit.data.synthetic import (
    RAW_COLUMNS,
    TRUE_MODEL,
    generate_lending_club_csv,
    main,
    true_default_probability,
)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    return generate_lending_club_csv(tmp_path_factory.mktemp("synth") / "loan.csv", 5_000, 3)


@pytest.fixture(scope="module")
def raw(raw_file) -> pd.DataFrame:
    # Read as text without NA conversion, to see the formats exactly as written.
    return pd.read_csv(raw_file, dtype=str, keep_default_na=False)


def test_raw_schema_has_the_74_columns_in_order(raw):
    assert len(RAW_COLUMNS) == 74
    assert len(set(RAW_COLUMNS)) == 74
    assert list(raw.columns) == list(RAW_COLUMNS)
    assert len(raw) == 5_000


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a = generate_lending_club_csv(tmp_path / "a.csv", n_rows=800, seed=7)
    b = generate_lending_club_csv(tmp_path / "b.csv", n_rows=800, seed=7)
    c = generate_lending_club_csv(tmp_path / "c.csv", n_rows=800, seed=8)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    assert not list(tmp_path.glob(".*partial")), "temporary file left behind"


def test_messy_string_formats(raw):
    assert set(raw["term"]) == {" 36 months", " 60 months"}
    assert raw["int_rate"].str.fullmatch(r"\d+(\.\d+)?%").all()
    util = raw["revol_util"]
    assert util[util != ""].str.fullmatch(r"\d+(\.\d+)?%").all()
    assert {"10+ years", "< 1 year", "1 year", "n/a"} <= set(raw["emp_length"])
    month = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-20\d\d")
    assert raw["issue_d"].map(lambda s: bool(month.fullmatch(s))).all()
    assert raw["zip_code"].str.fullmatch(r"\d{3}xx").all()
    assert raw["addr_state"].str.fullmatch(r"[A-Z]{2}").all()


def test_missing_value_patterns_and_single_valued_policy_code(raw):
    empty = (raw == "").mean()
    for column in ("annual_inc_joint", "dti_joint", "verification_status_joint", "open_acc_6m"):
        assert empty[column] > 0.9, column
    for column in ("desc", "mths_since_last_record", "mths_since_last_delinq"):
        assert empty[column] > 1 / 3, column
    for column in ("loan_amnt", "int_rate", "term", "home_ownership", "loan_status"):
        assert empty[column] == 0, column
    assert set(raw["policy_code"]) == {"1"}
    finished = raw["loan_status"].isin(["Fully Paid", "Charged Off"])
    assert (raw.loc[finished, "next_pymnt_d"] == "").all()


def test_loan_status_mix(raw):
    statuses = set(raw["loan_status"])
    assert {"Fully Paid", "Charged Off", "Current"} <= statuses
    assert any(s.startswith("Late") for s in statuses)
    share_bad = (raw["loan_status"] == "Charged Off").sum() / raw["loan_status"].isin(
        ["Fully Paid", "Charged Off"]
    ).sum()
    assert 0.08 < share_bad < 0.35


def test_policy_variant_statuses_appear_in_a_large_enough_file(tmp_path):
    path = generate_lending_club_csv(tmp_path / "loan.csv", n_rows=60_000, seed=0)
    statuses = set(pd.read_csv(path, usecols=["loan_status"])["loan_status"])
    assert "Does not meet the credit policy. Status:Fully Paid" in statuses


def test_true_model_probability_follows_coefficient_signs():
    base = pd.DataFrame(
        {
            "int_rate": [13.0],
            "term": [36.0],
            "dti": [18.0],
            "annual_inc": [65_000.0],
            "inq_last_6mths": [1.0],
            "home_ownership": ["MORTGAGE"],
        }
    )
    p0 = true_default_probability(base)[0]
    for column, coef in TRUE_MODEL["coefficients"].items():
        moved = base.copy()
        moved[column] = moved[column] + 1.0
        assert np.sign(true_default_probability(moved)[0] - p0) == np.sign(coef), column
    renter = base.assign(home_ownership="RENT")
    assert true_default_probability(renter)[0] > p0


def test_rejects_non_positive_row_count(tmp_path):
    with pytest.raises(ValueError, match="n_rows"):
        generate_lending_club_csv(tmp_path / "x.csv", n_rows=0)


def test_command_line_writes_the_file(tmp_path, capsys):
    out = tmp_path / "sub" / "loan.csv"
    assert main(["--rows", "300", "--seed", "5", "--out", str(out)]) == 0
    assert "300 rows x 74 columns" in capsys.readouterr().out
    again = generate_lending_club_csv(tmp_path / "again.csv", n_rows=300, seed=5)
    assert _digest(out) == _digest(again)
