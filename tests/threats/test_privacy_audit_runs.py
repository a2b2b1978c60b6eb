"""The audit on recorded runs: what the coordinator received under plaintext FedAvg and under
secure aggregation, inverted and scored against the banks' own rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fl_credit.config.compose import compose_config, resolve
from fl_credit.config.errors import ConfigError
from fl_credit.config.parsing import from_dict
from fl_credit.coordinator.view import SERVER_VIEW, ServerView
from fl_credit.run.simulate import run_in_folder
from fl_credit.threats.audit.ground_truth import load_model, load_run
from fl_credit.threats.audit.inversion import audit_inversion
from fl_credit.threats.audit.observed import round_one
from fl_credit.threats.audit.properties import audit_properties
from fl_credit.threats.audit.replay import ReplayBank, train_federation

pytestmark = pytest.mark.filterwarnings("ignore")


def recorded_run(folder: Path, *overrides: str) -> Path:
    args = [
        *overrides,
        "train.rounds=2",
        "engine.backend=inprocess",
        "audit.record_server_view=true",
        "metrics.bootstrap=0",
    ]
    run_in_folder(resolve(compose_config(args)), folder, args)
    return folder


@pytest.fixture(scope="module", params=["sgd", "newton"])
def fedavg_run(request, tmp_path_factory):
    """Plaintext FedAvg with model-update rounds (SGD) and with Newton terms."""
    folder = tmp_path_factory.mktemp(f"fedavg_{request.param}")
    return recorded_run(folder, "strategy=fedavg", f"train.optimizer={request.param}")


@pytest.fixture(scope="module")
def secagg_run(tmp_path_factory):
    """The default run: secure aggregation of Newton terms."""
    return recorded_run(tmp_path_factory.mktemp("secagg"), "strategy=secagg")


@pytest.fixture(scope="module")
def secagg_dp_run(tmp_path_factory):
    return recorded_run(
        tmp_path_factory.mktemp("secagg_dp"),
        "strategy=secagg",
        "dp=opacus",
        "dp.epsilon=8",
        "dp.accountant=rdp",
        "dp.reproducible_noise=true",  # the audit replays each colluder's noise from its seed
    )


def test_recording_is_off_by_default_and_the_section_is_checked():
    assert from_dict({}).audit.record_server_view is False
    with pytest.raises(ConfigError, match="audit"):
        from_dict({"audit": {"record_everything": True}})


def test_the_view_holds_each_reply_and_the_decoded_aggregates(fedavg_run, secagg_run):
    for run, secure in ((fedavg_run, False), (secagg_run, True)):
        view = ServerView(run / SERVER_VIEW)
        assert view.secure is secure
        for server_round in (1, 2):
            replies = view.replies("train", server_round)
            assert len({r.src_node for r in replies}) == 3
            assert all(view.request_of(r).message_type == "train" for r in replies)
        records = {k for r in view.replies("train", 1) for k in r.arrays()}
        assert records == ({"secagg-masked"} if secure else {"arrays"})
        # The decoded aggregate of the last round is the run's final model.
        final = view.decoded("train")[-1].arrays()["arrays"]
        model = load_model(run)
        np.testing.assert_allclose(final["linear.weight"].reshape(-1), model.weight, atol=1e-7)
        assert [e.extra.get("pass") for e in view.decoded("query.moments")] == [1, 2]
    # Under secure aggregation the decoded sums are recorded too: round 1's Newton terms.
    sums = ServerView(secagg_run / SERVER_VIEW).decoded("secagg")
    first = [e.arrays()["arrays"] for e in sums if e.server_round == 1]
    assert first and set(first[0]) == {"grad", "hess"}


def test_the_replay_reproduces_the_runs(fedavg_run, secagg_run):
    for run, atol in ((fedavg_run, 1e-6), (secagg_run, 1e-4)):
        data = load_run(run)
        banks = [ReplayBank(n, b.x_train, b.y_train) for n, b in data.banks.items()]
        replay = train_federation(banks, data.cfg)
        model = load_model(run)
        np.testing.assert_allclose(replay.weights.weight, model.weight, atol=atol)
        assert replay.weights.bias == pytest.approx(model.bias, abs=atol)


def test_plaintext_fedavg_gives_every_banks_class_means_and_default_rate(fedavg_run):
    known = round_one(ServerView(fedavg_run / SERVER_VIEW))
    run = load_run(fedavg_run)
    inversion = audit_inversion(known, run, rows_tried=3)
    banks = [r for r in inversion["rows"] if r["setting"].startswith("plaintext: its update")]
    assert sorted(r["target"] for r in banks) == ["bank_0", "bank_1", "bank_2"]
    for r in banks:
        assert r["features_recovered"] == 1.0 and r["max_error_sd"] < 1e-3, r
        assert r["defaults_error"] < 1e-3
    for r in audit_properties(known, run)["rows"]:
        assert r["abs_error"] < 1e-5, r


def test_secure_sum_of_three_banks_hides_each_bank_until_two_collude(secagg_run):
    known = round_one(ServerView(secagg_run / SERVER_VIEW))
    run = load_run(secagg_run)
    rows = audit_inversion(known, run, rows_tried=3)["rows"]
    alone = [r for r in rows if r["setting"].startswith("secure aggregation, the server alone")]
    baseline = {r["target"]: r for r in rows if r["setting"].startswith("no attack")}
    assert len(alone) == 3
    for r in alone:  # the sum's class means are not any bank's: no better than no attack
        assert r["features_recovered"] <= baseline[r["target"]]["features_recovered"] + 0.05, r
        assert r["features_recovered"] < 0.6 and r["mean_error_sd"] > 0.01, r
        assert r["defaults_error"] > 10
    masked = [r for r in rows if "masked reply" in r["setting"]]
    assert len(masked) == 3 and all(r["features_recovered"] == 0.0 for r in masked)
    one = [r for r in rows if r.get("colluders") == 1]
    assert all(r["features_recovered"] < 0.6 for r in one)
    two = [r for r in rows if r.get("colluders") == 2]
    assert len(two) == 1 and two[0]["target"] == "bank_2"
    assert two[0]["features_recovered"] == 1.0 and two[0]["max_error_sd"] < 1e-3
    props = audit_properties(known, run)["rows"]
    pooled = [r for r in props if r["channel"].startswith("secure sum (")]
    assert max(r["abs_error"] for r in pooled) > 1e-3
    last = [r for r in props if "2 colluding" in r["channel"]]
    assert last[0]["abs_error"] < 1e-9


def test_audit_command_writes_reports_and_refuses_a_non_run(fedavg_run, tmp_path, capsys):
    from simulations.studies.privacy_audit import main

    summary = tmp_path / "summary"
    args = [str(fedavg_run), "--shadows", "2", "--no-control", "--summary", str(summary)]
    assert main(args) == 0
    result = json.loads((fedavg_run / "privacy_audit.json").read_text())
    assert result["headline"]["inversion_features_recovered"] == 1.0
    assert result["headline"]["property_abs_error"] < 1e-5
    assert 0.0 <= result["headline"]["mia_auc"] <= 1.0
    assert "## Update inversion" in (fedavg_run / "privacy_audit.md").read_text()
    assert summary.with_suffix(".csv").read_text().count("\n") == 2
    capsys.readouterr()
    assert main([str(tmp_path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error:") and "not a run folder" in errors[0]


@pytest.mark.slow  # a DP run of its own: 20-45 s on the shared 2-core machine
def test_under_dp_colluders_reproduce_their_own_noisy_statistics(secagg_dp_run):
    """Each bank's own reply (its noise share included, from its own code and seed) adds up
    to the noised sum the coordinator decoded: n - 1 colluders are left with the last bank's
    reply and its share of the noise only."""
    from fl_credit.coordinator.strategy_factory import secagg_threshold
    from fl_credit.threats.audit.properties import own_reply

    known = round_one(ServerView(secagg_dp_run / SERVER_VIEW))
    assert not known.moments_exact
    run = load_run(secagg_dp_run)
    threshold = secagg_threshold(run.cfg, len(run.banks))
    replies = [own_reply(known, bank, name, threshold) for name, bank in run.banks.items()]
    np.testing.assert_allclose(sum(replies), known.moments_sum, rtol=1e-6, atol=1e-3)
    rows = audit_properties(known, run)["rows"]
    assert [r["channel"] for r in rows][0].endswith("noised)")
    inversion = audit_inversion(known, run, rows_tried=1)
    assert not inversion["exact_case"]


def test_audit_of_a_bank_level_dp_run_where_no_statistics_left_the_banks(tmp_path):
    """Under dp=central the banks send no moments (public ranges and class weight): the audit
    hands the attacker the exact moments instead of failing, and the shadow federations plan
    the same noise shares (both failed on the threat matrix before the fix)."""
    from simulations.studies.privacy_audit import audit_run

    run = recorded_run(
        tmp_path / "bank_dp", "strategy=secagg", "dp=central", "imbalance.pos_weight=18"
    )
    result = audit_run(run, shadows=2, control=False)  # shadows replay the noise shares
    assert 0 <= result["headline"]["mia_auc"] <= 1
    labels = {r["setting"] for r in result["inversion"]["rows"]}
    assert any("withholds" in label for label in labels), labels
    assert "property_abs_error" not in result["headline"]
    assert 0 <= result["headline"]["inversion_features_recovered"] <= 1


def test_grouped_secure_aggregation_gets_no_colluder_figure_it_does_not_model(tmp_path):
    """The colluder subtraction assumes one secure sum of all banks; grouped aggregation
    releases a robust mix of group means, so the audit reports no colluder figure instead of
    a misleading one (it reported the subtraction's chance-level result before)."""
    from simulations.studies.privacy_audit import audit_run

    run = recorded_run(
        tmp_path / "grouped",
        "partition=power",
        "partition.banks=9",
        "partition.skew=0",
        "strategy=grouped_secagg",
        "train.optimizer=sgd",
    )
    result = audit_run(run, membership=False, control=False)
    assert not [r for r in result["inversion"]["rows"] if r.get("colluders")]
    assert "inversion_colluders_features_recovered" not in result["headline"]
    assert 0 <= result["headline"]["inversion_features_recovered"] <= 1
