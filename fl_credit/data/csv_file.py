"""Reading a user's CSV file, with every failure reported as one line naming the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fl_credit.config.errors import DataError


def read_csv_file(path: Path, **read_options) -> pd.DataFrame:
    """Read the whole of ``path`` with pandas (``low_memory=False`` plus ``read_options``).

    Raises
    ------
    DataError
        When the file is missing, not a file, empty, or not parseable as CSV.
    """
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        return pd.read_csv(path, low_memory=False, **read_options)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read as CSV ({detail})") from exc
