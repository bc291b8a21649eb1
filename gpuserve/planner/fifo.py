"""Integer time shared by both simulation paths, and FIFO service on equal slots with numpy.

The simulation counts time in whole microseconds. Integer sums are exact, so the numpy path and
the request-by-request path compute the same schedule to the tick, ties between slots included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Ticks per second: the simulation's time unit is one microsecond.
TICKS_PER_SECOND = 1_000_000
#: A time before any arrival, far enough from the int64 limit that adding a month cannot overflow.
FAR_PAST = int(np.iinfo(np.int64).min // 4)


@dataclass(frozen=True)
class TickSchedule:
    """A simulated schedule in ticks; ``simulate.Schedule`` is the same in seconds."""

    starts: np.ndarray
    instance_begins: np.ndarray
    instance_ends: np.ndarray
    cold_starts: int
    busy: int


def fifo_starts(ready: np.ndarray, slots: int, work: int) -> np.ndarray:
    """Return start ticks of FIFO service on ``slots`` equal slots, for requests ready at sorted ``ready``.

    With equal service times the slot that frees first is the one that served the request
    ``slots`` places earlier, so ``start[i] = max(ready[i], start[i - slots] + work)``. Within each
    residue class modulo ``slots`` that recursion unrolls to a running maximum.
    """
    if slots == 1:
        steps = np.arange(ready.size, dtype=np.int64)
        steps *= work
        starts: np.ndarray = np.subtract(ready, steps)
        np.maximum.accumulate(starts, out=starts)
        starts += steps
        return starts
    starts = np.empty_like(ready)
    for offset in range(slots):
        chain = ready[offset::slots]
        steps = np.arange(chain.size, dtype=np.int64) * work
        starts[offset::slots] = np.maximum.accumulate(chain - steps) + steps
    return starts


def busy_time(starts: np.ndarray, work: int) -> int:
    """Return the length of the union of the intervals [start, start + work] for sorted ``starts``."""
    if starts.size == 0:
        return 0
    return int(np.minimum(np.diff(starts), work).sum()) + work
