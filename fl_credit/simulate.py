"""``python -m fl_credit.simulate``: see :mod:`fl_credit.run.simulate`."""

from fl_credit.run.simulate import cli
from fl_credit.runtime.fast_exit import without_teardown

if __name__ == "__main__":
    with without_teardown():  # skips the interpreter teardown (torch, Flower)
        cli()
