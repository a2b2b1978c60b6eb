"""``python -m fl_credit.scorecard``: see :mod:`fl_credit.credit.scorecard`."""

from fl_credit.credit.scorecard import main

if __name__ == "__main__":
    raise SystemExit(main())
