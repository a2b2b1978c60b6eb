"""``python -m fl_credit.deploy_status``: see :mod:`fl_credit.deploy.status`."""

from fl_credit.deploy.status import main

if __name__ == "__main__":
    raise SystemExit(main())
