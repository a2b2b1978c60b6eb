"""Summarise a Hydra multirun of fl-credit experiments: a table, a Markdown page and plots.

Every job folder of the sweep (``<sweep_dir>/<job_num>/``) holds ``.hydra/overrides.yaml``,
``status.json`` and, for successful runs, ``metrics.json``. :func:`collect_runs` turns them into
one row per job, :func:`summarise` averages over seeds, and :func:`write_report` writes
``summary.csv``, ``summary.md`` and the ``plot_*.png`` figures into the sweep folder.

The pieces live in modules named for their role: ``values`` (value tests, override
parsing), ``runs`` (reading run folders into one table), ``summary`` (grouping
and Student-t intervals over seeds), ``plots`` (figures; the drawing pieces they share
with the per-run report are in :mod:`fl_credit.credit.plotting`) and ``markdown``
(``summary.md``). This module writes the files and is the command line.

Usage::

    python -m simulations.sweeps.report <multirun dir>
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fl_credit.credit.plotting import save_png, write_text
from simulations.sweeps.markdown import render_markdown
from simulations.sweeps.plots import REPORT_PLOTS, build_figures
from simulations.sweeps.runs import collect_runs, find_run_dirs


def write_report(sweep_dir: str | os.PathLike[str]) -> list[Path]:
    """Rebuild ``summary.csv``, ``summary.md`` and the plots of a sweep from its run folders.

    Parameters
    ----------
    sweep_dir : str or os.PathLike
        Hydra's multirun folder (``hydra.sweep.dir``).

    Returns
    -------
    list of pathlib.Path
        The files written, ``summary.csv`` and ``summary.md`` first. Plots from an earlier
        report that no longer apply are removed.

    Raises
    ------
    NotADirectoryError
        If ``sweep_dir`` is not a directory.
    """
    root = Path(sweep_dir)
    df = collect_runs(root)
    figures = build_figures(df)
    written = [
        write_text(root / "summary.csv", df.to_csv(index=False)),
        write_text(root / "summary.md", render_markdown(df, root, list(figures))),
    ]
    written += [save_png(root / name, fig) for name, fig in figures.items()]
    for name in REPORT_PLOTS:
        if name not in figures:
            with contextlib.suppress(FileNotFoundError):
                (root / name).unlink()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rebuild a sweep's report and print ``summary.md``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 when the path is not a sweep folder, 1 when writing failed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m simulations.sweeps.report",
        description="Rebuild summary.csv, summary.md and plots of a Hydra multirun folder.",
    )
    parser.add_argument("sweep_dir", help="the multirun folder (Hydra's hydra.sweep.dir)")
    root = Path(parser.parse_args(argv).sweep_dir)
    if not root.is_dir():
        reason = "does not exist" if not root.exists() else "is not a directory"
        print(f"error: {root} {reason}", file=sys.stderr)
        return 2
    if not find_run_dirs(root):
        print(f"error: no run folders (status.json or .hydra/) in {root}", file=sys.stderr)
        return 2
    try:
        write_report(root)
        text = (root / "summary.md").read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write the report in {root}: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
