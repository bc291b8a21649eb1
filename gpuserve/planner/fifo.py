"""FIFO service on equal slots with equal service times, computed with numpy."""

from __future__ import annotations

import numpy as np


def fifo_starts(ready: np.ndarray, slots: int, work: float) -> np.ndarray:
    """Return start times of FIFO service on ``slots`` equal slots, for requests ready at sorted ``ready``.

    With equal service times the slot that frees first is the one that served the request
    ``slots`` places earlier, so ``start[i] = max(ready[i], start[i - slots] + work)``. Within each
    residue class modulo ``slots`` that recursion unrolls to a running maximum.
    """
    if slots == 1:
        steps = np.arange(ready.size, dtype=np.float64)
        steps *= work
        starts: np.ndarray = np.subtract(ready, steps)
        np.maximum.accumulate(starts, out=starts)
        starts += steps
        return starts
    starts = np.empty_like(ready)
    for offset in range(slots):
        chain = ready[offset::slots]
        steps = np.arange(chain.size, dtype=np.float64) * work
        starts[offset::slots] = np.maximum.accumulate(chain - steps) + steps
    return starts


def busy_seconds(starts: np.ndarray, work: float) -> float:
    """Return the length of the union of the intervals [start, start + work] for sorted ``starts``."""
    if starts.size == 0:
        return 0.0
    return float(np.minimum(np.diff(starts), work).sum()) + work
