"""Past one process: a sweep in parallel workers, and the simulation on an existing Ray cluster.

- Hydra's joblib launcher (``hydra/launcher=joblib``) runs sweep points in worker processes;
  the points must give exactly the numbers the sequential launcher gives.
- ``engine.ray_address`` joins an existing Ray cluster: the test starts one with ``ray start
  --head`` on loopback (its own temporary folder and ports), runs an experiment on it, and
  stops exactly the processes that cluster started (found by that folder), never ``ray stop``,
  which would stop every Ray cluster of the user on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from fl_credit.config.schema import EngineConfig, ExperimentConfig, TrainConfig
from fl_credit.data.prepare import prepare
from fl_credit.deploy.local_federation import _stop_pid, descendants, free_port_block
from fl_credit.run.experiment import run_experiment

REPO = Path(__file__).resolve().parents[2]
POINTS = ["partition.share=0.1,0.5", "seed=0"]
COMMON = ["strategy=fedavg", "train.rounds=3", "metrics.bootstrap=20"]


def sweep(tmp_path: Path, name: str, *launcher: str) -> Path:
    out = tmp_path / name
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fl_credit.simulate",
            "+experiment=distribution_sweep",
            *COMMON,
            *POINTS,
            *launcher,
            f"hydra.sweep.dir={out}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_parallel_sweep_points_equal_sequential_ones(tmp_path: Path):
    sequential = sweep(tmp_path, "sequential")
    parallel = sweep(tmp_path, "parallel", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    for point in ("0", "1"):
        a = json.loads((sequential / point / "metrics.json").read_text())
        b = json.loads((parallel / point / "metrics.json").read_text())
        assert a["overrides"] == b["overrides"]
        for key in ("federated", "centralized", "reference", "local", "banks"):
            assert a[key] == b[key], (point, key)
        wa = torch.load(sequential / point / "model.pt")
        wb = torch.load(parallel / point / "model.pt")
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), point
    # The sweep report (Hydra callback in the launching process) is written either way.
    assert (parallel / "summary.md").is_file()


def _ray_exe() -> str:
    return str(Path(sys.executable).parent / "ray")


def _cluster_pids(folder: str) -> set[int]:
    """Every process whose command line names ``folder``, and everything below them."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if folder.encode() in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    for pid in list(found):
        found.update(descendants(pid))
    found.discard(os.getpid())
    return found


@pytest.fixture
def ray_head():
    """A one-node Ray cluster on loopback, started and stopped by this test only."""
    folder = tempfile.mkdtemp(prefix="flcr", dir="/tmp")  # short: Ray's socket paths
    port = free_port_block(1)
    ports = [free_port_block(1) for _ in range(4)]
    workers = free_port_block(20)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [
        _ray_exe(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--temp-dir={folder}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--node-manager-port={ports[0]}",
        f"--object-manager-port={ports[1]}",
        f"--dashboard-agent-listen-port={ports[2]}",
        f"--metrics-export-port={ports[3]}",
        f"--min-worker-port={workers}",
        f"--max-worker-port={workers + 19}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield f"127.0.0.1:{port}", folder
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for pid in sorted(_cluster_pids(folder), reverse=True):
            _stop_pid(pid, grace=5.0)
        shutil.rmtree(folder, ignore_errors=True)


def test_simulation_runs_on_an_existing_ray_cluster(ray_head, embedded):
    import ray

    address, folder = ray_head
    if ray.is_initialized():
        ray.shutdown()  # a local Ray left by an earlier test in this process
    cfg = ExperimentConfig(
        train=TrainConfig(rounds=2),
        engine=EngineConfig(backend="ray", ray_address=address),
        bootstrap=20,
    )
    outcome = run_experiment(cfg, prepare(cfg, embedded))
    assert outcome.metrics["federated"]["auc"] > 0.7
    # The driver joined that cluster (Ray kept running after the run: keep_warm).
    node = ray._private.worker.global_worker.node
    assert node.gcs_address.rsplit(":", 1)[1] == address.rsplit(":", 1)[1]
    assert node.get_session_dir_path().startswith(folder)
