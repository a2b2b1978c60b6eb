"""What two defences need from the coordinator besides the banks' updates.

- FLTrust (``strategy=fltrust``) trains the global model each round on a **root set** the
  coordinator holds. Who holds it: the consortium names one bank (``strategy.root_bank``,
  default the last) that hands the coordinator ``strategy.root_rows`` (default 100, Cao et
  al.'s size) of its training rows whose borrowers consented to it, drawn class-stratified
  with the run's seed. The coordinator then holds those rows in plaintext (their privacy
  cost), standardises them with the federation's agreed standardiser and trains on them with
  the banks' own local-training settings and class weight. FLTrust assumes the root set is
  clean: the configuration refuses a root bank that is also a simulated attacker.
- FLAME (``strategy=flame``) clusters the updates with scikit-learn's HDBSCAN on precomputed
  cosine distances (``strategies`` itself may use only Flower, torch and numpy).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord

from fl_credit.config.errors import ConfigError
from fl_credit.config.schema import ExperimentConfig

log = logging.getLogger(__name__)


def root_bank_index(cfg: ExperimentConfig, num_banks: int) -> int:
    """The bank that holds FLTrust's root set (``strategy.root_bank``; negative counts from
    the last bank)."""
    index = cfg.strategy.root_bank
    return index % num_banks if -num_banks <= index < num_banks else index


def root_rows(
    cfg: ExperimentConfig, bank_dir: str, num_banks: int
) -> tuple[np.ndarray, np.ndarray]:
    """The root set: ``strategy.root_rows`` training rows of the root bank (unscaled
    features, labels), class-stratified with the run's seed.

    Raises
    ------
    ConfigError
        Without the simulated banks' files (a deployment has no root set yet), or when the
        root bank has fewer training rows than asked.
    """
    from sklearn.model_selection import train_test_split

    from fl_credit.data.bank_file import read_bank

    if not bank_dir:
        raise ConfigError("strategy=fltrust needs a root set; it is built in simulation only")
    bank = root_bank_index(cfg, num_banks)
    path = next(
        (p for s in (".npz", ".csv") if (p := Path(bank_dir) / f"bank_{bank}{s}").is_file()),
        None,
    )
    if path is None:
        raise ConfigError(f"strategy.root_bank={cfg.strategy.root_bank}: no bank_{bank} file")
    data = read_bank(path)
    size = cfg.strategy.root_rows
    if size >= len(data.y_train):
        raise ConfigError(
            f"strategy.root_rows={size} needs fewer rows than bank_{bank}'s "
            f"{len(data.y_train)} training rows"
        )
    stratify = data.y_train if np.bincount(data.y_train.astype(int)).min() >= 2 else None
    x, _, y, _ = train_test_split(
        data.x_train, data.y_train, train_size=size, stratify=stratify, random_state=cfg.seed
    )
    log.info(
        "FLTrust root set: %d training rows of bank_%d (%d defaults), held by the coordinator",
        len(y),
        bank,
        int(y.sum()),
    )
    return x, y


def root_trainer(x: np.ndarray, y: np.ndarray, bank_settings, pos_weight: float):
    """FLTrust's server update: the global model trained on the root rows (scaled ``x``)
    exactly as a bank trains in that round."""
    from fl_credit.model.logistic import model_from_arrays, to_arrays
    from fl_credit.model.training import train

    def update(arrays: ArrayRecord, server_round: int) -> ArrayRecord:
        model = model_from_arrays(arrays)
        train(model, x, y, bank_settings.local_training(pos_weight, server_round))
        return to_arrays(model)

    return update


def hdbscan_labels(distances: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """FLAME's clustering: HDBSCAN on precomputed distances, ``min_samples=1``, a single
    cluster allowed; label -1 marks an outlier."""
    from sklearn.cluster import HDBSCAN

    clusterer = HDBSCAN(
        min_cluster_size=max(2, int(min_cluster_size)),
        min_samples=1,
        metric="precomputed",
        allow_single_cluster=True,
    )
    return clusterer.fit_predict(np.asarray(distances, dtype=np.float64))


def provide_defence_inputs(
    strategy,
    cfg: ExperimentConfig,
    *,
    scaler,
    pos_weight: float,
    bank_settings,
    bank_dir: str,
    num_banks: int,
) -> None:
    """Hand the strategy what its defence needs from the coordinator (nothing for most)."""
    if hasattr(strategy, "set_root_update"):
        x, y = root_rows(cfg, bank_dir, num_banks)
        weight = pos_weight if cfg.imbalance.method == "class_weight" else 1.0
        strategy.set_root_update(root_trainer(scaler.transform(x), y, bank_settings, weight))
    if hasattr(strategy, "set_clusterer"):
        strategy.set_clusterer(hdbscan_labels)
