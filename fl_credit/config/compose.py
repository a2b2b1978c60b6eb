"""Compose the experiment's Hydra config from ``conf/`` outside a ``@hydra.main`` task.

``python -m fl_credit.simulate`` lets ``@hydra.main`` compose its config. Other entry points
(the bank exporter, the deployed ServerApp) compose the very same tree here from the same
``conf/`` folder and override strings, so every engine reads one source of truth.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fl_credit.config import store
from fl_credit.config.errors import ConfigError
from fl_credit.config.parsing import from_dict
from fl_credit.config.schema import ExperimentConfig

CONFIG_NAME = "config"
store.register()  # the generated nodes ``conf/config.yaml`` names, for any Hydra compose


def conf_dir() -> Path:
    """The ``conf/`` folder next to the ``fl_credit`` package.

    That is the project root in a source checkout or an editable install, and the unpacked
    app folder when Flower installs the app bundle (FAB) on a SuperLink.

    Raises
    ------
    ConfigError
        When the folder or its ``config.yaml`` is missing.
    """
    folder = Path(__file__).resolve().parents[2] / "conf"
    if not (folder / f"{CONFIG_NAME}.yaml").is_file():
        raise ConfigError(f"Hydra config folder not found: {folder}/{CONFIG_NAME}.yaml")
    return folder


def split_overrides(text: str) -> list[str]:
    """Split a shell-style string of overrides (``"train.rounds=3 seed=1"``) into a list.

    Raises
    ------
    ConfigError
        On unbalanced quotes.
    """
    try:
        return shlex.split(text or "")
    except ValueError as err:
        raise ConfigError(f"cannot split config overrides {text!r}: {err}") from None


def compose_config(overrides: Sequence[str] = (), *, config_dir: Path | None = None) -> DictConfig:
    """Compose ``config.yaml`` with Hydra ``overrides`` (no ``hydra`` node, nothing written).

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides, exactly as given to ``python -m fl_credit.simulate``.
    config_dir : pathlib.Path, optional
        The config folder; :func:`conf_dir` when omitted.

    Returns
    -------
    omegaconf.DictConfig
        The composed (unresolved) config.

    Raises
    ------
    ConfigError
        On a malformed override, an unknown config group option or a missing key.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    store.register()
    folder = str((config_dir or conf_dir()).resolve())
    try:
        with initialize_config_dir(config_dir=folder, version_base="1.3"):
            return compose(config_name=CONFIG_NAME, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"bad config override: {_first_line(err)}") from None


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain containers with interpolations resolved.

    Raises
    ------
    ConfigError
        When a mandatory value (``???``) was not given, naming its key.
    """
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        named = ", ".join(missing)
        example = " ".join(f"{key}=..." for key in missing)
        plural = "s" if len(missing) > 1 else ""
        raise ConfigError(f"missing config value{plural} {named}: set {example}")
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", "") or _first_line(err)
        raise ConfigError(f"missing config value {key}: set it with {key}=...") from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"cannot resolve config: {_first_line(err)}") from None


def compose_experiment(
    overrides: Sequence[str] = (), *, config_dir: Path | None = None
) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The checked :class:`ExperimentConfig` and the resolved dict for ``overrides``.

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides, as for ``python -m fl_credit.simulate``.
    config_dir : pathlib.Path, optional
        The config folder; :func:`conf_dir` when omitted.

    Returns
    -------
    tuple of (ExperimentConfig, dict)
        The typed config and the resolved plain dict (written as ``config_resolved.yaml``).
    """
    raw = resolve(compose_config(overrides, config_dir=config_dir))
    try:
        return from_dict(raw), raw
    except (TypeError, ValueError) as err:
        # A value of the wrong type (``train.rounds=``) fails inside the range checks.
        raise ConfigError(f"bad config value: {_first_line(err)}") from None


def to_yaml(raw: dict[str, Any]) -> str:
    """YAML text of a resolved config dict."""
    return OmegaConf.to_yaml(OmegaConf.create(raw))


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
