"""Data loading, encoding, partitioning and per-bank files."""

from fl_credit.data.frame import CreditData

__all__ = ["CreditData"]
