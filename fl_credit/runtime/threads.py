"""The same numbers however a run is launched: one math thread per process.

A reduction split over several threads (a BLAS matrix product in numpy, torch's intra-op
parallelism) adds its partial sums in another order than one thread does, which changes the
last bits of the Newton sums, the scores and every number downstream. Hydra's joblib launcher
gives each worker one thread (it divides the cores between workers); the sequential launcher
left two: the same sweep point gave Brier scores differing in the 17th digit. Every run uses
one thread, so a point's numbers do not depend on the launcher
(``tests/runtime/test_engine_scale_out.py``). The products here are small (tens of features), so the
second thread bought little.
"""

from __future__ import annotations

_limits: list = []


def single_threaded_math() -> None:
    """One thread for BLAS and OpenMP libraries (loaded now or later) and for torch."""
    if _limits:
        return
    import torch
    from threadpoolctl import threadpool_limits

    _limits.append(threadpool_limits(limits=1))
    torch.set_num_threads(1)
