"""Hydra callback that writes the sweep report when a multirun ends.

Registered in ``conf/config.yaml``::

    hydra:
      callbacks:
        sweep_report:
          _target_: simulations.sweeps.callback.SweepReport
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def sweep_dir_of(config: DictConfig) -> Path:
    """The absolute multirun folder of a Hydra config.

    Parameters
    ----------
    config : omegaconf.DictConfig
        The config Hydra passes to callbacks (with the ``hydra`` node).

    Returns
    -------
    pathlib.Path
        ``hydra.sweep.dir``; a relative one is taken from ``hydra.runtime.cwd`` (the launch
        folder) when set, else from the current folder.

    Raises
    ------
    ValueError
        If the config has no ``hydra.sweep.dir``.
    """
    sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
    if not sweep_dir:
        raise ValueError("the config has no hydra.sweep.dir")
    path = Path(str(sweep_dir))
    if path.is_absolute():
        return path
    launch_dir = OmegaConf.select(config, "hydra.runtime.cwd", default=None)
    return Path(str(launch_dir) if launch_dir else os.getcwd()) / path


class SweepReport(Callback):
    """Write ``summary.csv``, ``summary.md`` and plots into the sweep folder after a multirun.

    Failures never propagate: a report that cannot be written is logged as one warning, so a
    finished sweep is never turned into an error by its summary.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Build the report of the finished sweep.

        Parameters
        ----------
        config : omegaconf.DictConfig
            The multirun config (``config.hydra.sweep.dir`` is the sweep folder).
        **kwargs : Any
            Passed by Hydra (e.g. ``config_name``); unused.
        """
        try:
            from simulations.sweeps.report import write_report

            sweep_dir = sweep_dir_of(config)
            written = write_report(sweep_dir)
        except Exception as exc:  # a report must never fail the sweep
            message = " ".join(f"{type(exc).__name__}: {exc}".split())
            log.warning("sweep report not written: %s", message)
            return
        summary = next((path for path in written if path.name == "summary.md"), sweep_dir)
        log.info("sweep report: %s (%d files in %s)", summary, len(written), sweep_dir)
