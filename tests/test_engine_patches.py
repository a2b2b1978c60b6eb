"""The Flower patches (fl_credit.flower_patches) and the fast process exit.

The first test is the tripwire: it fails, naming each function, as soon as the installed
Flower is not the version the patches were written against or one of the patched functions
changed. Review the patches against the new source, then update PINNED_SOURCES.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from fl_credit import flower_patches
from fl_credit.config import EngineConfig
from fl_credit.engine import InProcessBackend, simulate
from fl_credit.federation import wait_for_banks

REPO = Path(__file__).resolve().parents[1]


def test_patched_flower_functions_are_the_pinned_ones():
    problems = flower_patches.mismatches(flower_patches.PINNED_SOURCES)
    problems += flower_patches.mismatches(flower_patches.PINNED_RAY_SOURCES)
    assert problems == [], "Flower changed under fl_credit.flower_patches:\n" + "\n".join(problems)


def test_a_changed_flower_function_is_refused_before_anything_is_patched(monkeypatch):
    target = f"{flower_patches.GRID}:InMemoryGrid.send_and_receive"
    monkeypatch.setattr(flower_patches, "_CHECKED", set())
    monkeypatch.setitem(flower_patches.PINNED_SOURCES, target, "0" * 16)
    with pytest.raises(flower_patches.FlowerChangedError, match="InMemoryGrid.send_and_receive"):
        with flower_patches.apply_patches(backend=InProcessBackend):
            pass
    assert flower_patches.RAY_BACKEND not in sys.modules or not getattr(
        sys.modules[flower_patches.RAY_BACKEND], "_fl_credit_stand_in", False
    )


def test_a_flower_version_other_than_the_pinned_one_is_named(monkeypatch):
    import flwr

    monkeypatch.setattr(flwr, "__version__", "9.9.9")
    problems = flower_patches.mismatches({})
    assert problems == [f"flwr 9.9.9 installed, patches written for {flower_patches.PINNED_FLOWER}"]


def test_prompt_queue_caps_waits_and_keeps_queue_semantics():
    import queue

    q = flower_patches.PromptQueue()
    with pytest.raises(queue.Empty):
        q.get(timeout=30.0)  # returns after the 50 ms cap, not 30 s
    q.put(1)
    assert q.get(timeout=30.0) == 1


def echo_app() -> ClientApp:
    """Each bank adds its partition id + 1 to the vector it received."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        w = msg.content["arrays"]["w"].numpy()
        content = RecordDict(
            {
                "arrays": ArrayRecord({"w": Array(w + pid + 1)}),
                "metrics": MetricRecord({"num-examples": 1}),
            }
        )
        return Message(content, reply_to=msg)

    return app


def test_patched_runtime_delivers_every_exchange():
    # The Ray backend with the same patches runs in test_experiment.py.
    rounds, banks = 12, 4

    def server_main(grid: Grid) -> list[np.ndarray]:
        nodes = wait_for_banks(grid, banks, timeout=120)
        totals = []
        w = np.zeros(3)
        for _ in range(rounds):
            messages = [
                Message(
                    RecordDict({"arrays": ArrayRecord({"w": Array(w)})}),
                    dst_node_id=n,
                    message_type="train",
                )
                for n in nodes
            ]
            replies = list(grid.send_and_receive(messages, timeout=60))
            assert len(replies) == banks and not any(r.has_error() for r in replies)
            w = sum(r.content["arrays"]["w"].numpy() for r in replies) / banks
            totals.append(w)
        return totals

    engine = EngineConfig(backend="inprocess")
    run = simulate(server_main, echo_app(), banks, engine)
    # w_{k+1} = w_k + mean(pid + 1) = w_k + 2.5
    np.testing.assert_allclose(run.result[-1], np.full(3, 2.5 * rounds))
    state = flower_patches._state
    assert state.prompt_polling
    # The in-process stand-in is only served inside the run.
    assert not getattr(sys.modules.get(flower_patches.RAY_BACKEND), "_fl_credit_stand_in", False)


def test_inprocess_run_never_imports_ray_or_dynamo_and_exit_code_survives(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from fl_credit.fast_exit import without_teardown
        from fl_credit.config import EngineConfig, ExperimentConfig, TrainConfig
        from fl_credit.experiment import run_experiment

        with without_teardown():
            cfg = ExperimentConfig(
                train=TrainConfig(rounds=2), engine=EngineConfig(backend="inprocess"),
                bootstrap=10,
            )
            outcome = run_experiment(cfg)
            print("auc", outcome.metrics["federated"]["auc"])
            print("ray", "ray" in sys.modules, "dynamo", "torch._dynamo" in sys.modules)
            sys.stdout.write("unflushed tail")
            raise SystemExit(3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert "ray False dynamo False" in done.stdout
    assert done.stdout.endswith("unflushed tail")
