"""Generic CSV: no silent binarisation of a multi-class target, and other delimiters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fl_credit.config.errors import ConfigError, DataError
from fl_credit.config.parsing import from_dict
from fl_credit.config.schema import DataConfig
from fl_credit.data.generic_csv import load_csv
from fl_credit.data.prepare import load_source


def loans(path: Path, status: list, sep: str = ",") -> Path:
    n = len(status)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "purpose": rng.choice(["car", "home"], n),
            "status": status,
        }
    )
    frame.to_csv(path, index=False, sep=sep)
    return path


THREE = ["default"] * 20 + ["repaid"] * 60 + ["late"] * 20


def test_three_classes_without_a_mapping_are_refused_naming_them(tmp_path):
    path = loans(tmp_path / "l.csv", THREE)
    with pytest.raises(DataError) as err:
        load_csv(path, "status", "default")
    message = str(err.value)
    assert "3 classes" in message and "data.negative" in message
    for name in ("'default' (20)", "'repaid' (60)", "'late' (20)"):
        assert name in message


def test_explicit_mapping_labels_every_class(tmp_path):
    path = loans(tmp_path / "l.csv", THREE)
    data = load_csv(path, "status", ["default", "late"], negative=["repaid"])
    assert int(data.target.sum()) == 40 and len(data.target) == 100
    data = load_csv(path, "status", "default", negative=["repaid", "late"])
    assert int(data.target.sum()) == 20


def test_a_class_left_out_of_the_mapping_is_named(tmp_path):
    path = loans(tmp_path / "l.csv", THREE)
    with pytest.raises(DataError, match=r"neither .* 'late' \(20\)"):
        load_csv(path, "status", "default", negative=["repaid"])
    with pytest.raises(DataError, match=r"both .* 'default'"):
        load_csv(path, "status", "default", negative=["default", "repaid", "late"])


def test_binary_targets_still_load_as_before(tmp_path):
    numeric = loans(tmp_path / "n.csv", [1] * 10 + [0] * 30)
    assert int(load_csv(numeric, "status", "1").target.sum()) == 10
    text = loans(tmp_path / "t.csv", ["bad"] * 10 + ["good"] * 30)
    assert int(load_csv(text, "status", "bad").target.sum()) == 10


def test_semicolon_file_is_refused_with_the_sep_to_use_and_loads_with_it(tmp_path):
    path = loans(tmp_path / "s.csv", THREE, sep=";")
    with pytest.raises(DataError) as err:
        load_csv(path, "status", ["default", "late"], negative=["repaid"])
    assert "found one column" in str(err.value) and "\"data.sep=';'\"" in str(err.value)
    data = load_csv(path, "status", ["default", "late"], negative=["repaid"], sep=";")
    assert list(data.features.columns) == ["income", "purpose"]


def test_config_carries_negative_and_sep_to_the_loader(tmp_path):
    path = loans(tmp_path / "s.csv", THREE, sep=";")
    cfg = from_dict(
        {
            "data": {
                "kind": "csv",
                "path": str(path),
                "target": "status",
                "positive": ["default"],
                "negative": ["repaid", "late"],
                "sep": ";",
            }
        }
    )
    assert cfg.data == DataConfig(
        kind="csv",
        path=str(path),
        target="status",
        positive=("default",),
        negative=("repaid", "late"),
        sep=";",
    )
    assert int(load_source(cfg.data, seed=0).target.sum()) == 20


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"lr": "abc"}}, "train.lr must be a number, got 'abc'"),
        ({"train": {"rounds": 2.5}}, "train.rounds must be a whole number, got 2.5"),
        ({"partition": {"shares": [0.5, "x"]}}, "partition.shares must be a number, got 'x'"),
        ({"test_size": "big"}, "test_size must be a number, got 'big'"),
        ({"dp": {"mode": "opacus", "epsilon": True}}, "dp.epsilon must be a number"),
    ],
)
def test_values_of_the_wrong_type_name_their_key(raw, message):
    with pytest.raises(ConfigError) as err:
        from_dict(raw)
    assert str(err.value) == message or message in str(err.value)


def test_whole_floats_are_accepted_where_ints_belong():
    assert from_dict({"train": {"rounds": 3.0}}).train.rounds == 3
    assert isinstance(from_dict({}).train.rounds, int)
