"""The bank's Flower ClientApp: it reads only its own file and answers the server's messages.

Messages (Flower Message API):

- ``query.moments``: the bank's feature sums (pass 1: ``[n, sum x]``; pass 2: squared deviations
  from the global mean), for federated standardisation.
- ``query.standardizer``: keep the agreed means, deviations and class weight in
  ``context.state``.
- ``train``: train the received global model on the bank's rows; FedAvg reply contract. The
  reply declares the digest of the model it used (secure aggregation's once-per-model rule).
  With ``optimizer="newton"``: the sums of the weighted BCE gradient and Hessian at the
  received model instead (``strategies/newton.py`` has the contract).
- ``query.woe`` / ``query.woe_table`` (``features=woe``): the bank's defaults and repaid loans
  per fine bin of every feature on the sent grid (a planned release under DP); then keep the
  federation's WoE table, after which rows become WoE features (:mod:`fl_credit.credit.woe`).
- ``query.histogram``: score histograms of the received model, per class, for the decision
  threshold.
- ``query.reliability``: reliability bins of the received model on the validation rows
  (rows, defaults and summed PD per bin), for the calibration check (refused under DP).
- ``query.evaluate``: federated evaluation of the received model on the bank's own test rows.
- ``query.gbm`` (``model=gbm``): gradient and Hessian sums per node, feature and bin of the
  tree being grown (:mod:`fl_credit.boosting.bank`).
- ``query.grades``: the bank's per-grade counts for the validation report (rows, defaults and
  PD sums per grade, overall and by group, on validation and test rows; a planned release
  under DP), once per run (:mod:`fl_credit.validation.bank_counts`).
- ``query.privacy``: how many rounds and releases the bank made (DP runs only; nothing
  data-dependent).

torch is imported only by the handlers that carry a model (``train``, ``query.histogram``,
``query.reliability``, ``query.evaluate``): under the Deployment Engine each message may start
a fresh process, and the statistics and secure-aggregation messages need no torch (whose
import costs seconds).

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

from fl_credit.bank.errors import BANK_ERROR_CODE, private_errors_mod
from fl_credit.bank.privacy import private_release
from fl_credit.config.errors import DataError, FlCreditError
from fl_credit.credit.binned_metrics import (
    DP_EVALUATION_BINS,
    evaluation_sensitivity,
    evaluation_vector,
)
from fl_credit.credit.calibration import reliability_bins
from fl_credit.credit.thresholds import (
    checked_span,
    logit_histograms,
    model_logit_span,
    score_counts,
    score_histograms,
)
from fl_credit.data.bank_file import BankData, read_bank
from fl_credit.data.dictionary import FeatureBounds
from fl_credit.data.scaling import (
    Standardizer,
    centered_squares,
    first_moments,
    private_moments,
    private_moments_sensitivity,
)
from fl_credit.model.imbalance import balance
from fl_credit.protocol.keys import POS_WEIGHT, SCALER_KEYS, SCALER_MEAN
from fl_credit.protocol.public_weights import public_weight
from fl_credit.protocol.settings import BankSettings
from strategies.secagg.chain import declare_rule
from strategies.secagg.view import declare_held, declare_used, records_digest

log = logging.getLogger(__name__)

SCALER_STATE = "standardizer"
WOE_STATE = "woe-table"
WOE_RELEASED = "woe-released"
GRADES_RELEASED = "grades-released"
MODEL_ARRAYS = ("linear.weight", "linear.bias")  # what a model-carrying handler loads


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
    digest = hashlib.sha1(b"".join(a.tobytes() for a in scaler.arrays())).hexdigest()
    kind = type(scaler).__name__  # RawInputs (trees) keep rows unscaled
    key = f"{bank_path(context, settings)}|{kind}|{digest}|{settings.imbalance}|{settings.seed}"
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
    from fl_credit.model.logistic import model_from_arrays  # torch: only messages with a model

    settings = BankSettings.from_config(message.content["config"])
    arrays = message.content["arrays"]
    rows = prepared_rows(context, settings, model_inputs(context, arrays))
    if settings.imbalance == "class_weight":
        rows = dataclasses.replace(rows, pos_weight=agreed_pos_weight(context))
    return settings, rows, model_from_arrays(arrays)


def model_inputs(context: Context, arrays: ArrayRecord) -> Standardizer:
    """What the received model scores: rows scaled by the stored standardiser, or unscaled
    rows for a tree ensemble (``model=gbm``)."""
    from fl_credit.boosting.inputs import RawInputs
    from fl_credit.boosting.tree import is_ensemble

    scaler = stored_scaler(context)
    return RawInputs.of(scaler) if is_ensemble(arrays) else scaler


def stored_scaler(context: Context) -> Standardizer:
    """The federation's standardiser, kept in ``context.state`` since ``query.standardizer``;
    under ``features=woe``, once the table came, the map of raw rows to WoE features instead
    (:class:`fl_credit.credit.woe.WoeFeatures`, which stands in for it)."""
    if SCALER_STATE not in context.state:
        raise DataError("this bank has not received the federation's standardiser yet")
    scaler = Standardizer.from_arrays(context.state[SCALER_STATE].to_numpy_ndarrays()[:-1])
    if WOE_STATE in context.state:
        from fl_credit.credit.woe import features_from_lists

        return features_from_lists(context.state[WOE_STATE])  # type: ignore[return-value]
    return scaler


def agreed_pos_weight(context: Context) -> float:
    """The federation's class weight (repaid / defaulted rows over all banks)."""
    return float(context.state[SCALER_STATE].to_numpy_ndarrays()[-1][0])


_HANDLERS: list[tuple[str, str, object]] = []


def app_handler(category: str, action: str):
    """Record a handler; :func:`make_client_app` registers all of them on a ClientApp.

    A bank-side input problem (:class:`FlCreditError`) becomes an error reply carrying its
    one-line reason, instead of a traceback inside the simulation worker. Every reply
    declares what the bank computed with from earlier messages (:func:`held_digest`), which
    secure aggregation binds into its masks.
    """

    def record(func):
        @functools.wraps(func)
        def handler(message: Message, context: Context) -> Message:
            try:
                return declare_held(func(message, context), held_digest(context))
            except FlCreditError as err:
                return Message(Error(code=BANK_ERROR_CODE, reason=str(err)), reply_to=message)

        _HANDLERS.append((category, action, handler))
        return handler

    return record


def held_digest(context: Context) -> bytes:
    """Digest of the agreed values this bank keeps from earlier messages (standardiser, class
    weight, WoE table); ``b""`` before any. Every bank of an honest run holds the same."""
    held = {key: context.state[key] for key in (SCALER_STATE, WOE_STATE) if key in context.state}
    return records_digest(held) if held else b""


def summed_reply(message: Message, values: np.ndarray, weight: float = 1.0) -> Message:
    """Reply carrying a vector to be summed over banks."""
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.asarray(values, dtype=np.float64)]),
            "metrics": MetricRecord({"num-examples": weight}),
        }
    )
    return Message(content=content, reply_to=message)


def released_reply(
    message: Message,
    context: Context,
    settings: BankSettings,
    values: np.ndarray,
    *,
    release: str,
    sensitivity: float,
    n_rows: int,
) -> Message:
    """The summed reply of one planned release: ``values`` plus this bank's DP noise share
    when DP is on (:func:`fl_credit.bank.privacy.private_release`)."""
    noised = private_release(
        values,
        release=release,
        sensitivity=sensitivity,
        message=message,
        context=context,
        settings=settings,
        n_rows=n_rows,
        bank_key=bank_name(context, settings),
    )
    return summed_reply(message, noised)


@app_handler("query", "moments")
def moments(message: Message, context: Context) -> Message:
    """The bank's feature statistics for the federation's standardiser and class weight.

    Pass 1: ``[defaults, n, sum x]``; pass 2: squared deviations from the sent global mean,
    divided by the sent total row count. Under ``dp=opacus`` a single private pass instead:
    features clipped to the public ranges, plus this bank's share of the noise.
    """
    config = message.content["config"]
    settings = BankSettings.from_config(config)
    bank = load_bank(context, settings)
    if str(config["pass"]) == "private":
        bounds = FeatureBounds.from_lists(dict(config))
        return released_reply(
            message,
            context,
            settings,
            private_moments(bank.x_train, bank.y_train, bounds),
            release="statistics",
            sensitivity=private_moments_sensitivity(bounds),
            n_rows=len(bank.y_train),
        )
    if int(config["pass"]) == 1:
        return summed_reply(message, np.r_[bank.y_train.sum(), first_moments(bank.x_train)])
    mean = np.asarray(config[SCALER_MEAN], dtype=np.float64)
    return summed_reply(message, centered_squares(bank.x_train, mean) / float(config["count"]))


@app_handler("query", "standardizer")
def standardizer(message: Message, context: Context) -> Message:
    """Keep the federation's agreed standardiser and class weight for later messages."""
    config = message.content["config"]
    scaler = Standardizer.from_arrays(
        [np.asarray(config[key], dtype=np.float64) for key in SCALER_KEYS if key in config]
    )
    pos_weight = np.asarray([config[POS_WEIGHT]], dtype=np.float64)
    context.state[SCALER_STATE] = ArrayRecord([*scaler.arrays(), pos_weight])
    return Message(content=RecordDict(), reply_to=message)


@app_handler("query", "woe")
def woe_counts(message: Message, context: Context) -> Message:
    """Defaults and repaid loans per fine bin of every feature, on the grid the server sent
    (``features=woe``). Under ``dp=opacus`` a planned release: one borrower adds 1 to one
    count per feature (L2 sensitivity ``sqrt(features)``), plus this bank's noise share.

    Answered once per run and only on the agreed grid (the one the stored standardiser
    gives): a grid with a tiny bin around a known borrower's value, or two answers on
    shifted grids, would give that borrower's label away.
    """
    from fl_credit.credit.woe import (
        bank_counts,
        check_agreed_grid,
        counts_sensitivity,
        grid_from_lists,
    )

    config = message.content["config"]
    settings = BankSettings.from_config(config)
    bank = load_bank(context, settings)
    if WOE_RELEASED in context.state:
        raise DataError("this bank has already released its WoE counts in this run")
    scaler = stored_scaler(context)
    try:
        edges = grid_from_lists(config)
        check_agreed_grid(edges, scaler.mean, scaler.std, list(bank.feature_names))
    except (KeyError, ValueError) as err:
        raise DataError(f"WoE counts refused: {err}") from None
    context.state[WOE_RELEASED] = ConfigRecord({"done": True})
    return released_reply(
        message,
        context,
        settings,
        bank_counts(bank.x_train, bank.y_train, edges),
        release="woe",
        sensitivity=counts_sensitivity(len(edges)),
        n_rows=len(bank.y_train),
    )


@app_handler("query", "woe_table")
def woe_table(message: Message, context: Context) -> Message:
    """Keep the federation's WoE table: from now on rows become WoE features."""
    from fl_credit.credit.woe import MOMENT_KEYS, TABLE_KEYS, features_from_lists

    config = message.content["config"]
    try:
        features_from_lists(config)  # refuse a table that does not decode
    except (KeyError, ValueError) as err:
        raise DataError(f"bad WoE table: {err}") from None
    keys = [f"woe-{key}" for key in (*TABLE_KEYS, *MOMENT_KEYS)]
    context.state[WOE_STATE] = ConfigRecord({key: list(config[key]) for key in keys})
    return Message(content=RecordDict(), reply_to=message)


@app_handler("train", "default")
def train_round(message: Message, context: Context) -> Message:
    """Train the global model on this bank's rows for the configured local epochs."""
    from fl_credit.bank.handlers import newton_reply
    from fl_credit.model.logistic import to_arrays
    from fl_credit.model.training import log_loss, train
    from strategies.attacks.exchange import poison_order

    config = message.content["config"]
    settings, rows, model = rows_and_model(message, context)
    used = {name: message.content["arrays"][name].numpy() for name in MODEL_ARRAYS}
    server_round = int(config.get("server-round", 1))
    seed = settings.round_seed(server_round)
    spec = poison_order(context)  # a simulated malicious bank's own order, never the request's
    if spec is not None:
        rows = poisoned(rows, spec, context, settings, seed)
    if str(config.get("optimizer", "")) == "newton":
        reply = newton_reply(message, rows.x_train, rows.y_train, rows.pos_weight, settings)
        return declare_rule(declare_used(reply, used), "newton")  # masked only on the chain
    val_loss_before = log_loss(model, rows.x_val, rows.y_val, rows.pos_weight)
    if settings.dp_mode == "opacus":
        from strategies.dp.opacus_training import train_private

        train_loss = train_private(
            model,
            rows.x_train,
            rows.y_train,
            rows.pos_weight,
            settings.dp_settings(),
            context.state,
            server_round,
            steps=settings.local_steps(),
            seed=settings.seed,
            bank_key=bank_name(context, settings),
            secret_noise=settings.dp_secret_noise,
        )
        log_privacy_spent(bank_name(context, settings), server_round, context)
    else:
        local = settings.local_training(rows.pos_weight, server_round)
        train_loss = train(model, rows.x_train, rows.y_train, local)
    # Under DP the exact row count is never sent: the bank's public weight instead.
    metrics = {"num-examples": public_weight(settings.dp_mode, rows.raw_train_rows)}
    if settings.dp_mode == "off":
        # Losses are computed from the bank's rows and no DP noise covers them: sent only
        # without DP (and then, under secure aggregation, only their weighted sum is seen).
        metrics.update({"train_loss": train_loss, "val_loss_before": val_loss_before})
    metrics = MetricRecord(metrics)
    content = RecordDict({"arrays": to_arrays(model), "metrics": metrics})
    return declare_used(Message(content=content, reply_to=message), used)


def poisoned(
    rows: BankRows, spec: str, context: Context, settings: BankSettings, seed: int
) -> BankRows:
    """The bank's training rows after its own attack's poisoning ``spec`` (unscaled rows
    in, re-scaled with the federation's standardiser)."""
    from strategies.attacks import AttackError, poison_rows

    scaler = stored_scaler(context)
    x = rows.x_train.astype(np.float64) * scaler.std + scaler.mean
    names = load_bank(context, settings).feature_names
    try:
        x, y = poison_rows(spec, x, rows.y_train, names, np.random.default_rng(seed))
    except AttackError as err:
        raise DataError(str(err)) from None
    return dataclasses.replace(rows, x_train=scaler.transform(x), y_train=y)


def log_privacy_spent(bank: str, server_round: int, context: Context) -> None:
    """The bank's own per-round line: how much of its budget it has spent so far."""
    from strategies.dp.opacus_training import privacy_report

    report = privacy_report(context.state)
    log.info(
        "%s: round %d, epsilon spent %.3f of %.3f (all releases; delta %.1e, noise multiplier "
        "%.3f)%s",
        bank,
        server_round,
        report["epsilon"],
        report["target_epsilon"],
        report["delta"],
        report["noise_multiplier"],
        "" if report["noise_multiplier"] > 0 else ": no noise, NOT PRIVATE",
    )


def received_span(message: Message) -> tuple[float, float]:
    """The DP score grid's span sent with the query (checked to lie in the public range;
    any such grid keeps one borrower's effect on the counts at one), else the model's own
    span on standardised inputs."""
    config = message.content["config"]
    if "span-low" in config and "span-high" in config:
        try:
            return checked_span(config["span-low"], config["span-high"])
        except ValueError as err:
            raise DataError(str(err)) from None
    from fl_credit.model.logistic import theta_from_arrays

    theta = theta_from_arrays(message.content["arrays"])
    return model_logit_span(theta[:-1], theta[-1])


@app_handler("query", "histogram")
def histogram(message: Message, context: Context) -> Message:
    """Per-class histograms of the received model's scores, for the decision threshold.

    Without DP: the bank's validation rows on a [0, 1] grid. Under ``dp=opacus``: a planned
    release over all the bank's rows (training and validation, 5x the defaults of validation
    alone), in two stages that share the validation budget: ``stage="span"``, the count of
    scores per logit bin over the public range (where the scores lie); then per-class counts
    on a few bins over the span the coordinator found (:func:`received_span`). Each carries
    the bank's noise share; one borrower moves one count by one.
    """
    from fl_credit.model.logistic import predict_proba

    settings, rows, model = rows_and_model(message, context)
    bins = int(message.content["config"]["bins"])
    if settings.dp_mode != "opacus":
        scores = predict_proba(model, rows.x_val)
        return summed_reply(message, score_histograms(rows.y_val, scores, bins))
    x = np.vstack([rows.x_train, rows.x_val])
    y = np.concatenate([rows.y_train, rows.y_val])
    scores = predict_proba(model, x)
    if message.content["config"].get("stage") == "span":  # where the scores lie
        values = score_counts(scores, bins)
    else:
        values = logit_histograms(y, scores, bins, received_span(message))
    return released_reply(
        message,
        context,
        settings,
        values,
        release="validation",
        sensitivity=1.0,
        n_rows=rows.raw_train_rows,
    )


@app_handler("query", "reliability")
def reliability(message: Message, context: Context) -> Message:
    """Reliability bins of the received model's PDs on this bank's validation rows (refused
    under DP: they would be an un-noised release of the rows)."""
    from fl_credit.model.logistic import predict_proba

    settings, rows, model = rows_and_model(message, context)
    if settings.dp_mode != "off":
        raise DataError(f"no reliability bins under dp={settings.dp_mode}")
    scores = predict_proba(model, rows.x_val)
    bins = int(message.content["config"]["bins"])
    return summed_reply(message, reliability_bins(rows.y_val, scores, bins))


@app_handler("query", "evaluate")
def evaluate(message: Message, context: Context) -> Message:
    """Federated evaluation: the received model scored on this bank's own test rows.

    The reply is summable (per-class logit-bin counts, Brier and clipped log-loss sums); under
    ``dp=opacus`` it is a planned release of the per-class counts only, on
    :data:`~fl_credit.credit.binned_metrics.DP_EVALUATION_BINS` bins over the model's score span
    (sensitivity 1), with this bank's noise share.
    """
    from fl_credit.model.logistic import model_from_arrays, predict_proba

    settings = BankSettings.from_config(message.content["config"])
    bank = load_bank(context, settings)
    if bank.y_test is None or len(bank.y_test) == 0:
        raise DataError("this bank's file holds no test rows for federated evaluation")
    scaler = model_inputs(context, message.content["arrays"])
    model = model_from_arrays(message.content["arrays"])
    scores = predict_proba(model, scaler.transform(bank.x_test))
    if settings.dp_mode == "opacus":  # score histograms only, over the model's score span
        span = received_span(message)
        values, sensitivity = logit_histograms(bank.y_test, scores, DP_EVALUATION_BINS, span), 1.0
    else:
        bins = int(message.content["config"]["bins"])
        values, sensitivity = evaluation_vector(bank.y_test, scores, bins), evaluation_sensitivity()
    return released_reply(
        message,
        context,
        settings,
        values,
        release="evaluation",
        sensitivity=sensitivity,
        n_rows=len(bank.y_train),
    )


@app_handler("query", "gbm")
def gbm_level(message: Message, context: Context) -> Message:
    """``model=gbm``: this bank's gradient and Hessian sums per node, feature and bin of the
    tree being grown, and its validation loss under the finished trees
    (:mod:`fl_credit.boosting.bank` has the checks the bank makes on its own). Under
    ``dp=opacus`` one step of the bank's training budget, with its noise share
    (:mod:`fl_credit.boosting.privacy`)."""
    from fl_credit.boosting.bank import default_weight, level_reply, requested_features
    from fl_credit.boosting.privacy import level_sensitivity

    settings = BankSettings.from_config(message.content["config"])
    if WOE_STATE in context.state:
        raise DataError("boosting query refused: this bank trains on WoE features")
    bank = load_bank(context, settings)
    pos_weight = agreed_pos_weight(context)
    values = level_reply(
        message.content, bank, stored_scaler(context), pos_weight, settings, context.node_config
    )
    if settings.dp_mode == "opacus":
        from fl_credit.bank.privacy import private_step

        weight = default_weight(settings, pos_weight)
        sent = requested_features(message.content["config"], bank.x_train.shape[1])
        values = private_step(
            values,
            sensitivity=level_sensitivity(len(sent), weight),
            message=message,
            context=context,
            settings=settings,
            n_rows=len(bank.y_train),
            bank_key=bank_name(context, settings),
        )
    return summed_reply(message, values)


@app_handler("query", "grades")
def grade_counts(message: Message, context: Context) -> Message:
    """Per-grade counts of the received model on this bank's validation and test rows, for
    the validation report. Answered once per run; under ``dp=opacus`` a planned release
    with this bank's noise share, and without the bank's own model (see
    :mod:`fl_credit.validation.grade_counts`)."""
    from fl_credit.credit.outputs import grids
    from fl_credit.model.logistic import predict_proba
    from fl_credit.validation.bank_counts import bank_layout, bank_vector, checked_request
    from fl_credit.validation.grade_counts import sensitivity

    settings, rows, model = rows_and_model(message, context)
    if GRADES_RELEASED in context.state:
        raise DataError("this bank has already released its validation counts in this run")
    scale, threshold, groups, bands = checked_request(message.content["config"])
    bank = load_bank(context, settings)
    scaler = stored_scaler(context)
    base = getattr(scaler, "standardizer", scaler)
    names = list(bank.feature_names)
    edges = grids(names, scaler)
    layout = bank_layout(names, scale, groups, bands, base.mean, base.std, edges, settings.dp_mode)

    def score(x: np.ndarray) -> np.ndarray:
        return predict_proba(model, scaler.transform(x))

    own = None
    if settings.dp_mode == "off":
        own_model = own_bank_model(rows, settings)

        def own(x: np.ndarray) -> np.ndarray:
            return predict_proba(own_model, scaler.transform(x))

    counts = bank_vector(bank, layout, scale, threshold, edges, score, own)  # checks first
    context.state[GRADES_RELEASED] = ConfigRecord({"done": True})
    return released_reply(
        message,
        context,
        settings,
        counts,
        release="grades",
        sensitivity=sensitivity(layout),
        n_rows=rows.raw_train_rows,
    )


def own_bank_model(rows: BankRows, settings: BankSettings):
    """The bank's own model: the federation's objective fitted on its training rows alone,
    with the same prior correction (it never leaves the bank)."""
    from fl_credit.credit.calibration import prior_correction
    from fl_credit.model.logistic import model_from_theta, theta_from_arrays, to_arrays
    from fl_credit.model.training import fit_newton

    model, _, _ = fit_newton(
        rows.x_train,
        rows.y_train,
        pos_weight=rows.pos_weight,
        l2=settings.l2,
        tol=1e-6,
        max_iterations=50,
        total_rows=rows.raw_train_rows,
    )
    theta = theta_from_arrays(to_arrays(model))
    theta[-1] -= prior_correction(settings.imbalance, rows.pos_weight)
    return model_from_theta(theta)


@app_handler("query", "privacy")
def privacy(message: Message, context: Context) -> Message:
    """What the coordinator may know of this bank's privacy accounting: nothing data-dependent.

    The plan is public (the coordinator computes the same noise levels), so the reply says only
    how many rounds and releases the bank made and whether it stayed within budget. The
    epsilon spent, the row count and the batch size stay in the bank's own log.
    """
    from strategies.dp.opacus_training import privacy_report

    settings = BankSettings.from_config(message.content["config"])
    report = privacy_report(context.state)
    log.info("%s: privacy report %s", bank_name(context, settings), report)
    within = report["epsilon"] <= report["target_epsilon"] + 1e-9
    public = {
        "bank": bank_name(context, settings),
        "rounds-done": int(report["rounds_done"]),
        "within-budget": bool(within),
        "release-names": list(report["releases"]),
        "release-done": [int(v[1]) for v in report["releases"].values()],
    }
    content = RecordDict({"privacy": ConfigRecord(public)})
    return Message(content=content, reply_to=message)


def held_inputs(message: Message, context: Context) -> tuple[list[str], np.ndarray]:
    """The feature names of this bank's file and the std of the standardiser it holds."""
    settings = BankSettings.from_config(message.content["config"])
    names = list(load_bank(context, settings).feature_names)
    return names, np.asarray(stored_scaler(context).std, dtype=np.float64)


def make_client_app(
    extra_mods: list | None = None, identity_provider=None, floors=None
) -> ClientApp:
    """The bank's ClientApp with its standard mods, around ``extra_mods`` (simulated faults).

    Mods, outermost first: error privacy (the coordinator learns only the kind of an error,
    never its text), the bank's floors (refuse a request below them, impose the bank's own
    noise randomness; :mod:`fl_credit.bank.floors`), the bank's own configuration of Newton's
    model chain (:mod:`fl_credit.bank.newton_chain`), simulated faults, secure aggregation
    (masks the reply last, so it must sit outside every mod that changes the plaintext),
    the bank's own accounting of bank-level DP (:mod:`fl_credit.bank.dp_spend`), bank-level
    DP (clips and noises the update). The last three are inert unless the server's message
    asks for them. ``identity_provider`` gives the bank's secure-aggregation
    identity and roster (default: from the node config, see :mod:`fl_credit.protocol.identity`);
    ``floors`` (:class:`~fl_credit.bank.floors.BankFloors`) the simulated banks' floors from
    the run's agreed configuration (default: each bank's node config).
    """
    from fl_credit.bank.dp_spend import central_spend_mod
    from fl_credit.bank.floors import floors_mod, floors_provider
    from fl_credit.bank.newton_chain import chain_pins_mod
    from fl_credit.protocol import identity as bank_identity
    from strategies.dp.central import central_dp_mod
    from strategies.secagg import install_secagg, secagg_mod

    floors_of = floors_provider(floors)
    pins = chain_pins_mod(floors_of, MODEL_ARRAYS, held_inputs)
    mods = [private_errors_mod, floors_mod(floors_of), pins, *(extra_mods or [])]
    client = ClientApp(mods=[*mods, secagg_mod, central_spend_mod(floors_of), central_dp_mod])
    install_secagg(
        client,
        identity_provider or bank_identity.identity_provider(),
        floors=lambda context: floors_of(context).secagg,
    )
    for category, action, func in _HANDLERS:
        getattr(client, category)(action)(func)
    return client


app = make_client_app()
