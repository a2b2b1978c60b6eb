"""The bank's side of the validation query, attacked: what a coordinator may ask, and the
command line's bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fl_credit import validate
from fl_credit.validation.analysis import layout_of
from fl_credit.validation.bank_counts import request_values
from fl_credit.validation.grade_counts import decode
from fl_credit.validation.master_scale import MasterScale
from fl_credit.validation.query import COUNTS_FILE
from tests.validation.conftest import base_config

pytestmark = pytest.mark.filterwarnings("ignore")
SCALE = MasterScale.geometric(8, 0.01, 0.4)


@pytest.fixture
def bank_zero(embedded, tmp_path, monkeypatch):
    """Bank 0's ClientApp and context after the federation's standardiser, without DP, and
    a model to grade with."""
    from fl_credit.model.logistic import new_model, to_arrays
    from tests.conftest import bank_zero_app

    prepared, scaler, settings, context, app = bank_zero_app(
        base_config(), embedded, tmp_path, monkeypatch
    )
    return prepared, settings, context, app, to_arrays(new_model(len(scaler.mean), 0))


def ask(bank_zero, scale=SCALE, threshold=0.05, groups=("annual_inc",), bands=None):
    from flwr.app import ConfigRecord, Message, RecordDict

    _, settings, context, app, model = bank_zero
    values = request_values(scale, threshold, groups, bands)
    config = ConfigRecord({**settings.to_config(), **values})
    content = RecordDict({"config": config, "arrays": model})
    message = Message(content, dst_node_id=5, message_type="query.grades")
    message.metadata.__dict__["_message_id"] = "m"
    return app(message, context)


def test_a_crafted_band_cannot_single_out_a_borrowers_label(bank_zero) -> None:
    """Attack: the coordinator asks for an income band around one known borrower's income;
    the band's default count would be that borrower's label. The bank refuses a band that
    holds fewer than the minimum of its rows (and answers once)."""
    prepared = bank_zero[0]
    bank = prepared.banks["bank_0"]
    j = prepared.feature_names.index("annual_inc")
    x = np.vstack([bank.x_val, bank.x_test])
    y = np.concatenate([bank.y_val, bank.y_test])
    values, counts = np.unique(x[:, j], return_counts=True)
    target = values[counts == 1][len(values[counts == 1]) // 2]
    label = int(y[x[:, j] == target][0])
    crafted = {"annual_inc": [target - 1e-3, target + 1e-3]}
    reply = ask(bank_zero, bands=crafted)
    if not reply.has_error():  # what the attack would read off the reply
        vector = reply.content["arrays"].to_numpy_ndarrays()[0]
        stored = {"populations": [], "scale_edges": list(SCALE.edges)}
        assert vector is not None and stored
        from fl_credit.validation.settings import populations

        pops = populations(
            prepared.feature_names, ("annual_inc",), np.zeros(69), np.ones(69), crafted
        )
        assert pops[2].name.startswith(f"{target - 1e-3:.6g}")
        g = SCALE.grades
        size = 3 * g + 2
        per_split = len(vector) // 2
        band_defaults = sum(
            vector[k * per_split + 2 * size + g : k * per_split + 2 * size + 2 * g].sum()
            for k in range(2)
        )
        assert band_defaults != label, "the reply gave the borrower's label away"
    assert reply.has_error()
    assert not ask(bank_zero).has_error()  # the default bands: answered
    assert ask(bank_zero).has_error()  # asked again (to difference two answers): refused


@pytest.mark.parametrize(
    "scale",
    [
        MasterScale((0.01, 0.0100001, 0.2)),  # a sliver of a grade
        MasterScale((0.2, 0.1, 0.3)),  # not increasing
        MasterScale((0.01, 0.02, 0.9)),  # not evenly spaced in log-PD
    ],
)
def test_a_scale_that_is_not_a_master_scale_is_refused(bank_zero, scale) -> None:
    reply = ask(bank_zero, scale=scale)
    assert reply.has_error()


def test_validate_builds_the_report_from_the_folder_alone(embedded_run, tmp_path, capsys) -> None:
    (tmp_path / COUNTS_FILE).write_text(json.dumps(embedded_run.stored))
    assert validate.main([str(tmp_path)]) == 0
    text = (tmp_path / "validation.md").read_text()
    assert "## Summary" in text and "Miscalibrated grades" in text
    assert "Groups treated worse" in text
    for name in ("validation_grades.png", "validation_migration.png", "validation_groups.png"):
        assert (tmp_path / name).stat().st_size > 1000
    layout, edges, _ = layout_of(embedded_run.stored)
    decode(np.asarray(embedded_run.stored["vector"]), layout, edges)


def test_validate_bad_input_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert validate.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not found" in err
    (tmp_path / COUNTS_FILE).write_text("{not json")
    assert validate.main([str(tmp_path)]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    (tmp_path / COUNTS_FILE).write_text(json.dumps({"vector": [1, 2]}))
    assert validate.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a validation counts file" in err


def test_the_run_report_carries_the_validation_summary(embedded_run, tmp_path) -> None:
    from fl_credit.run.report import validation_section

    assert validation_section(tmp_path) == []
    (tmp_path / COUNTS_FILE).write_text(json.dumps(embedded_run.stored))
    assert validate.main([str(tmp_path)]) == 0
    lines = "\n".join(validation_section(tmp_path))
    assert "## Validation (summary)" in lines and "Miscalibrated grades" in lines
    assert "## Master scale" not in lines  # the summary only
