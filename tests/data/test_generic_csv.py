"""Loading any credit CSV: categorical detection, target mapping, missing rows and errors."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from fl_credit.config.errors import DataError
from fl_credit.data.generic_csv import load_csv


def _csv(tmp_path, text: str, name: str = "credit.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def credit(tmp_path) -> str:
    return _csv(
        tmp_path,
        "income,rate,home,owner,state,Class\n"
        "50000,10.5,RENT,True,CA,good\n"
        "72000,7.25,OWN,False,NY,good\n"
        "31000,18.0,RENT,True,TX,bad\n"
        "90000,6.5,MORTGAGE,False,CA,good\n"
        "28000,21.0, RENT ,True,NY,bad\n",
    )


def test_detects_categorical_columns_and_maps_the_target(credit):
    data = load_csv(credit, target="Class", positive="bad")
    assert list(data.features.columns) == ["income", "rate", "home", "owner", "state"]
    assert data.categorical == ["home", "owner", "state"]
    assert data.features["income"].dtype == np.float64
    assert data.features["home"].tolist() == ["RENT", "OWN", "RENT", "MORTGAGE", "RENT"]
    assert data.features["owner"].tolist()[:2] == ["True", "False"]
    np.testing.assert_array_equal(data.target, [0, 0, 1, 0, 1])
    assert data.region is None
    assert data.dropped == {}
    assert data.name == "credit"


def test_region_column_is_returned_not_a_feature(credit):
    data = load_csv(credit, target="Class", positive="bad", region="state")
    assert "state" not in data.features.columns
    assert data.region.tolist() == ["CA", "NY", "TX", "CA", "NY"]


def test_exclude_and_explicit_categorical(credit):
    data = load_csv(credit, "Class", "bad", categorical=["home"], exclude=["state"])
    assert data.categorical == ["home"]
    assert data.features["owner"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert data.dropped == {"state": "excluded by the caller"}


@pytest.mark.parametrize("positive", [1, "1", 1.0, " 1 ", True])
def test_numeric_positive_matches_int_target(tmp_path, positive):
    path = _csv(tmp_path, "x,default\n1.5,0\n2.5,1\n3.5,0\n")
    np.testing.assert_array_equal(load_csv(path, "default", positive).target, [0, 1, 0])


def test_int_positive_matches_float_target(tmp_path):
    path = _csv(tmp_path, "x,default\n1.5,0.0\n2.5,1.0\n3.5,\n4.5,0.0\n")
    np.testing.assert_array_equal(load_csv(path, "default", 1).target, [0, 1, 0])


def test_bool_target(tmp_path):
    path = _csv(tmp_path, "x,defaulted\n1,true\n2,false\n3,False\n")
    np.testing.assert_array_equal(load_csv(path, "defaulted", True).target, [1, 0, 0])


def test_numeric_coded_column_listed_as_categorical_becomes_text(tmp_path):
    path = _csv(tmp_path, "grade,x,y\n1,0.5,a\n2,0.7,b\n1,0.1,b\n")
    data = load_csv(path, "y", "a", categorical=["grade"])
    assert data.categorical == ["grade"]
    assert data.features["grade"].tolist() == ["1", "2", "1"]


def test_rows_with_missing_values_are_dropped_and_counted(tmp_path, caplog):
    path = _csv(tmp_path, "x,z,y\n1,a,0\n,b,1\n3,,0\n4,d,1\n5,e,0\n")
    with caplog.at_level(logging.WARNING, logger="fl_credit.data.generic_csv"):
        data = load_csv(path, "y", 1)
    assert len(data.target) == 3
    np.testing.assert_array_equal(data.target, [0, 1, 0])
    assert "dropped 2 of 5 rows with missing values" in caplog.text
    assert "x (1)" in caplog.text and "z (1)" in caplog.text


def test_all_empty_column_is_dropped(tmp_path):
    path = _csv(tmp_path, "x,empty,y\n1,,0\n2,,1\n")
    data = load_csv(path, "y", 1)
    assert data.dropped == {"empty": "all values missing"}
    assert list(data.features.columns) == ["x"]


# --- errors ---------------------------------------------------------------------------------


def _error(match: str, *args, **kwargs) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_csv(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    assert str(path) in _error("file not found", path, "y", 1)


def test_directory(tmp_path):
    _error("not a file", tmp_path, "y", 1)


def test_empty_file(tmp_path):
    _error("empty", _csv(tmp_path, ""), "y", 1)


def test_header_only(tmp_path):
    _error("no rows", _csv(tmp_path, "x,y\n"), "y", 1)


def test_unreadable_bytes(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(bytes(range(256)) * 20)
    _error("cannot read as CSV", path, "y", 1)


def test_unknown_target_lists_the_columns(credit):
    message = _error("no target column 'label'", credit, "label", 1)
    assert "income, rate, home, owner, state, Class" in message


def test_target_without_positive_rows_shows_the_values(credit):
    message = _error("no rows of 'Class' equal positive='Bad'", credit, "Class", "Bad")
    assert "'good' (3)" in message and "'bad' (2)" in message


def test_target_with_only_positive_rows(tmp_path):
    _error("only rows", _csv(tmp_path, "x,y\n1,1\n2,1\n"), "y", 1)


def test_garbage_in_a_numeric_column_is_named(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(30))
    path = _csv(tmp_path, "income,y\n" + rows + "12O00,1\n")
    message = _error("column 'income'", path, "y", 1)
    assert "'12O00'" in message


def test_garbage_with_explicit_categorical_is_named(tmp_path):
    path = _csv(tmp_path, "income,home,y\n100,A,0\nabc,B,1\n200,A,0\n")
    message = _error("column 'income' should be numeric", path, "y", 1, categorical=["home"])
    assert "'abc'" in message


def test_infinite_values_are_named(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,inf,0\n2,3,1\n3,-inf,0\n")
    _error(r"infinite values in columns \['b'\]", path, "y", 1)


def test_missing_values_error_mode_names_columns(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,,0\n2,3,1\n")
    _error(r"missing values in columns b \(1\)", path, "y", 1, missing="error")


def test_unknown_categorical_and_region_columns(credit):
    _error("categorical columns not in the file: \\['colour'\\]", credit, "Class", "bad",
           categorical=["colour"])  # fmt: skip
    _error("no region column 'zip'", credit, "Class", "bad", region="zip")
    _error("excluded columns not in the file", credit, "Class", "bad", exclude=["id"])


def test_only_the_target_column(tmp_path):
    _error("no feature columns", _csv(tmp_path, "y\n1\n0\n"), "y", 1)


def test_loads_a_frame_written_by_pandas(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.integers(1_000, 30_000, 200),
            "ratio": rng.random(200),
            "purpose": rng.choice(["car", "home", "debt"], 200),
            "bad": rng.integers(0, 2, 200).astype(bool),
        }
    )
    frame.to_csv(tmp_path / "frame.csv", index=False)
    data = load_csv(tmp_path / "frame.csv", "bad", True, majority_default=True)
    assert data.categorical == ["purpose"]
    np.testing.assert_array_equal(data.target, frame["bad"].astype(int).to_numpy())
