"""The Lending Club loan.csv pipeline (GUIDE.md section 1) on generated raw files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from fl_credit.config.errors import DataError
from fl_credit.data.lending_club import (
    CATEGORICAL,
    NA_VALUES,
    STUDY_FEATURES,
    describe_dropped,
    load_lending_club_csv,
    parse_emp_length,
    parse_percent,
    parse_term,
)
from fl_credit.data.synthetic import RAW_COLUMNS, TRUE_MODEL, generate_lending_club_csv

MODEL_COLUMNS = [*STUDY_FEATURES, "loan_status", "addr_state"]


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    return generate_lending_club_csv(tmp_path_factory.mktemp("lc") / "loan.csv", 5_000, 1)


@pytest.fixture(scope="module")
def data(raw_file):
    return load_lending_club_csv(raw_file)


@pytest.fixture(scope="module")
def raw(raw_file) -> pd.DataFrame:
    return pd.read_csv(raw_file, na_values=list(NA_VALUES), keep_default_na=False)


@pytest.fixture(scope="module")
def text(raw_file) -> pd.DataFrame:
    """The raw file as strings, for writing altered copies."""
    return pd.read_csv(raw_file, dtype=str, keep_default_na=False)


def _expected_rows(raw: pd.DataFrame) -> pd.Series:
    finished = raw["loan_status"].isin(["Fully Paid", "Charged Off"])
    return finished & raw[MODEL_COLUMNS].notna().all(axis=1)


def _write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


# --- the happy path -------------------------------------------------------------------------


def test_returns_exactly_the_study_features(data):
    assert list(data.features.columns) == list(STUDY_FEATURES)
    assert len(STUDY_FEATURES) == 17
    assert data.categorical == list(CATEGORICAL)
    assert len(data.categorical) == 3
    for column in data.numeric:
        assert data.features[column].dtype == np.float64, column
    for column in data.categorical:
        assert pd.api.types.is_string_dtype(data.features[column]), column
    assert not data.features.isna().any().any()


def test_keeps_only_complete_finished_loans_with_charged_off_as_1(data, raw):
    keep = _expected_rows(raw)
    assert len(data.target) == int(keep.sum())
    expected = (raw.loc[keep, "loan_status"] == "Charged Off").to_numpy(dtype=np.int64)
    np.testing.assert_array_equal(data.target, expected)
    assert 0 < data.target.mean() < 0.5
    np.testing.assert_array_equal(data.region.to_numpy(), raw.loc[keep, "addr_state"].to_numpy())


def test_parses_the_raw_formats(data, raw):
    kept = raw.loc[_expected_rows(raw)].reset_index(drop=True)
    rate = kept["int_rate"].str.rstrip("%").astype(float)
    np.testing.assert_allclose(data.features["int_rate"], rate)
    util = kept["revol_util"].str.rstrip("%").astype(float)
    np.testing.assert_allclose(data.features["revol_util"], util)
    assert set(data.features["term"]) == {36.0, 60.0}
    years = data.features["emp_length"]
    assert years.between(0, 10).all()
    np.testing.assert_array_equal(years[kept["emp_length"] == "10+ years"], 10.0)
    np.testing.assert_array_equal(years[kept["emp_length"] == "< 1 year"], 0.0)
    np.testing.assert_array_equal(years[kept["emp_length"] == "1 year"], 1.0)


def test_emp_length_na_rows_are_dropped_as_missing(raw_file, data):
    text = pd.read_csv(raw_file, dtype=str, keep_default_na=False)
    finished = text["loan_status"].isin(["Fully Paid", "Charged Off"])
    assert (finished & (text["emp_length"] == "n/a")).sum() > 0
    assert data.features["emp_length"].notna().all()


def test_every_other_column_is_dropped_with_its_reason(data):
    kept = {*STUDY_FEATURES, "loan_status", "addr_state"}
    assert set(data.dropped) == set(RAW_COLUMNS) - kept
    reasons = data.dropped
    for column in ("desc", "mths_since_last_record", "annual_inc_joint", "open_il_24m"):
        assert reasons[column].startswith("missing ") and reasons[column].endswith("> 1/3")
    assert reasons["policy_code"] == "single value (1)"
    for column in ("id", "member_id", "url", "zip_code"):
        assert reasons[column] == "identifier", column
    for column in ("out_prncp", "total_pymnt", "total_rec_prncp", "recoveries", "next_pymnt_d",
                   "last_pymnt_d", "last_credit_pull_d"):  # fmt: skip
        assert reasons[column] == "leaks outcome (post-issuance)", column
    for column in ("grade", "sub_grade", "funded_amnt", "emp_title", "issue_d", "tot_cur_bal"):
        assert reasons[column].startswith("not among the study's 17 features"), column


def test_a_column_the_embedded_model_uses_says_why_it_is_dropped_here(data):
    """The embedded data set's model uses acc_now_delinq; this pipeline reproduces the study."""
    reason = data.dropped["acc_now_delinq"]
    assert "data=lending_club_csv reproduces" in reason and "docs/data.md" in reason


def test_describe_dropped_lists_each_column_and_reason(data):
    text = describe_dropped(data)
    lines = text.splitlines()
    assert len(lines) == 1 + len(data.dropped)
    assert "dropped 55 columns" in lines[0]
    assert any("policy_code" in line and "single value" in line for line in lines)
    assert any("desc" in line and "missing" in line for line in lines)


def test_plain_float_exports_give_the_same_features(text, data, tmp_path):
    plain = text.assign(
        int_rate=text["int_rate"].str.rstrip("%"), revol_util=text["revol_util"].str.rstrip("%")
    )
    again = load_lending_club_csv(_write(plain, tmp_path / "plain.csv"))
    pd.testing.assert_frame_equal(again.features, data.features)


def test_policy_variants_are_excluded_unless_asked(text, tmp_path):
    prefix = "Does not meet the credit policy. Status:"
    altered = text.copy()
    charged = np.flatnonzero(altered["loan_status"] == "Charged Off")[:5]
    altered.loc[charged, "loan_status"] = prefix + "Charged Off"
    path = _write(altered, tmp_path / "variants.csv")
    default = load_lending_club_csv(path)
    both = load_lending_club_csv(path, include_policy_variants=True)

    raw = pd.read_csv(path, na_values=list(NA_VALUES), keep_default_na=False)
    complete = raw[MODEL_COLUMNS].notna().all(axis=1)
    variant = raw["loan_status"].str.startswith(prefix) & complete
    variant_bad = (raw["loan_status"] == prefix + "Charged Off") & complete
    assert variant_bad.sum() >= 5
    assert len(default.target) == int(_expected_rows(raw).sum())
    assert len(both.target) - len(default.target) == int(variant.sum())
    assert both.target.sum() - default.target.sum() == int(variant_bad.sum())


def test_a_sparse_study_column_is_dropped_not_fatal(text, tmp_path):
    altered = text.copy()
    altered.loc[altered.index % 2 == 0, "revol_util"] = ""
    loaded = load_lending_club_csv(_write(altered, tmp_path / "sparse.csv"))
    assert "revol_util" not in loaded.features.columns
    assert loaded.dropped["revol_util"] == "missing 50.0% > 1/3"
    assert len(loaded.features.columns) == 16


def test_pipeline_recovers_the_true_model(tmp_path):
    data = load_lending_club_csv(generate_lending_club_csv(tmp_path / "big.csv", 40_000, 0))
    x = pd.get_dummies(data.features, columns=data.categorical, dtype=float)
    x[data.numeric] = StandardScaler().fit_transform(x[data.numeric])
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[: int(0.7 * len(x))], order[int(0.7 * len(x)) :]
    model = LogisticRegression(max_iter=2_000).fit(x.iloc[train], data.target[train])
    auc = roc_auc_score(data.target[test], model.predict_proba(x.iloc[test])[:, 1])
    assert auc > 0.62
    coef = dict(zip(x.columns, model.coef_[0], strict=True))
    for column, true in TRUE_MODEL["coefficients"].items():
        assert np.sign(coef[column]) == np.sign(true), column
    assert coef["home_ownership_RENT"] > coef["home_ownership_MORTGAGE"]


# --- errors ---------------------------------------------------------------------------------


def _error(path, match: str) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_lending_club_csv(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    assert str(path) in _error(path, "file not found")


def test_directory_is_not_a_file(tmp_path):
    _error(tmp_path, "not a file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert str(path) in _error(path, "empty")


def test_header_without_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text(",".join(RAW_COLUMNS) + "\n")
    _error(path, "no rows")


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 50)
    _error(path, "cannot read as CSV")


def test_file_without_loan_status(text, tmp_path):
    path = _write(text.drop(columns="loan_status"), tmp_path / "nostatus.csv")
    _error(path, "no 'loan_status' column")


def test_file_without_a_study_column(text, tmp_path):
    path = _write(text.drop(columns=["dti", "term"]), tmp_path / "nodti.csv")
    message = _error(path, "study columns missing")
    assert "dti" in message and "term" in message


@pytest.mark.parametrize(
    ("column", "bad"),
    [("int_rate", "abc%"), ("emp_length", "ten years"), ("term", "three years"),
     ("annual_inc", "lots"), ("revol_util", "12..5%")],
)  # fmt: skip
def test_unparseable_value_names_column_and_value(text, tmp_path, column, bad):
    altered = text.copy()
    altered.loc[np.flatnonzero(altered["loan_status"] == "Fully Paid")[0], column] = bad
    message = _error(_write(altered, tmp_path / "bad.csv"), column)
    assert bad in message


def test_no_finished_loans(text, tmp_path):
    path = _write(text.assign(loan_status="Current"), tmp_path / "current.csv")
    _error(path, "no complete 'Fully Paid' or 'Charged Off' loans")


def test_no_charged_off_loans(text, tmp_path):
    status = text["loan_status"].replace("Charged Off", "Fully Paid")
    _error(_write(text.assign(loan_status=status), tmp_path / "paid.csv"), "'Charged Off'")


def test_every_row_incomplete(text, tmp_path):
    altered = text.copy()
    for k, column in enumerate(("dti", "annual_inc", "open_acc", "total_acc")):
        altered.loc[altered.index % 4 == k, column] = ""
    _error(_write(altered, tmp_path / "holes.csv"), "every row has a missing value")


# --- parsers --------------------------------------------------------------------------------

percents = st.decimals(min_value=0, max_value=200, places=2, allow_nan=False)


@settings(deadline=None)
@given(percents, st.sampled_from(["", " "]), st.sampled_from(["%", " %", ""]))
def test_parse_percent_reads_the_number(value, pad, suffix):
    parsed = parse_percent(pd.Series([f"{pad}{value}{suffix}", None], dtype=object))
    assert parsed.iloc[0] == pytest.approx(float(value))
    assert np.isnan(parsed.iloc[1])


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=9))
def test_parse_emp_length_years(years):
    text = "1 year" if years == 1 else f"{years} years"
    assert parse_emp_length(pd.Series([text])).iloc[0] == years


def test_parse_emp_length_special_forms():
    values = pd.Series(["10+ years", "< 1 year", "n/a", None, 4])
    parsed = parse_emp_length(values)
    assert parsed.iloc[:2].tolist() == [10.0, 0.0]
    assert parsed.iloc[2:4].isna().all()
    assert parsed.iloc[4] == 4.0


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=480), st.sampled_from([" ", ""]))
def test_parse_term_months(months, pad):
    assert parse_term(pd.Series([f"{pad}{months} months"])).iloc[0] == months


@settings(deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,;", min_size=1, max_size=12))
def test_parsers_reject_text_without_numbers(garbage):
    for parser in (parse_percent, parse_term, parse_emp_length):
        with pytest.raises(DataError, match="holds"):
            parser(pd.Series([garbage], name="col"))


def test_parsers_pass_numeric_columns_through():
    numbers = pd.Series([13.56, 7.0])
    pd.testing.assert_series_equal(parse_percent(numbers), numbers)
    pd.testing.assert_series_equal(parse_term(pd.Series([36, 60])), pd.Series([36.0, 60.0]))
