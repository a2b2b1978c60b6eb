"""From a configured data source to held-out test rows and each bank's encoded rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from fl_credit.config.errors import DataError
from fl_credit.config.schema import ExperimentConfig
from fl_credit.data.bank_file import BankData, write_rows
from fl_credit.data.dictionary import FeatureBounds, column_bounds, feature_bounds
from fl_credit.data.frame import CreditData
from fl_credit.data.partition import split_banks
from fl_credit.data.registry import load_source
from fl_credit.data.schema import FeatureSchema


@dataclass(frozen=True)
class Prepared:
    """Everything the experiment needs from the data, split once under the seed."""

    schema: FeatureSchema
    x_test: np.ndarray
    y_test: np.ndarray
    banks: dict[str, BankData]
    bank_info: dict[str, dict]
    dropped: dict[str, str]
    source: str
    bounds: FeatureBounds | None = None

    @property
    def feature_names(self) -> list[str]:
        """Encoded feature names in model order."""
        return self.schema.feature_names


def _stratified_split(y: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(y))
    keep, held = train_test_split(rows, test_size=size, random_state=seed, stratify=y)
    return np.sort(keep), np.sort(held)


def prepare(cfg: ExperimentConfig, data: CreditData | None = None) -> Prepared:
    """Hold out the test set, form the banks and split each bank's validation rows.

    Parameters
    ----------
    cfg : ExperimentConfig
        Data, partition, test and validation settings and the seed.
    data : CreditData, optional
        Already-loaded data; loaded from ``cfg.data`` when omitted.

    Returns
    -------
    Prepared
        Encoded test rows and per-bank rows, all unscaled.
    """
    data = data if data is not None else load_source(cfg.data, cfg.seed)
    schema = FeatureSchema.from_data(data)
    x_all = schema.encode(data.features)
    train_rows, test_rows = _stratified_split(data.target, cfg.test_size, cfg.seed)
    train = data.subset(train_rows)
    splits = split_banks(cfg.partition, train.target, train.region, cfg.seed)
    bank_tests = share_test_rows(data.target[test_rows], [len(s.rows) for s in splits], cfg.seed)
    banks, info = {}, {}
    for k, split in enumerate(splits):
        rows = train_rows[split.rows]
        y = data.target[rows]
        local_train, local_val = _stratified_split(y, cfg.val_size, cfg.seed + 1000 + k)
        banks[split.name] = BankData(
            feature_names=tuple(schema.feature_names),
            x_train=x_all[rows[local_train]],
            y_train=y[local_train],
            x_val=x_all[rows[local_val]],
            y_val=y[local_val],
            x_test=x_all[test_rows[bank_tests[k]]],
            y_test=data.target[test_rows[bank_tests[k]]],
        )
        info[split.name] = {
            "label": split.label,
            "rows": int(len(local_train)),
            "defaults": int(y[local_train].sum()),
            "default_rate": float(y[local_train].mean()),
            "val_rows": int(len(local_val)),
        }
    return Prepared(
        schema=schema,
        x_test=x_all[test_rows],
        y_test=data.target[test_rows],
        banks=banks,
        bank_info=info,
        dropped=dict(data.dropped),
        source=data.name,
        bounds=public_bounds(cfg, schema),
    )


def share_test_rows(y_test: np.ndarray, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Deal the held-out rows to the banks in proportion to their sizes, class by class.

    Each bank's share is its own test set for federated evaluation; together they are the
    held-out set the simulation also scores centrally, so both evaluations see the same loans.
    """
    rng = np.random.default_rng(seed + 7919)
    shares = np.asarray(sizes, dtype=np.float64) / max(sum(sizes), 1)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y_test == label))
        cuts = np.rint(np.cumsum(shares) * len(rows)).astype(int)
        for k, chunk in enumerate(np.split(rows, cuts[:-1])):
            parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def public_bounds(cfg: ExperimentConfig, schema: FeatureSchema) -> FeatureBounds | None:
    """The data dictionary's feature ranges; required (one-line error) when DP is on."""
    try:
        bounds = feature_bounds(schema, column_bounds(cfg.data.kind, cfg.data.bounds))
    except DataError:
        if cfg.dp.mode != "off":
            raise
        return None
    if bounds is None and cfg.dp.mode != "off":
        raise DataError(
            f"dp={cfg.dp.mode} needs public feature ranges (a data dictionary) so that no "
            "statistic is computed from a bank's rows unprotected: give data.bounds=<json file "
            "mapping each numeric column to [low, high]>"
        )
    return bounds


def write_bank_files(prepared: Prepared, directory: Path, suffix: str = ".csv") -> list[Path]:
    """Write each bank's rows to ``directory/<bank><suffix>`` and the test rows to ``test``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = prepared.feature_names
    paths = []
    for name, bank in prepared.banks.items():
        parts = {"train": (bank.x_train, bank.y_train), "val": (bank.x_val, bank.y_val)}
        if bank.y_test is not None and len(bank.y_test):
            parts["test"] = (bank.x_test, bank.y_test)
        paths.append(write_rows(directory / f"{name}{suffix}", names, parts))
    write_rows(directory / f"test{suffix}", names, {"test": (prepared.x_test, prepared.y_test)})
    prepared.schema.to_json(directory / "schema.json")
    return paths
