"""The coordinator's Flower ServerApp for the Deployment Engine (one SuperNode per bank).

``flwr run . <connection> --run-config <file or 'key=value ...'>`` starts :data:`app` on the
SuperLink. Run config keys (``[tool.flwr.app.config]`` in ``pyproject.toml``):

- ``config-overrides``: Hydra overrides, exactly as for ``python -m fl_credit.simulate``
  (``"train.rounds=3 seed=1"``); the config is composed from the app's ``conf/`` folder;
- ``schema-path``: the consortium's data dictionary (``schema.json`` from
  ``python -m fl_credit.export_banks``); needed under DP for the public feature ranges;
- ``test-path`` (optional, research only): held-out rows the coordinator also scores the model
  on. By default the coordinator holds no rows: test metrics come from federated evaluation,
  each bank scoring the model on its own test rows and the coordinator seeing summed
  histograms;
- ``num-banks``: how many banks must connect (0 = from the partition config);
- ``consortium``: the banks' identity roster for secure aggregation (default:
  ``consortium.json`` next to ``schema-path``, where ``fl_credit.export_banks`` writes it);
- ``output-dir``: where ``metrics.json``, ``history.csv``, ``model.pt``, ``schema.json``,
  ``report.md`` (figures, ``scores.csv`` with test rows), ``status.json`` and
  ``config_resolved.yaml`` go (default ``outputs/deployment/run_<run id>`` under the
  SuperLink's working directory).

The server side itself is :func:`fl_credit.coordinator.federation.run_federation`, shared with
simulation.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp

from fl_credit.config.compose import compose_experiment, split_overrides, to_yaml
from fl_credit.config.errors import (
    ConfigError,
    DataError,
    FlCreditError,
    TrainingFailedError,
    one_line,
)
from fl_credit.config.schema import ExperimentConfig
from fl_credit.coordinator.federation import run_federation, score_federated
from fl_credit.coordinator.grid_wrapper import PassThroughGrid
from fl_credit.coordinator.privacy_accounting import privacy_summary
from fl_credit.coordinator.protection import check_bank_count
from fl_credit.coordinator.protection import describe as describe_protection
from fl_credit.coordinator.strategy_factory import secagg_threshold
from fl_credit.coordinator.summary import rounds_summary, save_model, summary_config
from fl_credit.data.bank_file import read_rows
from fl_credit.data.dictionary import FeatureBounds, column_bounds, feature_bounds
from fl_credit.data.partition import bank_shares
from fl_credit.data.schema import FeatureSchema
from fl_credit.protocol.identity import CONSORTIUM_FILE
from fl_credit.run import files as run_files

log = logging.getLogger("fl_credit")

OVERRIDES_KEY = "config-overrides"
TEST_PATH_KEY = "test-path"
SCHEMA_PATH_KEY = "schema-path"
NUM_BANKS_KEY = "num-banks"
OUTPUT_DIR_KEY = "output-dir"
CONSORTIUM_KEY = "consortium"
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class DeploymentSettings:
    """What the run config tells the ServerApp."""

    overrides: tuple[str, ...]
    test_path: Path | None
    num_banks: int
    output_dir: Path
    schema_path: Path | None = None
    consortium: Path | None = None  # banks' identity roster; default next to the schema

    @classmethod
    def from_run_config(cls, run_config: dict, run_id: int) -> DeploymentSettings:
        """Read and check the run config (flat scalars, see the module docstring).

        Raises
        ------
        ConfigError
            When ``num-banks`` is not a whole number >= 0.
        """
        test_path = str(run_config.get(TEST_PATH_KEY, "") or "")
        schema_path = str(run_config.get(SCHEMA_PATH_KEY, "") or "")
        num_banks = run_config.get(NUM_BANKS_KEY, 0)
        if isinstance(num_banks, bool) or not isinstance(num_banks, int) or num_banks < 0:
            raise ConfigError(f"run config {NUM_BANKS_KEY} must be a whole number >= 0")
        output = str(run_config.get(OUTPUT_DIR_KEY, "") or "")
        output_dir = Path(output) if output else Path("outputs", "deployment", f"run_{run_id}")
        return cls(
            overrides=tuple(split_overrides(str(run_config.get(OVERRIDES_KEY, "") or ""))),
            test_path=Path(test_path).expanduser() if test_path else None,
            num_banks=num_banks,
            output_dir=output_dir.expanduser().resolve(),
            schema_path=Path(schema_path).expanduser() if schema_path else None,
            consortium=Path(str(run_config[CONSORTIUM_KEY])).expanduser()
            if run_config.get(CONSORTIUM_KEY)
            else None,
        )


class BankWatchGrid(PassThroughGrid):
    """The deployment grid, plus one log line for every bank that drops out of a stage.

    Flower's FedAvg logs a failed reply by node id only (and by node 1 when the SuperLink
    answers for an offline bank); this names the bank (the name its public key was registered
    with, ``flwr supernode register --name``) and the round. It also polls for replies every
    :data:`POLL_SECONDS` instead of Flower's 3 s, which saves seconds per message exchange.
    Every other call is passed on unchanged to the wrapped grid.

    Parameters
    ----------
    grid : flwr.serverapp.Grid
        The grid Flower handed to the ServerApp.

    Attributes
    ----------
    lost : list of dict
        One entry per bank and stage it failed: ``bank``, ``node_id``, ``stage``.
    """

    def __init__(self, grid: Grid) -> None:
        super().__init__(grid)
        self.lost: list[dict] = []
        self._expected: set[int] = set()
        self._names: dict[int, str] = {}

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push, then pull replies every :data:`POLL_SECONDS` until all arrived or ``timeout``.

        Same contract as Flower's ``send_and_receive`` (which polls every 3 s); in addition it
        logs the banks that are no longer connected and the banks that failed this stage.
        """
        messages = list(messages)
        if not messages:
            return []
        stage = _stage(messages[0])
        self._note_absent(stage, {m.metadata.dst_node_id for m in messages})
        ids = list(self.grid.push_messages(messages))
        dst = {i: m.metadata.dst_node_id for i, m in zip(ids, messages, strict=True) if i}
        replies = self._pull(set(dst), timeout)

        # The SuperLink answers for an offline bank with an error reply from node 1, so match
        # each reply to its bank through the message it answers.
        def bank(reply: Message) -> int:
            return dst.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

        answered = {bank(r) for r in replies if not r.has_error()}
        errors = {bank(r): r.error.reason for r in replies if r.has_error()}
        for node in sorted(set(dst.values()) - answered):
            reason = _first_line(errors.get(node, "no reply before the timeout"))
            self.lost.append({"bank": self._label(node), "node_id": node, "stage": stage})
            log.warning("fl-credit: lost %s in %s: %s", self._label(node), stage, reason)
        return replies

    def _pull(self, pending: set[str], timeout: float | None) -> list[Message]:
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while pending:
            got = list(self.grid.pull_messages(pending))
            replies.extend(got)
            pending -= {r.metadata.reply_to_message_id for r in got}
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(POLL_SECONDS)
        return replies

    def _note_absent(self, stage: str, targets: set[int]) -> None:
        """Log the banks seen in earlier stages that this stage goes ahead without."""
        self._expected |= targets
        self._remember_names()
        absent = sorted(self._expected - targets)
        if absent:
            log.warning(
                "fl-credit: %s goes ahead with %d of %d banks; not connected: %s",
                stage,
                len(targets),
                len(self._expected),
                ", ".join(self._label(n) for n in absent),
            )

    def _remember_names(self) -> None:
        try:
            nodes = list(self.grid.get_nodes())
        except Exception:  # noqa: BLE001 - names only decorate log lines
            return
        for node in nodes:
            name = getattr(node, "name", "")
            if name:
                self._names[int(node.node_id)] = str(name)

    def _label(self, node: int) -> str:
        name = self._names.get(node)
        return f"{name} (node {node})" if name else f"node {node}"


def _stage(message: Message) -> str:
    """``round <n>`` for a training message, else its message type."""
    if message.metadata.message_type == "train":
        try:
            return f"round {int(message.content['config']['server-round'])}"
        except (KeyError, TypeError, ValueError):
            return "a training round"
    return message.metadata.message_type


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


def expected_banks(cfg: ExperimentConfig, requested: int) -> int:
    """Banks to wait for: ``requested`` if set, else the count the partition implies."""
    if requested > 0:
        return requested
    p = cfg.partition
    if p.scheme == "region":
        raise ConfigError(
            f"partition={p.scheme} does not fix the number of banks: set {NUM_BANKS_KEY}=<N> "
            "in the run config"
        )
    return p.banks if p.scheme == "dirichlet" else len(bank_shares(p))


def read_test_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The coordinator's held-out test rows (every row of the file; split must be ``test``)."""
    if not path.is_file():
        raise DataError(f"test rows not found: {path} (run config {TEST_PATH_KEY})")
    _, x, y, split = read_rows(path)
    if len(y) == 0 or not (split == "test").all():
        raise DataError(f"{path} is not a test file from fl_credit.export_banks (split != test)")
    if len(np.unique(y)) < 2:
        raise DataError(f"{path} holds a single class; the test rows need defaults and repaid")
    return x, y


def deployment_config(cfg: ExperimentConfig, overrides: tuple[str, ...]) -> ExperimentConfig:
    """The composed config with the deployment default: federated evaluation on, unless the
    overrides set ``eval.federated`` themselves."""
    if any(o.split("=", 1)[0].lstrip("+~") == "eval.federated" for o in overrides):
        return cfg
    return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, federated=True))


def consortium_path(settings: DeploymentSettings) -> Path:
    """The banks' identity roster: the run config's ``consortium``, else next to the schema."""
    if settings.consortium is not None:
        return settings.consortium
    for near in (settings.schema_path, settings.test_path):
        if near is not None:
            return near.parent / CONSORTIUM_FILE
    raise ConfigError(
        f"run config needs {CONSORTIUM_KEY}=<consortium.json> or {SCHEMA_PATH_KEY}=<schema.json> "
        "(both written by fl_credit.export_banks)"
    )


def deployment_bounds(cfg: ExperimentConfig, schema_path: Path | None) -> FeatureBounds | None:
    """The public feature ranges from the data dictionary (required under DP)."""
    if schema_path is None:
        if cfg.dp.mode != "off":
            raise ConfigError(
                f"dp={cfg.dp.mode} needs the data dictionary: run config "
                f"{SCHEMA_PATH_KEY}=<schema.json from fl_credit.export_banks>"
            )
        return None
    if not schema_path.is_file():
        raise DataError(f"data dictionary not found: {schema_path} (run config {SCHEMA_PATH_KEY})")
    schema = FeatureSchema.from_json(schema_path)
    return feature_bounds(schema, column_bounds(cfg.data.kind, cfg.data.bounds))


def schema_feature_names(schema_path: Path | None) -> list[str] | None:
    """The public feature names from the data dictionary (None without one: no validation
    counts and no ``train.monotone``)."""
    if schema_path is None or not schema_path.is_file():
        return None
    return list(FeatureSchema.from_json(schema_path).feature_names)


def run_deployed(grid: Grid, settings: DeploymentSettings, run_id: int) -> dict:
    """Compose the config, run the federation over the connected banks, write the run folder.

    Returns
    -------
    dict
        The payload written to ``metrics.json``.
    """
    started = time.perf_counter()
    composed, raw = compose_experiment(settings.overrides)
    cfg = deployment_config(composed, settings.overrides)
    out = settings.output_dir
    run_files.write_atomic(out / run_files.RESOLVED_CONFIG, to_yaml(raw))
    test = read_test_rows(settings.test_path) if settings.test_path else None
    num_banks = expected_banks(cfg, settings.num_banks)
    check_bank_count(cfg, num_banks)
    log.info(
        "fl-credit: run %s waits for %d banks; %s; output %s",
        run_id,
        num_banks,
        f"{len(test[1])} coordinator test rows" if test else "federated evaluation only",
        out,
    )
    torch.manual_seed(cfg.seed)
    watched = BankWatchGrid(grid)
    # Seeded DP noise could be removed by a server that knows the seed: banks draw it from
    # the OS instead (no effect without DP).
    fed = run_federation(
        watched,
        cfg,
        num_banks=num_banks,
        x_test=test[0] if test else None,
        y_test=test[1] if test else None,
        bounds=deployment_bounds(cfg, settings.schema_path),
        secret_noise=True,
        consortium=str(consortium_path(settings)),
        feature_names=schema_feature_names(settings.schema_path),  # model=gbm monotone names
    )
    metrics = {
        "federated": {**(fed.evaluation or {}), "evaluation": "federated (banks' own test rows)"},
        "privacy": fed.privacy,
        "privacy_summary": privacy_summary(cfg, fed.privacy),
        "config": {**summary_config(cfg, num_banks), "engine": "deployment"},
        "protection": describe_protection(cfg, num_banks, secagg_threshold(cfg, num_banks)),
        "rounds": rounds_summary(fed),
        "overrides": list(settings.overrides),
        "run_id": run_id,
        "lost_banks": watched.lost,
        "timing": {"federation_s": fed.seconds},
    }
    if fed.boosting:  # model=gbm: trees grown and kept, exchanges, seconds per tree
        metrics["boosting"] = fed.boosting
    if test is not None:
        metrics["federated_on_coordinator_test_set"] = score_federated(fed, *test, cfg)
    run_files.write_history(out / run_files.HISTORY, fed.history)
    save_model(out / run_files.MODEL, fed)
    run_files.write_json(out / run_files.METRICS, metrics)
    if settings.schema_path is not None:  # schema.json, report.md, figures: as a simulated run
        from fl_credit.run.outputs import write_credit_files

        schema = FeatureSchema.from_json(settings.schema_path)
        write_credit_files(out, fed, schema, *(test or (None, None)))  # with validation.md
    else:
        from fl_credit.run.outputs import write_validation_files

        write_validation_files(out, fed.validation)  # validation.md from the summed counts
    if fed.failure:
        raise TrainingFailedError(fed.failure)
    run_files.write_status(
        out,
        error=None,
        wall_seconds=time.perf_counter() - started,
        overrides=list(settings.overrides),
    )
    log.info(
        "fl-credit: run %s finished: federated test AUC %s; files in %s",
        run_id,
        # None when DP noise withholds it (fl_credit.credit.binned_metrics)
        f"{auc:.4f}" if (auc := metrics["federated"].get("auc")) is not None else "n/a",
        out,
    )
    return metrics


def _route_logs_to_console() -> None:
    """Send ``fl_credit`` log records to stdout, which Flower forwards to ``flwr log``."""
    logger = logging.getLogger("fl_credit")
    if not any(getattr(h, "_fl_credit", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)-8s:      %(message)s"))
        handler._fl_credit = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run one federated experiment across the connected banks.

    Failures are logged as one ``fl-credit: run failed: ...`` line, recorded in
    ``status.json`` when the output folder is known, and re-raised so that Flower marks the
    run as failed (``flwr list`` shows the status).
    """
    _route_logs_to_console()
    started = time.perf_counter()
    run_id = int(context.run_id)
    settings: DeploymentSettings | None = None
    try:
        settings = DeploymentSettings.from_run_config(dict(context.run_config), run_id)
        run_deployed(grid, settings, run_id)
    except Exception as err:
        line = one_line(err)
        log.error("fl-credit: run failed: %s", line)
        if settings is not None:
            run_files.write_status(
                settings.output_dir,
                error=line,
                wall_seconds=time.perf_counter() - started,
                overrides=list(settings.overrides),
            )
        raise FlCreditError(line) from None
