"""The same apps on Flower's Deployment Engine: one SuperLink and one SuperNode per bank.

The ``deployment`` tests start real Flower processes on loopback (TLS, SuperNode
authentication; each bank as ``python -m fl_credit.supernode``, Flower's SuperNode with warm
ClientApps), submit a run with ``flwr run`` and read its status with ``flwr list`` (since
``flwr run`` exits 0 even when a run fails). Their waits are progress-based
(``fl_credit.deploy.local_federation``): they fail when the federation stops logging for minutes,
not after a fixed total, so a loaded machine slows them down without failing them. The
unmarked tests check the exporter and the certificates without starting Flower.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cryptography import x509
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.proto.node_pb2 import NodeInfo
from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message
from flwr.supercore.task_identity import TaskIdentity

from fl_credit.bank.client_app import make_client_app
from fl_credit.config.compose import compose_experiment
from fl_credit.config.errors import ConfigError
from fl_credit.coordinator.federation import run_federation
from fl_credit.coordinator.server_app import (
    BankWatchGrid,
    DeploymentSettings,
    expected_banks,
    read_test_rows,
)
from fl_credit.credit.scorecard import main as scorecard_main
from fl_credit.deploy.certs import write_node_keys, write_tls
from fl_credit.deploy.export_banks import ExportOptions, export, supernode_command
from fl_credit.deploy.local_federation import Deployment, start_deployment
from fl_credit.protocol.identity import identity_provider
from fl_credit.run import files as run_files
from fl_credit.runtime.engine import simulate

ROUNDS = 2
# The run's default strategy (whatever conf/ makes it), a few full-batch rounds.
OVERRIDES = (f"train.rounds={ROUNDS}", "metrics.bootstrap=200")
NUM_BANKS = 3
TRAIN_RECEIVED = "Receiving: train message"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    """One started federation shared by the module's runs (the bank-dropout test runs last),
    stopped (every process, by PID) afterwards."""
    # The module's banks serve a secure run and a plaintext FedAvg run (the dropout test), so
    # their own floors allow plaintext; a real consortium's come from its export.
    dep = start_deployment(
        tmp_path_factory.mktemp("deployment"),
        OVERRIDES,
        NUM_BANKS,
        floors={"secagg-required": False},
    )
    try:
        yield dep
    finally:
        dep.fed.close()


def simulate_same(dep: Deployment) -> tuple[dict, dict[str, np.ndarray]]:
    """The same experiment in Flower's simulation engine, on the exported bank files."""
    overrides = [*dep.export.overrides, "engine.backend=inprocess", "eval.federated=true"]
    cfg, _ = compose_experiment(overrides)
    bank_dir = str(dep.export.out)

    def server_main(grid):
        return run_federation(
            grid, cfg, num_banks=NUM_BANKS, x_test=None, y_test=None, bank_dir=bank_dir
        )

    provider = identity_provider(bank_dir)  # the identities export wrote next to the banks
    fed = simulate(
        server_main, make_client_app(identity_provider=provider), NUM_BANKS, cfg.engine
    ).result
    weights = {k: v.numpy() for k, v in fed.arrays.to_torch_state_dict().items()}
    return {**fed.evaluation, "threshold": fed.threshold}, weights


def finished_run(dep: Deployment, run_id: int) -> tuple[dict, str]:
    """Wait for the run; return its ``flwr list`` entry and its ServerApp log."""
    status = dep.fed.wait_finished(run_id)
    return status, dep.fed.run_log(run_id)


@pytest.mark.deployment
def test_deployed_run_matches_simulation(deployment: Deployment):
    dep = deployment
    try:
        run_id = dep.fed.submit(REPO, dep.run_config)
        sim_metrics, sim_weights = simulate_same(dep)
        status, log = finished_run(dep, run_id)
        assert status["status"] == "finished:completed", (status, log)

        out = dep.output_dir
        for name in (run_files.METRICS, run_files.HISTORY, run_files.MODEL, run_files.STATUS):
            assert (out / name).is_file(), name
        assert run_files.finished(out)
        metrics = json.loads((out / run_files.METRICS).read_text())
        assert metrics["config"]["rounds"] == ROUNDS
        assert metrics["config"]["num_banks"] == NUM_BANKS
        assert metrics["lost_banks"] == []
        fed = metrics["federated"]  # federated evaluation: the coordinator holds no rows
        assert fed["evaluation"].startswith("federated")
        assert fed["auc"] == pytest.approx(sim_metrics["auc"], abs=1e-6)
        assert fed["log_loss"] == pytest.approx(sim_metrics["log_loss"], abs=1e-6)
        state = torch.load(out / run_files.MODEL)
        assert float(state["threshold"]) == pytest.approx(sim_metrics["threshold"])
        for key, expected in sim_weights.items():
            np.testing.assert_allclose(state[key].numpy(), expected, rtol=0, atol=1e-6)
        rounds = (out / run_files.HISTORY).read_text().splitlines()
        assert len(rounds) == 1 + 1 + ROUNDS  # header, round 0 (initial model), rounds
        assert (out / "schema.json").is_file() and (out / "report.md").is_file()
        assert scorecard_main([str(out), "--out", str(out / "card")]) == 0  # as a simulated run
    except BaseException:
        print(dep.fed.report())
        raise


@pytest.mark.deployment
def test_run_finishes_when_a_bank_drops_out(deployment: Deployment, tmp_path: Path):
    """Plain FedAvg goes on with 2 of 3 banks. (Under secure aggregation, 2 survivors of 3
    cannot form a sum that hides each from the other, so those rounds are skipped: the
    simulation tests of ``strategies.secagg`` cover that.)"""
    dep = deployment
    output_dir = tmp_path / "server_run"
    run_config = tmp_path / "run_config.toml"
    text = dep.run_config.read_text()
    text = text.replace('config-overrides = "', 'config-overrides = "strategy=fedavg ')
    text = text.replace(str(dep.output_dir), str(output_dir))
    run_config.write_text(text)
    try:
        seen = dep.fed.procs["bank_1"].count(TRAIN_RECEIVED)
        run_id = dep.fed.submit(REPO, run_config)
        # Stop bank_1 while it holds this run's round-1 training message.
        dep.fed.wait_for_line("bank_1", TRAIN_RECEIVED, count=seen + 1)
        dep.fed.stop("bank_1", signal.SIGTERM)
        status, log = finished_run(dep, run_id)
        assert status["status"] == "finished:completed", (status, log)
        assert "fl-credit: lost bank_1 (node " in log, log
        metrics = json.loads((output_dir / run_files.METRICS).read_text())
        assert metrics["run_id"] == run_id
        assert metrics["config"]["strategy"] == "fedavg"
        lost = metrics["lost_banks"]
        assert [entry["bank"].split()[0] for entry in lost] == ["bank_1"], lost
        assert lost[0]["stage"] == "round 1"
        assert "round 2 goes ahead with 2 of 3 banks; not connected: bank_1" in log, log
        assert metrics["federated"]["auc"] > 0.6
    except BaseException:
        print(dep.fed.report())
        raise


def test_export_writes_bank_files_and_run_config(tmp_path: Path):
    options = ExportOptions(
        out=tmp_path / "banks", overrides=("partition=two_banks", "strategy=fedavg")
    )
    result = export(options)
    assert sorted(result.bank_files) == ["bank_0", "bank_1"]
    assert (tmp_path / "banks" / "schema.json").is_file()
    x_test, y_test = read_test_rows(result.test_file)
    assert x_test.shape[0] == len(y_test) > 0
    text = result.run_config.read_text()
    assert 'config-overrides = "partition=two_banks strategy=fedavg"' in text
    assert "num-banks = 2" in text
    command = supernode_command(options, 1, result.bank_files["bank_1"])
    # the bank's floors follow the exported configuration: a plaintext (fedavg) consortium
    path = result.bank_files["bank_1"]
    assert command[-2:] == ["--node-config", f'data-path="{path}" secagg-required=false']
    assert "--insecure" in command


@pytest.mark.parametrize(
    "args, message",
    [
        (["train.rounds=2"], "--out DIR or out_dir=DIR"),
        (["out_dir=OUT", "nope=1"], "Could not override 'nope'"),
        (["--out", "OUT", "partition.shares=[0.9,0.2]"], "must sum to 1"),
    ],
)
def test_export_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str):
    args = [a.replace("OUT", str(tmp_path / "x")) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "fl_credit.export_banks", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_certificates_chain_to_the_ca_and_name_loopback(tmp_path: Path):
    tls = write_tls(tmp_path, ["localhost", "127.0.0.1", "bank-coordinator.example"])
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "bank-coordinator.example" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert tls.server_key.stat().st_mode & 0o077 == 0
    keys = write_node_keys(tmp_path, "supernode_0")
    assert keys.public_key.read_text().startswith("ecdsa-sha2-nistp384 ")


class FakeGrid:
    """A grid whose bank ``offline`` is answered for by the SuperLink (as in Flower 1.41)."""

    def __init__(self, names: dict[int, str], offline: int | None = None) -> None:
        self.names = names
        self.offline = offline
        self.pushed: list[Message] = []

    def get_nodes(self) -> list[NodeInfo]:
        return [NodeInfo(node_id=n, name=name) for n, name in self.names.items()]

    def push_messages(self, messages: list[Message]) -> list[str]:
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = msg.object_id
        self.pushed = list(messages)
        return [m.metadata.message_id for m in messages]

    def pull_messages(self, message_ids: set[str]) -> list[Message]:
        replies = []
        for msg in self.pushed:
            if msg.metadata.message_id not in message_ids:
                continue
            if msg.metadata.dst_node_id == self.offline:
                replies.append(create_message_error_unavailable_res_message(msg.metadata, "x"))
            else:
                replies.append(Message(RecordDict(), reply_to=msg))
        return replies


def train_messages(nodes: list[int], server_round: int) -> list[Message]:
    config = ConfigRecord({"server-round": server_round})
    return [
        Message(RecordDict({"config": config}), dst_node_id=n, message_type="train") for n in nodes
    ]


@pytest.fixture
def server_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let messages be built outside a ServerApp process (Flower reads the task identity)."""
    for attr, value in (("_run_id", 1), ("_node_id", 1), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, attr, value)


def test_watch_grid_names_the_lost_bank_and_round(
    server_identity: None, caplog: pytest.LogCaptureFixture
):
    fake = FakeGrid({11: "bank_0", 22: "bank_1", 33: "bank_2"}, offline=22)
    grid = BankWatchGrid(fake)
    with caplog.at_level(logging.WARNING, logger="fl_credit"):
        first = grid.send_and_receive(train_messages([11, 22, 33], 1), timeout=5)
        second = grid.send_and_receive(train_messages([11, 33], 2), timeout=5)
    assert len(first) == 3 and len(second) == 2
    assert grid.lost == [{"bank": "bank_1 (node 22)", "node_id": 22, "stage": "round 1"}]
    text = caplog.text
    assert "lost bank_1 (node 22) in round 1: Error: Node Unavailable" in text
    assert "round 2 goes ahead with 2 of 3 banks; not connected: bank_1 (node 22)" in text


def test_run_config_and_bank_count():
    settings = DeploymentSettings.from_run_config(
        {"config-overrides": "train.rounds=3 'seed=1'", "test-path": "t.csv", "num-banks": 0}, 7
    )
    assert settings.overrides == ("train.rounds=3", "seed=1")
    assert settings.output_dir.parts[-3:] == ("outputs", "deployment", "run_7")
    no_rows = DeploymentSettings.from_run_config({"config-overrides": ""}, 1)
    assert no_rows.test_path is None  # the default: federated evaluation only
    with pytest.raises(ConfigError, match="num-banks"):
        DeploymentSettings.from_run_config({"test-path": "t.csv", "num-banks": -1}, 1)
    assert expected_banks(compose_experiment([])[0], 0) == 3
    two = compose_experiment(["partition=two_banks", "strategy=fedavg"])[0]
    assert expected_banks(two, 0) == 2
    assert expected_banks(compose_experiment(["partition=region"])[0], 4) == 4
    with pytest.raises(ConfigError, match="num-banks"):
        expected_banks(compose_experiment(["partition=region"])[0], 0)
