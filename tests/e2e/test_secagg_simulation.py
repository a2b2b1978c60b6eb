"""SecAggFedAvg through Flower's simulation engine (Ray): one run, several scenarios.

5 banks, threshold 3. Before training, the scaling statistics go through secure_sum.
Round 1: all banks. Round 2: banks 1 and 3 crash after the key exchange; the survivors'
sum is recovered with the keys sent in round 1. Round 3: bank 0 crashes too, only 2 banks
survive: the round is skipped with one log line and the run still ends.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from strategies.secagg import dropout_mod, quantization_error_bound, secagg_mod
from tests.secagg.test_secagg_strategy import (
    N_BANKS,
    SHAPES,
    expected_global,
    initial_arrays,
    strategy,
    toy_app,
)


@pytest.mark.slow
def test_simulation_dropouts_stats_and_skip() -> None:
    out: dict = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        strat = strategy()
        stats = strat.secure_sum(
            grid, RecordDict(), "query.stats", value_range=5000.0, min_nodes=N_BANKS
        )
        out["stats"] = stats.records
        out["result"] = strat.start(grid, initial_arrays(), num_rounds=3)
        out["reports"] = strat.reports

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("flwr").addHandler(handler)
    try:
        run_simulation(
            server_app=server,
            client_app=toy_app(
                [dropout_mod({1, 3}, from_round=2), dropout_mod({0}, from_round=3), secagg_mod]
            ),
            num_supernodes=N_BANKS,
            backend_config={"client_resources": {"num_cpus": 1}},
        )
    finally:
        logging.getLogger("flwr").removeHandler(handler)

    assert "result" in out, "ServerApp did not finish"
    sums = out["stats"]["feat"]["sum"].numpy()
    want_sums = [sum(k * (p + 1) for p in range(N_BANKS)) + 1000.0 for k in range(4)]
    np.testing.assert_allclose(sums, want_sums, atol=1e-3)

    reports = out["reports"]
    train = [r for r in reports if "(train)" in r.label]
    assert [len(r.survivors) for r in train] == [5, 3, 2]
    assert [r.ok for r in train] == [True, True, False]
    assert train[1].exchanges == 2  # recovered with the keys sent in round 1
    skipped = [s for s in lines if "SKIPPED" in s and "(train)" in s]
    assert len(skipped) == 1 and "only 2 of 3 banks survived" in skipped[0]

    want = expected_global([list(range(N_BANKS)), [0, 2, 4], []])
    bound = 2 * quantization_error_bound(N_BANKS, 16, 90)
    result = out["result"]
    for name in SHAPES:
        assert np.max(np.abs(result.arrays[name].numpy() - want[name])) <= bound
    assert 3 not in result.train_metrics_clientapp  # skipped round: no metrics
