"""Class imbalance per bank, and per-bank files."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from fl_credit.config.errors import DataError
from fl_credit.data.bank_file import read_bank, read_rows, write_rows
from fl_credit.model.imbalance import balance, positive_weight


def bank(n_pos: int, n_neg: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_pos + n_neg, 4)).astype(np.float32)
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(np.int8)
    return x, y


def test_class_weight_balances_the_loss():
    x, y = bank(20)
    _, _, w = balance(x, y, "class_weight")
    assert w == pytest.approx(10.0) == positive_weight(y)


def test_smote_only_adds_minority_rows():
    x, y = bank(20)
    xs, ys, w = balance(x, y, "smote", seed=1)
    assert w == 1.0
    assert ys.sum() == (ys == 0).sum() == 200
    np.testing.assert_array_equal(xs[: len(x)], x)


def test_smote_adapts_to_a_bank_with_few_defaults(caplog):
    x, y = bank(3)
    with caplog.at_level(logging.WARNING):
        _, ys, _ = balance(x, y, "smote", k_neighbors=5)
    assert "k_neighbors=2" in caplog.text
    assert ys.sum() == 200


def test_smote_refuses_a_bank_with_one_default():
    x, y = bank(1)
    with pytest.raises(DataError, match="class_weight"):
        balance(x, y, "smote")


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_bank_file_round_trip(tmp_path, suffix):
    x, y = bank(5, 20)
    path = write_rows(
        tmp_path / f"b{suffix}",
        ["a", "b", "c", "d"],
        {"train": (x[:20], y[:20]), "val": (x[20:], y[20:])},
    )
    data = read_bank(path)
    np.testing.assert_allclose(data.x_train, x[:20], rtol=1e-6)
    np.testing.assert_array_equal(data.y_val, y[20:])
    assert data.feature_names == ("a", "b", "c", "d")


def test_bad_bank_files_give_one_line(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_rows(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,default,split\nxyz,1,train\n")
    with pytest.raises(DataError, match="non-numeric"):
        read_rows(bad)
