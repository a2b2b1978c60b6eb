"""``python -m fl_credit.certs``: see :mod:`fl_credit.deploy.certs`."""

from fl_credit.deploy.certs import main

if __name__ == "__main__":
    raise SystemExit(main())
