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
from .fifo import busy_seconds, fifo_starts


@dataclass(frozen=True)
class Fleet:
    """The scaling settings and timings that one simulation runs with; all times in seconds."""

    min_instances: int
    max_instances: int
    max_concurrency: int
    idle_window: float
    cold_start: float
    work: float


@dataclass(frozen=True)
class Schedule:
    """The simulated month: the start of each request and the running time of each instance."""

    #: Service start of each request, in the order of the arrivals.
    starts: np.ndarray
    #: Start and stop time of each instance, including the ones that ran all along.
    instance_begins: np.ndarray
    instance_ends: np.ndarray
    #: Instances started on demand, each after a cold start.
    cold_starts: int
    #: Seconds during which instances served at least one request, summed over instances.
    busy_seconds: float


def simulate(times: np.ndarray, period: float, fleet: Fleet) -> Schedule:
    """Simulate ``fleet`` serving requests that arrive at the sorted ``times`` during ``period`` seconds."""
    if fleet.max_instances == 1:
        return _one_instance(np.asarray(times, dtype=np.float64), period, fleet)
    return event_loop(np.asarray(times, dtype=np.float64), period, fleet)


def _one_instance(times: np.ndarray, period: float, fleet: Fleet) -> Schedule:
    """Simulate at most one instance with numpy.

    Which requests start a new instance depends on the schedule, which depends on those cold
    starts. The loop guesses every request after a long enough gap, computes the schedule and
    recomputes the guesses from it. The schedule is exact up to the first wrong guess, so the
    first disagreement moves later each round and the loop ends. It takes a few rounds in practice.
    """
    work, window = fleet.work, fleet.idle_window
    count = times.size
    if count == 0:
        begins = np.zeros(fleet.min_instances)
        return Schedule(times.copy(), begins, begins + period, 0, 0.0)
    if fleet.min_instances >= 1:
        starts = fifo_starts(times, fleet.max_concurrency, work)
        end = max(period, float(starts[-1]) + work)
        return Schedule(starts, np.zeros(1), np.array([end]), 0, busy_seconds(starts, work))

    # A request can start an instance only if it arrives more than work + window after the one before.
    new = np.empty(count, dtype=bool)
    new[0] = True
    np.greater(np.diff(times), work + window, out=new[1:])
    while True:
        ready = np.maximum.accumulate(np.where(new, times + fleet.cold_start, -np.inf))
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
    return Schedule(starts, times[firsts], finishes[lasts] + window, int(firsts.size), busy_seconds(starts, work))
