"""The one place that starts Flower's simulation engine."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fl_credit.config import EngineConfig
from fl_credit.errors import FlCreditError

log = logging.getLogger(__name__)


def keep_ray_running() -> None:
    """Let every simulation in this process share one Ray instance.

    Flower 1.41's Ray backend calls ``ray.init`` only when Ray is not running, but calls
    ``ray.shutdown`` after every run, so each point of a sweep pays Ray's start-up again.
    This replaces the backend's ``terminate`` with one that still kills the run's actors but
    leaves Ray up; Ray stops when the process exits. Idempotent.
    """
    from flwr.server.superlink.fleet.vce.backend import raybackend

    backend = getattr(raybackend, "_fl_credit_ray_backend", raybackend.RayBackend)
    if getattr(backend, "_fl_credit_keeps_ray", False):
        return

    def terminate(self) -> None:
        if self.pool:
            self.pool.terminate_all_actors()

    backend.terminate = terminate
    backend._fl_credit_keeps_ray = True


class InProcessBackend:
    """A Flower simulation backend that runs each ClientApp call in this process.

    Messages still travel through Flower's simulation runtime (LinkState, the VCE worker
    queue, the ClientApp's mods and handlers, each node's Context); only the Ray actor
    around the call is gone, and with it Ray's start-up and per-message hop. Calls run one
    at a time. Used by tests and for sweeps of small experiments.
    """

    def __init__(self, backend_config: dict) -> None:
        self.app_fn = None

    def build(self, app_fn) -> None:
        """Keep the function that loads the ClientApp."""
        self.app_fn = app_fn

    @property
    def num_workers(self) -> int:
        """One message at a time."""
        return 1

    def is_worker_idle(self) -> bool:
        """Always ready: calls are synchronous."""
        return True

    def terminate(self) -> None:
        """Nothing to stop."""

    def process_message(self, message, context):
        """Run the ClientApp on ``message``; errors surface as Flower's ClientAppException."""
        from flwr.clientapp.client_app import ClientAppException

        # A private copy, as Ray's pickling gives each actor: the ClientApp's mods may edit
        # the message, and this object is the one Flower's LinkState keeps.
        message = copy.deepcopy(message)
        try:
            return self.app_fn()(message=message, context=context), context
        except Exception as ex:
            raise ClientAppException(str(ex)) from ex


def use_backend(name: str) -> None:
    """Select the backend Flower's simulation runtime builds for the next run.

    Flower 1.41 hard-codes ``RayBackend`` in the runtime but imports it from its module at
    call time, so rebinding the module attribute selects the backend.
    """
    from flwr.server.superlink.fleet.vce.backend import raybackend

    original = getattr(raybackend, "_fl_credit_ray_backend", raybackend.RayBackend)
    raybackend._fl_credit_ray_backend = original
    raybackend.RayBackend = InProcessBackend if name == "inprocess" else original


@dataclass(frozen=True)
class EngineRun:
    """What a simulation returned and where its time went."""

    result: object
    wall_seconds: float
    server_seconds: float

    @property
    def engine_seconds(self) -> float:
        """Time spent starting and stopping the engine (outside the ServerApp)."""
        return max(self.wall_seconds - self.server_seconds, 0.0)


def simulate(
    server_main: Callable[[Grid], object],
    client_app: ClientApp,
    num_banks: int,
    engine: EngineConfig,
) -> EngineRun:
    """Run ``server_main(grid)`` as a ServerApp against ``num_banks`` simulated banks.

    ``run_simulation`` returns nothing, so the ServerApp hands its result (or its exception)
    back through this closure; an exception is re-raised here.
    """
    from flwr.simulation import run_simulation

    use_backend(engine.backend)
    if engine.keep_warm:
        keep_ray_running()
    outcome: dict = {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        started = time.perf_counter()
        try:
            outcome["result"] = server_main(grid)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = err
        outcome["server_seconds"] = time.perf_counter() - started

    from fl_credit.run_log import ray_init_args

    log.info(
        "starting the %s engine with %d banks; engine start and key setup take 10-45 s",
        engine.backend,
        num_banks,
    )
    started = time.perf_counter()
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=num_banks,
        backend_config={
            "client_resources": {"num_cpus": engine.cpus_per_bank, "num_gpus": 0.0},
            "init_args": ray_init_args(),
        },
    )
    wall = time.perf_counter() - started
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        raise FlCreditError("the simulation ended without a result (see the log above)")
    return EngineRun(outcome["result"], wall, outcome["server_seconds"])
