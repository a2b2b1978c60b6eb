"""Model validation without pooled rows: master scale, securely summed per-grade counts, the
supervisors' tests computed from those sums, fairness by group, monotone effects, report."""
