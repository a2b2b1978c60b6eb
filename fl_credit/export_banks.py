"""``python -m fl_credit.export_banks``: see :mod:`fl_credit.deploy.export_banks`."""

from fl_credit.deploy.export_banks import main

if __name__ == "__main__":
    raise SystemExit(main())
