"""``python -m fl_credit.validate RUN_DIR``: the validation report of a finished run.

Builds ``validation.md`` (traffic-light summary, tables, figures) and ``validation.json``
from the run folder's ``validation_counts.json``, the banks' per-grade counts the run summed
through secure aggregation. It needs neither the banks nor any row. Bad input: one line,
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fl_credit.validation.query import COUNTS_FILE


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fl_credit.validate")
    parser.add_argument("run_dir", help="a finished run folder holding " + COUNTS_FILE)
    run_dir = Path(parser.parse_args(argv).run_dir)
    counts = run_dir / COUNTS_FILE
    if not counts.is_file():
        print(
            f"error: {counts} not found (a run with validation.enabled=true writes it)",
            file=sys.stderr,
        )
        return 2
    try:
        json.loads(counts.read_text())
    except (OSError, ValueError) as err:
        print(f"error: {counts} is not readable JSON ({err})", file=sys.stderr)
        return 2
    from fl_credit.validation.report import write_validation_report

    try:
        written = write_validation_report(run_dir)
    except (KeyError, ValueError, TypeError) as err:
        print(f"error: {counts} is not a validation counts file ({err})", file=sys.stderr)
        return 2
    print(written[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
