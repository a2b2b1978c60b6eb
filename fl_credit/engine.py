"""The one place that starts Flower's simulation engine."""

from __future__ import annotations

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

    started = time.perf_counter()
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=num_banks,
        backend_config={"client_resources": {"num_cpus": engine.cpus_per_bank, "num_gpus": 0.0}},
    )
    wall = time.perf_counter() - started
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        raise FlCreditError("the simulation ended without a result (see the log above)")
    return EngineRun(outcome["result"], wall, outcome["server_seconds"])
