"""``python -m fl_credit.supernode``: see :mod:`fl_credit.deploy.supernode`."""

from fl_credit.deploy.supernode import main

if __name__ == "__main__":
    raise SystemExit(main())
