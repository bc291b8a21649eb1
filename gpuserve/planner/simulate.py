"""A discrete-event simulation of a scale-to-zero autoscaler with fixed work per request.

The model, shared by every provider:

- Requests are served first come, first served. Each keeps one of an instance's
  ``max_concurrency`` slots busy for ``work`` seconds.
- A request that finds every slot busy, including the slots of instances still starting, makes
  the autoscaler start an instance, unless ``max_instances`` run already. The instance is billed
  from that moment and can serve after ``cold_start`` seconds. The request takes whichever slot
  frees first, the new instance's or an existing one's.
- An instance with no request in flight for ``idle_window`` seconds stops, except the
  ``min_instances`` that run from the start of the period to its end without a cold start.

With ``max_instances == 1`` the schedule is computed with numpy in a few passes over the
arrivals (see ``_one_instance``). With more instances ``events.event_loop`` runs. It also uses
numpy, for the stretches in which no instance starts or stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import event_loop
from .fifo import FAR_PAST, TICKS_PER_SECOND, TickSchedule, busy_time, fifo_starts


@dataclass(frozen=True)
class Fleet:
    """The scaling settings and timings of one simulation, with times in seconds."""

    min_instances: int
    max_instances: int
    max_concurrency: int
    idle_window: float
    cold_start: float
    work: float


@dataclass(frozen=True)
class Schedule:
    """The simulated month: the start of each request and the running time of each instance, in seconds."""

    #: Service start of each request, in the order of the arrivals.
    starts: np.ndarray
    #: Seconds each request waited before its start: zero, or at least one microsecond.
    waits: np.ndarray
    #: Start and stop time of each instance, including the ones that ran all along.
    instance_begins: np.ndarray
    instance_ends: np.ndarray
    #: Instances started on demand, each after a cold start.
    cold_starts: int
    #: Seconds during which instances served at least one request, summed over instances.
    busy_seconds: float


def simulate(times: np.ndarray, period: float, fleet: Fleet, method: str = "auto") -> Schedule:
    """Simulate ``fleet`` serving requests that arrive at the sorted ``times`` during ``period`` seconds.

    Times are rounded to whole microseconds. ``method`` picks the path: "numpy" (one instance
    at most), "events" (any fleet), "steps" (the event loop without numpy stretches, for tests)
    or "auto", which takes "numpy" when ``max_instances`` is 1.
    """
    ticks = _to_ticks(np.asarray(times, dtype=np.float64))
    in_ticks = Fleet(
        fleet.min_instances,
        fleet.max_instances,
        fleet.max_concurrency,
        _tick(fleet.idle_window),
        _tick(fleet.cold_start),
        max(1, _tick(fleet.work)),
    )
    if method == "auto":
        method = "numpy" if fleet.max_instances == 1 else "events"
    if method == "numpy":
        raw = _one_instance(ticks, _tick(period), in_ticks)
    else:
        raw = event_loop(ticks, _tick(period), in_ticks, stretches=method == "events")
    return Schedule(
        starts=raw.starts / TICKS_PER_SECOND,
        waits=(raw.starts - ticks) / TICKS_PER_SECOND,
        instance_begins=raw.instance_begins / TICKS_PER_SECOND,
        instance_ends=raw.instance_ends / TICKS_PER_SECOND,
        cold_starts=raw.cold_starts,
        busy_seconds=raw.busy / TICKS_PER_SECOND,
    )


def _to_ticks(seconds: np.ndarray) -> np.ndarray:
    ticks: np.ndarray = np.rint(seconds * TICKS_PER_SECOND).astype(np.int64)
    return ticks


def _tick(seconds: float) -> int:
    return int(round(seconds * TICKS_PER_SECOND))


def _one_instance(times: np.ndarray, period: int, fleet: Fleet) -> TickSchedule:
    """Simulate at most one instance with numpy; times in ticks.

    Which requests start a new instance depends on the schedule, which depends on those cold
    starts. The loop guesses every request after a long enough gap, computes the schedule and
    recomputes the guesses from it. The schedule is exact up to the first wrong guess, so the
    first disagreement moves later each round and the loop ends. It takes a few rounds in practice.
    """
    work, window, cold = int(fleet.work), int(fleet.idle_window), int(fleet.cold_start)
    count = times.size
    if count == 0:
        begins = np.zeros(fleet.min_instances, dtype=np.int64)
        return TickSchedule(times.copy(), begins, begins + period, 0, 0)
    if fleet.min_instances >= 1:
        starts = fifo_starts(times, fleet.max_concurrency, work)
        end = max(period, int(starts[-1]) + work)
        return TickSchedule(starts, np.zeros(1, dtype=np.int64), np.array([end]), 0, busy_time(starts, work))

    # A request can start an instance only if it arrives more than work + window after the one before.
    new = np.empty(count, dtype=bool)
    new[0] = True
    np.greater(np.diff(times), work + window, out=new[1:])
    while True:
        ready = np.maximum.accumulate(np.where(new, times + cold, FAR_PAST))
        starts = fifo_starts(np.maximum(times, ready), fleet.max_concurrency, work)
        # Starts never decrease, so the latest finish before request i is start[i - 1] + work.
        finishes = starts + work
        found = np.empty(count, dtype=bool)
        found[0] = True
        np.greater(times[1:], finishes[:-1] + window, out=found[1:])
        if np.array_equal(found, new):
            break
        new = found

    firsts = np.flatnonzero(new)
    lasts = np.append(firsts[1:] - 1, count - 1)
    return TickSchedule(starts, times[firsts], finishes[lasts] + window, int(firsts.size), busy_time(starts, work))
