"""The bank's Flower ClientApp: it reads only its own file and answers the server's messages.

Messages (Flower Message API):

- ``query.moments``: the bank's feature sums (pass 1: ``[n, sum x]``; pass 2: squared deviations
  from the global mean), for federated standardisation.
- ``query.standardizer``: keep the agreed means, deviations and class weight in
  ``context.state``.
- ``train``: train the received global model on the bank's rows; FedAvg reply contract.
- ``query.histogram``: validation-score histograms of the received model, per class, for the
  validation threshold.
- ``query.privacy``: the bank's privacy accountant report (DP runs only).

torch is imported only by the handlers that carry a model (``train``, ``query.histogram``):
under the Deployment Engine each message may start a fresh process, and the statistics and
secure-aggregation messages need no torch (about 1.2 s of imports, 3-4 s on a loaded 2-core
machine).

Every reply to a summed query has one ArrayRecord ``"arrays"`` holding ``"values"`` and one
MetricRecord ``"metrics"`` holding ``"num-examples"``, so the same replies can be summed in the
clear or through secure aggregation.

State that must outlive one message (the DP accountant) lives in ``context.state``: under the
Deployment Engine every message starts a fresh process. The module-level cache below only
saves re-reading a file inside one long-lived simulation worker.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from fl_credit.bank_settings import BankSettings
from fl_credit.data.bank_file import BankData, read_bank
from fl_credit.data.scaling import Standardizer, centered_squares, first_moments
from fl_credit.errors import DataError, FlCreditError
from fl_credit.imbalance import balance
from fl_credit.thresholds import score_histograms

log = logging.getLogger(__name__)

SCALER_MEAN = "scaler-mean"
SCALER_STD = "scaler-std"
SCALER_STATE = "standardizer"
POS_WEIGHT = "pos-weight"


@dataclass(frozen=True)
class BankRows:
    """A bank's rows scaled with the federation's statistics, balanced for training."""

    x_train: np.ndarray
    y_train: np.ndarray
    pos_weight: float
    x_val: np.ndarray
    y_val: np.ndarray
    raw_train_rows: int


_FILES: dict[str, BankData] = {}
_ROWS: dict[str, BankRows] = {}


def bank_path(context: Context, settings: BankSettings) -> Path:
    """This bank's file: ``data-path`` from the node config (deployment), else the
    simulation's bank folder and the node's partition id."""
    if "data-path" in context.node_config:
        return Path(str(context.node_config["data-path"]))
    if not settings.bank_dir or "partition-id" not in context.node_config:
        raise DataError("this SuperNode has no data-path in its --node-config")
    pid = int(context.node_config["partition-id"])
    for suffix in (".npz", ".csv"):
        path = Path(settings.bank_dir) / f"bank_{pid}{suffix}"
        if path.is_file():
            return path
    raise DataError(f"no data file for bank {pid} in {settings.bank_dir}")


def bank_name(context: Context, settings: BankSettings) -> str:
    """This bank's name: its file's stem (``bank_0`` for ``bank_0.csv``)."""
    return bank_path(context, settings).stem


def load_bank(context: Context, settings: BankSettings) -> BankData:
    """The bank's unscaled rows (cached per file inside one worker process)."""
    path = str(bank_path(context, settings))
    if path not in _FILES:
        _FILES[path] = read_bank(path)
    return _FILES[path]


def prepared_rows(context: Context, settings: BankSettings, scaler: Standardizer) -> BankRows:
    """Scale with the federation's statistics, then rebalance the training rows."""
    bank = load_bank(context, settings)
    digest = hashlib.sha1(scaler.mean.tobytes() + scaler.std.tobytes()).hexdigest()
    key = f"{bank_path(context, settings)}|{digest}|{settings.imbalance}|{settings.seed}"
    if key not in _ROWS:
        x_train = scaler.transform(bank.x_train)
        x_bal, y_bal, pos_weight = balance(
            x_train,
            bank.y_train,
            settings.imbalance,
            k_neighbors=settings.k_neighbors,
            seed=settings.seed,
        )
        _ROWS[key] = BankRows(
            x_train=x_bal,
            y_train=y_bal,
            pos_weight=pos_weight,
            x_val=scaler.transform(bank.x_val),
            y_val=bank.y_val,
            raw_train_rows=len(bank.y_train),
        )
    return _ROWS[key]


def rows_and_model(message: Message, context: Context) -> tuple[BankSettings, BankRows, object]:
    """What a model-carrying request needs: settings, the bank's rows, the received model."""
    from fl_credit.model import model_from_arrays  # torch: only messages that carry a model

    settings = BankSettings.from_config(message.content["config"])
    rows = prepared_rows(context, settings, stored_scaler(context))
    if settings.imbalance == "class_weight":
        rows = dataclasses.replace(rows, pos_weight=agreed_pos_weight(context))
    return settings, rows, model_from_arrays(message.content["arrays"])


def stored_scaler(context: Context) -> Standardizer:
    """The federation's standardiser, kept in ``context.state`` since ``query.standardizer``."""
    if SCALER_STATE not in context.state:
        raise DataError("this bank has not received the federation's standardiser yet")
    mean, std, _ = context.state[SCALER_STATE].to_numpy_ndarrays()
    return Standardizer(mean=mean, std=std)


def agreed_pos_weight(context: Context) -> float:
    """The federation's class weight (repaid / defaulted rows over all banks)."""
    return float(context.state[SCALER_STATE].to_numpy_ndarrays()[2][0])


_HANDLERS: list[tuple[str, str, object]] = []


BANK_ERROR_CODE = 4001


def app_handler(category: str, action: str):
    """Record a handler; :func:`make_client_app` registers all of them on a ClientApp.

    A bank-side input problem (:class:`FlCreditError`) becomes an error reply carrying its
    one-line reason, instead of a traceback inside the simulation worker.
    """

    def record(func):
        @functools.wraps(func)
        def handler(message: Message, context: Context) -> Message:
            try:
                return func(message, context)
            except FlCreditError as err:
                return Message(Error(code=BANK_ERROR_CODE, reason=str(err)), reply_to=message)

        _HANDLERS.append((category, action, handler))
        return handler

    return record


def summed_reply(message: Message, values: np.ndarray, weight: float = 1.0) -> Message:
    """Reply carrying a vector to be summed over banks."""
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.asarray(values, dtype=np.float64)]),
            "metrics": MetricRecord({"num-examples": weight}),
        }
    )
    return Message(content=content, reply_to=message)


@app_handler("query", "moments")
def moments(message: Message, context: Context) -> Message:
    """Pass 1: ``[defaults, n, sum x]``; pass 2: squared deviations from the sent global
    mean, divided by the sent total row count."""
    config = message.content["config"]
    settings = BankSettings.from_config(config)
    bank = load_bank(context, settings)
    if int(config["pass"]) == 1:
        return summed_reply(message, np.r_[bank.y_train.sum(), first_moments(bank.x_train)])
    mean = np.asarray(config[SCALER_MEAN], dtype=np.float64)
    return summed_reply(message, centered_squares(bank.x_train, mean) / float(config["count"]))


@app_handler("query", "standardizer")
def standardizer(message: Message, context: Context) -> Message:
    """Keep the federation's agreed means, deviations and class weight for later messages."""
    config = message.content["config"]
    mean = np.asarray(config[SCALER_MEAN], dtype=np.float64)
    std = np.asarray(config[SCALER_STD], dtype=np.float64)
    pos_weight = np.asarray([config[POS_WEIGHT]], dtype=np.float64)
    context.state[SCALER_STATE] = ArrayRecord([mean, std, pos_weight])
    return Message(content=RecordDict(), reply_to=message)


@app_handler("train", "default")
def train_round(message: Message, context: Context) -> Message:
    """Train the global model on this bank's rows for the configured local epochs."""
    from fl_credit.model import to_arrays
    from fl_credit.training import LocalTraining, log_loss, train

    config = message.content["config"]
    settings, rows, model = rows_and_model(message, context)
    server_round = int(config.get("server-round", 1))
    val_loss_before = log_loss(model, rows.x_val, rows.y_val, rows.pos_weight)
    seed = settings.seed * 10_007 + server_round
    if settings.dp_mode == "opacus":
        from strategies.dp.opacus_training import train_private

        train_loss = train_private(
            model,
            rows.x_train,
            rows.y_train,
            rows.pos_weight,
            settings,
            context.state,
            server_round,
            bank_key=bank_name(context, settings),
            secret_noise=settings.dp_secret_noise,
        )
        log_privacy_spent(bank_name(context, settings), server_round, context)
    else:
        local = LocalTraining(
            epochs=settings.local_epochs,
            lr=settings.lr,
            batch_size=settings.batch_size,
            optimizer=settings.optimizer,
            l2=settings.l2,
            pos_weight=rows.pos_weight,
            proximal_mu=settings.proximal_mu,
            seed=seed,
        )
        train_loss = train(model, rows.x_train, rows.y_train, local)
    metrics = {"num-examples": rows.raw_train_rows}
    if settings.dp_mode == "off":
        # Losses are computed from the bank's rows and no DP noise covers them: sent only
        # without DP (and then, under secure aggregation, only their weighted sum is seen).
        metrics.update({"train_loss": train_loss, "val_loss_before": val_loss_before})
    metrics = MetricRecord(metrics)
    content = RecordDict({"arrays": to_arrays(model), "metrics": metrics})
    return Message(content=content, reply_to=message)


def log_privacy_spent(bank: str, server_round: int, context: Context) -> None:
    """The bank's own per-round line: how much of its budget it has spent so far."""
    from strategies.dp.opacus_training import privacy_report

    report = privacy_report(context.state)
    log.info(
        "%s: round %d, epsilon spent %.3f of %.3f (delta %.1e, noise multiplier %.3f)",
        bank,
        server_round,
        report["epsilon"],
        report["target_epsilon"],
        report["delta"],
        report["noise_multiplier"],
    )


@app_handler("query", "histogram")
def histogram(message: Message, context: Context) -> Message:
    """Per-class histograms of the received model's scores on this bank's validation rows."""
    from fl_credit.model import predict_proba

    _, rows, model = rows_and_model(message, context)
    scores = predict_proba(model, rows.x_val)
    bins = int(message.content["config"]["bins"])
    return summed_reply(message, score_histograms(rows.y_val, scores, bins))


@app_handler("query", "privacy")
def privacy(message: Message, context: Context) -> Message:
    """This bank's privacy accountant report (DP runs only)."""
    from strategies.dp.opacus_training import privacy_report

    settings = BankSettings.from_config(message.content["config"])
    report = {"bank": bank_name(context, settings), **privacy_report(context.state)}
    content = RecordDict({"privacy": ConfigRecord(report)})
    return Message(content=content, reply_to=message)


def make_client_app(extra_mods: list | None = None) -> ClientApp:
    """The bank's ClientApp with its standard mods, after ``extra_mods`` (simulated faults).

    Mods, outermost first: simulated faults, secure aggregation (masks the reply last, so it
    must sit outside every mod that changes the plaintext), bank-level DP (clips and noises
    the update). Both are inert unless the server's message asks for them.
    """
    from strategies.dp.central import central_dp_mod
    from strategies.secagg import install_secagg, secagg_mod

    client = ClientApp(mods=[*(extra_mods or []), secagg_mod, central_dp_mod])
    install_secagg(client)
    for category, action, func in _HANDLERS:
        getattr(client, category)(action)(func)
    return client


app = make_client_app()
