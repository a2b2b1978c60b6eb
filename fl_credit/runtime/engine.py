"""The one place that starts Flower's simulation engine."""

from __future__ import annotations

import copy
import logging
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fl_credit.config.errors import FlCreditError
from fl_credit.config.schema import EngineConfig
from fl_credit.runtime.flower_patches import apply_patches

log = logging.getLogger(__name__)


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


def backend_config(engine: EngineConfig, init_args: dict | None = None) -> dict:
    """Flower's ``backend_config``: each bank's resources, ``ray.init`` arguments, and the
    Ray cluster to join (``engine.ray_address``)."""
    init = dict(init_args or {})
    if engine.backend == "ray" and engine.ray_address:
        # Flower's RayBackend passes init_args to ray.init (it starts no local Ray then).
        init["address"] = engine.ray_address
    return {
        "client_resources": {"num_cpus": engine.cpus_per_bank, "num_gpus": 0.0},
        "init_args": init,
    }


_warned_parallel_ray = False


def keep_ray_warm(engine: EngineConfig) -> bool:
    """Whether this process may keep its own Ray instance between runs.

    Not in a worker process of a parallel sweep launcher (Hydra's joblib launcher) that was
    given no cluster to share: each worker would keep a Ray instance of its own, sized for
    the whole machine, until the launcher ends it, possibly without Ray's shutdown. There,
    every run starts and stops its own Ray (or use ``engine.ray_address``, or the in-process
    backend the named experiments use).
    """
    global _warned_parallel_ray
    if not engine.keep_warm:
        return False
    if engine.backend == "ray" and not engine.ray_address and mp.parent_process() is not None:
        if not _warned_parallel_ray:
            log.warning(
                "engine.backend=ray in a parallel sweep worker: each run starts and stops its "
                "own Ray; set engine.ray_address (one shared cluster) or engine.backend=inprocess"
            )
            _warned_parallel_ray = True
        return False
    return True


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

    from fl_credit.runtime.run_log import ray_init_args

    log.info(
        "starting the %s engine with %d banks; engine start and key setup take 10-45 s",
        engine.backend,
        num_banks,
    )
    started = time.perf_counter()
    backend = InProcessBackend if engine.backend == "inprocess" else None
    with apply_patches(backend=backend, keep_ray=keep_ray_warm(engine)):
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=num_banks,
            backend_config=backend_config(engine, ray_init_args()),
        )
    wall = time.perf_counter() - started
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        raise FlCreditError("the simulation ended without a result (see the log above)")
    return EngineRun(outcome["result"], wall, outcome["server_seconds"])
