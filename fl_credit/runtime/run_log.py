"""Where Flower's own output goes during a run: the run folder's ``flower.log``.

A default run prints only fl-credit's progress lines and the final table. Flower's log (the
strategy's per-round records and its "Final results" dump, the ``run_simulation`` deprecation
warning) and Python warnings raised meanwhile (Ray's
FutureWarning) go to ``<run folder>/flower.log``; ``-v`` or ``hydra.verbose=true`` keeps them
on the terminal as well. Ray's worker processes (the ClientApp actors) print through their own
processes, so they are silenced where Ray starts: ``ray.init(log_to_driver=False,
logging_level="ERROR")``, passed as the backend's ``init_args`` (:func:`ray_init_args`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FLOWER_LOG = "flower.log"
QUIET_RAY_INIT = {"log_to_driver": False, "logging_level": "ERROR"}

_quiet = {"on": False}


def ray_init_args() -> dict:
    """``init_args`` for Flower's Ray backend: quiet workers inside :func:`flower_to_file`
    (unless verbose), Flower's defaults otherwise."""
    return dict(QUIET_RAY_INIT) if _quiet["on"] else {}


@contextmanager
def flower_to_file(run_dir: Path, *, verbose: bool) -> Iterator[Path]:
    """Send Flower's log and Python warnings to ``run_dir/flower.log`` while the block runs.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder (must exist).
    verbose : bool
        Also keep them on the terminal, and let Ray's workers print as Flower sets them up.

    Yields
    ------
    pathlib.Path
        The log file.
    """
    from flwr.common.logger import console_handler  # added to "flwr" when Flower is imported

    path = Path(run_dir) / FLOWER_LOG
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    flwr = logging.getLogger("flwr")
    warned = logging.getLogger("py.warnings")
    consoles = [] if verbose or console_handler not in flwr.handlers else [console_handler]
    saved = (warned.propagate, _quiet["on"])
    flwr.addHandler(handler)
    for console in consoles:
        flwr.removeHandler(console)
    warned.addHandler(handler)
    warned.propagate = verbose
    logging.captureWarnings(True)
    _quiet["on"] = not verbose
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        warned.propagate, _quiet["on"] = saved
        warned.removeHandler(handler)
        flwr.removeHandler(handler)
        for console in consoles:
            flwr.addHandler(console)
        handler.close()
