"""The positive-controls command refuses bad input in one line, before any run."""

from __future__ import annotations

import pytest

from simulations.studies.threat_controls import main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--attacks", "fang_trim,nope"], "unknown attack 'nope'"),
        (["--attacks", "ipm", "--seeds", "x-y"], "--seeds 'x-y'"),
        (["--attacks", "fang_trim:0"], "name:k with k >= 1"),
        (["--krum-selection", "--rounds", "0"], "rounds >= 1"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(argv, named, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0]
