"""Flower's own ``FedXgbBagging`` on the same split and bins, for the "plain Flower" row.

``python -m simulations.studies.fedxgb_bagging [--seed 0] [--rounds 10]``

Each bank continues boosting the global XGBoost model on its own rows (one tree per round,
given each row's bin indices on the federation's grid, so the splits use the same bins) and
sends the new tree; Flower's ``FedXgbBagging`` appends every bank's trees to the global
model, so the coordinator sees each bank's trees in the clear. Same tree settings as
``model=gbm`` (depth, learning rate, lambda, min child weight), each bank's own class weight,
and the prior correction of the federation's class weight on the final log-odds. Needs the
``xgboost`` package (``pip install xgboost-cpu``).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from sklearn.metrics import roc_auc_score

from fl_credit.boosting.binning import agreed_layout
from fl_credit.config.compose import compose_experiment
from fl_credit.coordinator.rounds import run_rounds
from fl_credit.data.bank_file import read_bank
from fl_credit.data.prepare import prepare, write_bank_files
from fl_credit.data.scaling import pooled_standardizer
from fl_credit.model.imbalance import positive_weight
from fl_credit.run import baselines
from fl_credit.runtime.engine import simulate


def xgb_params(model, pos_weight: float) -> dict:
    """XGBoost settings matching ``model=gbm``'s."""
    return {
        "objective": "binary:logistic",
        "eta": model.learning_rate,
        "max_depth": model.depth,
        "lambda": model.reg_lambda,
        "gamma": model.gamma,
        "min_child_weight": model.min_child_weight,
        "scale_pos_weight": pos_weight,
        "tree_method": "hist",
        "max_bin": 256,
        "nthread": 1,
    }


def client_app(model, edges_by_bank: dict) -> ClientApp:
    """A bank that boosts one more tree on its rows and sends that tree."""
    import xgboost as xgb

    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        config = message.content["config"]
        pid = int(context.node_config["partition-id"])
        bank = read_bank(Path(str(config["bank-dir"])) / f"bank_{pid}.npz")
        layout = edges_by_bank["layout"]
        data = xgb.DMatrix(layout.bin_index(bank.x_train), label=bank.y_train)
        params = xgb_params(model, positive_weight(bank.y_train))
        global_model = message.content["arrays"]["0"].numpy().tobytes()
        if global_model:
            bst = xgb.Booster(params=params)
            bst.load_model(bytearray(global_model))
            bst = xgb.train(params, data, num_boost_round=1, xgb_model=bst)
            total = bst.num_boosted_rounds()
            bst = bst[total - 1 : total]
        else:
            bst = xgb.train(params, data, num_boost_round=1)
        raw = bst.save_raw("json")
        content = RecordDict(
            {
                "arrays": ArrayRecord([np.frombuffer(bytes(raw), dtype=np.uint8)]),
                "metrics": MetricRecord({"num-examples": len(bank.y_train)}),
            }
        )
        return Message(content=content, reply_to=message)

    return app


def run(seed: int, rounds: int) -> dict:
    """Train FedXgbBagging on the run's split; the test AUC and the trees."""
    import xgboost as xgb
    from flwr.serverapp.strategy import FedXgbBagging

    cfg, _ = compose_experiment(["model=gbm", f"seed={seed}", "engine.backend=inprocess"])
    prepared = prepare(cfg)
    data = baselines.pooled(list(prepared.banks.values()))
    layout = agreed_layout(pooled_standardizer(data.x_train), prepared.bounds, cfg.model.bins)
    banks = len(prepared.banks)
    with tempfile.TemporaryDirectory(prefix="fedxgb_") as bank_dir:
        write_bank_files(prepared, Path(bank_dir), suffix=".npz")
        strategy = FedXgbBagging(
            fraction_evaluate=0.0, min_train_nodes=banks, min_available_nodes=banks
        )

        def server_main(grid):
            empty = ArrayRecord([np.frombuffer(b"", dtype=np.uint8)])
            return run_rounds(
                strategy,
                grid,
                empty,
                num_rounds=rounds,
                timeout=cfg.engine.timeout,
                train_config=ConfigRecord({"bank-dir": bank_dir}),
            )

        result = simulate(
            server_main, client_app(cfg.model, {"layout": layout}), banks, cfg.engine
        ).result
    bst = xgb.Booster()
    bst.load_model(bytearray(result.arrays["0"].numpy().tobytes()))
    margin = bst.predict(xgb.DMatrix(layout.bin_index(prepared.x_test)), output_margin=True)
    margin = margin - math.log(positive_weight(data.y_train))
    pd_ = 1.0 / (1.0 + np.exp(-margin))
    return {
        "seed": seed,
        "rounds": rounds,
        "trees": bst.num_boosted_rounds(),
        "auc": float(roc_auc_score(prepared.y_test, pd_)),
        "mean_pd": float(pd_.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the test AUC of FedXgbBagging for one seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    print(run(args.seed, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
