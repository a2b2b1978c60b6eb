"""The Flower patches (fl_credit.runtime.flower_patches) and the fast process exit.

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

from fl_credit.config.schema import EngineConfig
from fl_credit.coordinator.federation import wait_for_banks
from fl_credit.runtime import flower_patches, patches_deployment, patches_simulation
from fl_credit.runtime.engine import InProcessBackend, simulate

REPO = Path(__file__).resolve().parents[2]


def test_patched_flower_functions_are_the_pinned_ones():
    problems = flower_patches.mismatches(patches_simulation.PINNED_SOURCES)
    problems += flower_patches.mismatches(patches_simulation.PINNED_RAY_SOURCES)
    changed = "Flower changed under fl_credit.runtime.flower_patches:\n"
    assert problems == [], changed + "\n".join(problems)


def test_a_changed_flower_function_is_refused_before_anything_is_patched(monkeypatch):
    target = f"{patches_simulation.GRID}:InMemoryGrid.send_and_receive"
    monkeypatch.setattr(flower_patches, "_CHECKED", set())
    monkeypatch.setitem(patches_simulation.PINNED_SOURCES, target, "0" * 16)
    with pytest.raises(flower_patches.FlowerChangedError, match="InMemoryGrid.send_and_receive"):
        with flower_patches.apply_patches(backend=InProcessBackend):
            pass
    assert patches_simulation.RAY_BACKEND not in sys.modules or not getattr(
        sys.modules[patches_simulation.RAY_BACKEND], "_fl_credit_stand_in", False
    )


def test_a_flower_version_other_than_the_pinned_one_is_named(monkeypatch):
    import flwr

    monkeypatch.setattr(flwr, "__version__", "9.9.9")
    problems = flower_patches.mismatches({})
    assert problems == [f"flwr 9.9.9 installed, patches written for {flower_patches.PINNED_FLOWER}"]


def test_prompt_queue_caps_waits_and_keeps_queue_semantics():
    import queue

    q = patches_simulation.PromptQueue()
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
        nodes = wait_for_banks(grid, banks, timeout=3600)
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
            replies = list(grid.send_and_receive(messages, timeout=None))
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
    served = sys.modules.get(patches_simulation.RAY_BACKEND)
    assert not getattr(served, "_fl_credit_stand_in", False)


def test_inprocess_run_never_imports_ray_or_dynamo_and_exit_code_survives(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from fl_credit.runtime.fast_exit import without_teardown
        from fl_credit.config.schema import EngineConfig, ExperimentConfig, TrainConfig
        from fl_credit.run.experiment import run_experiment

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
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "ray False dynamo False" in done.stdout
    assert done.stdout.endswith("unflushed tail")


# --- the bank side: fl_credit.supernode and the warm SuperExec ---------------------------------


def test_supernode_takes_its_own_options_and_passes_the_rest_to_flower():
    from fl_credit.deploy.supernode import runtime_api_address, split_args

    ours, rest = split_args(["--poll-interval", "0.5", "--superlink", "h:1", "--port", "9095"])
    assert ours.poll_interval == 0.5 and not ours.stock
    assert rest == ["--superlink", "h:1", "--port", "9095"]
    assert runtime_api_address(rest) == "127.0.0.1:9095"
    assert runtime_api_address(["--host", "10.0.0.2", "--port=9100"]) == "10.0.0.2:9100"
    with pytest.raises(SystemExit) as err:
        split_args(["--poll-interval", "0"])
    assert err.value.code == 2


def test_supernode_clock_shortens_only_flowers_two_literal_sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(patches_deployment.time, "sleep", slept.append)
    clock = patches_deployment._SuperNodeClock(idle=0.2, reply=0.05)
    clock.sleep(3)  # no message from the SuperLink
    clock.sleep(0.5)  # waiting for the ClientApp's reply
    clock.sleep(1.25)  # anything else is left alone
    assert slept == [0.2, 0.05, 1.25]
    assert isinstance(clock.time(), float)


def test_forked_clientapp_forgets_the_parents_app_modules():
    code = (
        "import sys, numpy, fl_credit.config.errors\n"
        "from fl_credit.runtime.patches_deployment import _forget_app_modules\n"
        "_forget_app_modules()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fl_credit', 'strategies')),"
        " 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.strip() == "[] True", done.stderr


def test_a_fab_is_unpacked_once_then_found_by_its_full_hash(tmp_path, monkeypatch):
    from flwr.cli.build import build_fab_from_disk
    from flwr.supernode.runtime import run_clientapp as runtime

    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr_home"))
    calls: list[int] = []
    original = runtime.install_from_fab

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(runtime, "install_from_fab", counting)
    patches_deployment._install_each_fab_once()
    fab = build_fab_from_disk(REPO)
    first = runtime.install_from_fab(fab, None, True)
    second = runtime.install_from_fab(fab, None, True)
    assert first == second and len(calls) == 1
    assert (first / "fl_credit" / "bank" / "client_app.py").is_file()
    assert list((first / "fl_credit" / "bank" / "__pycache__").glob("client_app.*.pyc"))
    # A marker that does not hold this FAB's full hash is not trusted.
    (first / patches_deployment.FAB_MARKER).write_text("0" * 64)
    assert runtime.install_from_fab(fab, None, True) == first and len(calls) == 2


def test_plain_sgd_step_is_torch_sgds_step_bit_for_bit(monkeypatch):
    import torch

    from fl_credit.model import training
    from fl_credit.model.logistic import new_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (rng.random(300) < 0.2).astype(np.float32)
    for batch_size, mu in ((0, 0.0), (64, 0.1)):
        settings = training.LocalTraining(
            epochs=5, lr=0.5, batch_size=batch_size, optimizer="sgd", l2=0.01, pos_weight=4.0,
            proximal_mu=mu, seed=3,
        )  # fmt: skip
        plain = new_model(6, 0)
        plain_loss = training.train(plain, x, y, settings)
        with monkeypatch.context() as m:
            m.setattr(training, "PlainSGD", lambda params, lr: torch.optim.SGD(params, lr=lr))
            reference = new_model(6, 0)
            reference_loss = training.train(reference, x, y, settings)
        assert plain_loss == reference_loss
        for a, b in zip(plain.parameters(), reference.parameters(), strict=True):
            assert torch.equal(a, b)
