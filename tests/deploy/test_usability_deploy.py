"""Deployment as a bank's engineer meets it: the exporter's config and checks, the run's status.

The status tool is tested against the JSON that Flower's own ``flwr list`` code produces
(``flwr.cli.ls._to_json`` on Flower's ``RunRow``), printed by a stand-in ``flwr`` executable;
the end-to-end check against a live SuperLink is the manual one in docs/deployment.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fl_credit.config.errors import ConfigError
from fl_credit.deploy import status as deploy_status
from fl_credit.deploy.certs import write_node_keys, write_tls
from fl_credit.deploy.export_banks import ExportOptions, export, main, write_flwr_config

ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


# --- export_banks ---------------------------------------------------------------------------


def test_export_before_certs_exist_is_one_line_exit_2(tmp_path):
    done = run_module(
        "fl_credit.export_banks", "--out", str(tmp_path / "banks"), "--certs", str(tmp_path / "c")
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such folder" in lines[0] and "fl_credit.certs" in lines[0]
    assert not (tmp_path / "banks").exists()


def test_export_with_too_few_node_keys_names_the_missing_one(tmp_path):
    certs = tmp_path / "certs"
    write_tls(certs)
    write_node_keys(certs, "supernode_0")
    options = ExportOptions(
        out=tmp_path / "banks", overrides=("partition=two_banks", "strategy=fedavg"), certs=certs
    )
    with pytest.raises(ConfigError, match="supernode_1 is missing.*--supernode-keys 2"):
        export(options)


def test_export_writes_the_flwr_connection_and_environment(tmp_path, capsys, monkeypatch):
    certs = tmp_path / "certs"
    write_tls(certs)
    for i in range(2):
        write_node_keys(certs, f"supernode_{i}")
    home = tmp_path / "home"
    argv = ["--out", str(tmp_path / "banks"), "--certs", str(certs), "--flwr-home", str(home)]
    assert main([*argv, "partition=two_banks", "strategy=fedavg", "train.rounds=2"]) == 0
    printed = capsys.readouterr().out
    assert f"export FLWR_HOME={home}" in printed
    assert "FLWR_TELEMETRY_ENABLED=0" in printed and "FLWR_DISABLE_UPDATE_CHECK=1" in printed
    assert "python -m fl_credit.deploy_status fl-credit" in printed
    env_sh = (tmp_path / "banks" / "env.sh").read_text()
    assert f"export FLWR_HOME={home}" in env_sh

    from flwr.cli.flower_config import read_superlink_connection  # what `flwr` itself reads

    monkeypatch.setenv("FLWR_HOME", str(home))
    connection = read_superlink_connection(None)  # the default connection
    assert connection.name == "fl-credit"
    assert connection.address == "127.0.0.1:8000"
    assert connection.root_certificates == str(certs / "ca.crt")


def test_flwr_config_is_appended_to_never_clobbered(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    original = '# mine\n[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
    (home / "config.toml").write_text(original)
    options = ExportOptions(out=tmp_path / "banks", overrides=(), flwr_home=home)
    path = write_flwr_config(options)
    text = path.read_text()
    assert text.startswith(original.rstrip())  # the user's file, comments included
    parsed = tomllib.loads(text)["superlink"]
    assert parsed["default"] == "local"
    assert parsed["fl-credit"] == {"address": "127.0.0.1:8000", "insecure": True}
    assert write_flwr_config(options).read_text() == text  # idempotent
    other = ExportOptions(
        out=tmp_path / "banks", overrides=(), flwr_home=home, superlink="10.0.0.1:8000"
    )
    with pytest.raises(ConfigError, match=r"already has \[superlink.fl-credit\]"):
        write_flwr_config(other)
    assert path.read_text() == text


# --- deploy_status --------------------------------------------------------------------------


def flower_json(*runs: tuple[int, str, str, str]) -> str:
    """``flwr list --format json`` output, made by Flower's own formatter."""
    from flwr.cli.ls import _to_json
    from flwr.cli.run_utils import RunRow

    rows = [
        RunRow(
            run_id=run_id,
            federation_id="",
            fab_id="fl-credit/fl-credit",
            fab_version="0.1.0",
            fab_hash="ab" * 32,
            status_text=status,
            details=details,
            elapsed=67.2,  # seconds, as Flower 1.41 reports it
            pending_at=pending,
            starting_at=pending,
            running_at=pending,
            finished_at="N/A",
            network_traffic_inbound=1,
            network_traffic_outbound=1,
            compute_time_serverapp=1.0,
            compute_time_clientapp=1.0,
        )
        for run_id, status, details, pending in runs
    ]
    return _to_json(rows)


@pytest.fixture
def fake_flwr(tmp_path):
    """A ``flwr`` that prints canned output, and a FLWR_HOME with a config file."""
    home = tmp_path / "flwr_home"
    home.mkdir()
    (home / "config.toml").write_text('[superlink.x]\naddress = "127.0.0.1:1"\ninsecure = true\n')
    script = tmp_path / "flwr"

    def install(output: str) -> dict:
        (tmp_path / "out.txt").write_text(output)
        script.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat {tmp_path}/out.txt\n')
        script.chmod(0o755)
        return {"FLWR_HOME": str(home)}

    return script, install, tmp_path


RUNS = (
    (11, "finished:failed", "ServerApp raised: bank_1 left", "2026-11-29 08:00:00Z"),
    (22, "finished:completed", "N/A", "2026-11-29 09:00:00Z"),
    (33, "running", "N/A", "2026-11-29 10:00:00Z"),
)


@pytest.mark.parametrize(
    ("run_id", "code", "line"),
    [
        ("22", 0, "run 22 (fl-credit==0.1.0): finished:completed after 1m 07s"),
        ("11", 1, "finished:failed after 1m 07s: ServerApp raised: bank_1 left"),
        (None, 3, "run 33 (fl-credit==0.1.0): running, 1m 07s so far"),  # latest submitted
    ],
)
def test_status_line_and_exit_code(fake_flwr, run_id, code, line):
    script, install, folder = fake_flwr
    env = install(flower_json(*RUNS))
    args = ["x", "--flwr", str(script), *(["--run-id", run_id] if run_id else [])]
    done = run_module("fl_credit.deploy_status", *args, env=env)
    assert done.returncode == code, done.stderr
    assert line in done.stdout.splitlines()[0]
    called = (folder / "args").read_text().split()
    assert called[:4] == ["list", "x", "--format", "json"]


def test_bank_names_come_from_the_run_folder(fake_flwr):
    from fl_credit.run import files as run_files

    script, install, folder = fake_flwr
    env = install(flower_json(RUNS[1]))
    out = folder / "server_run"
    run_files.write_status(out, error=None, wall_seconds=1.0, overrides=[])
    lost = [{"bank": "bank_1", "node_id": 42, "stage": "round 2 train"}]
    run_files.write_json(out / "metrics.json", {"lost_banks": lost, "federated": {"auc": 0.77}})
    args = ["x", "--flwr", str(script), "--output-dir", str(out)]
    done = run_module("fl_credit.deploy_status", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert "banks lost during the run: bank_1 (round 2 train)" in done.stdout
    assert "federated test AUC 0.7700" in done.stdout


@pytest.mark.parametrize(
    ("output", "needle"),
    [
        (
            '{"success": false, "error-message": "Connection to the SuperLink is unavailable"}',
            "unavailable",
        ),
        ('{"success": true, "runs": []}', "no runs"),
        ("Traceback (most recent call last):", "did not print JSON"),
    ],
)
def test_status_errors_are_one_line_exit_2(fake_flwr, output, needle):
    script, install, _ = fake_flwr
    done = run_module("fl_credit.deploy_status", "--flwr", str(script), env=install(output))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_status_without_flower_config_does_not_create_one(tmp_path):
    done = run_module("fl_credit.deploy_status", env={"FLWR_HOME": str(tmp_path / "none")})
    assert done.returncode == 2 and "no Flower configuration" in done.stderr
    assert not (tmp_path / "none").exists()


def test_parse_runs_reads_flowers_format():
    runs = deploy_status.parse_runs("📄 Listing all runs...\n" + flower_json(*RUNS))
    assert [r.status for r in runs] == ["finished:failed", "finished:completed", "running"]
    assert deploy_status.latest(runs, None).run_id == "33"


# --- pyproject ------------------------------------------------------------------------------


def test_pyproject_has_no_flower_warnings():
    """``flwr run`` warned about the missing ``license`` at every run."""
    from flwr.common.config import validate_fields_in_config

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ok, errors, warnings = validate_fields_in_config(config)
    assert ok and errors == [] and warnings == []
    assert config["project"]["license"]
