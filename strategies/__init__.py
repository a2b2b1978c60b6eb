"""Aggregation strategies for fl-credit (privacy-preserving variants of FedAvg)."""
