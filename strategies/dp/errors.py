"""Errors of the DP components, free of any application package.

Both carry ``user_error = True``: an application reports them as one line naming the problem
(a setting out of range, a spent budget), not as a crash.
"""

from __future__ import annotations


class PrivacyConfigError(ValueError):
    """A privacy setting is out of range, or no usable noise level meets the target."""

    user_error = True


class BudgetExhausted(RuntimeError):  # noqa: N818 - the name says what happened
    """A privacy budget for the planned horizon is spent: the party stops taking part."""

    user_error = True
