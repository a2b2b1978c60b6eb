"""``python -m fl_credit.evasion``: see :mod:`fl_credit.threats.evasion`."""

from fl_credit.threats.evasion import main

if __name__ == "__main__":
    raise SystemExit(main())
