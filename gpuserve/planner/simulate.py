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
arrivals (see ``_one_instance``); otherwise an event loop visits every request.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


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
    """What happened: when each request started, and when each instance ran."""

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
    return _event_loop(np.asarray(times, dtype=np.float64), period, fleet)


def _fifo_starts(ready: np.ndarray, slots: int, work: float) -> np.ndarray:
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


def _one_instance(times: np.ndarray, period: float, fleet: Fleet) -> Schedule:
    """Simulate at most one instance with numpy.

    Which requests start a new instance depends on the schedule, which depends on those cold
    starts. The loop guesses every request after a long enough gap, computes the schedule and
    recomputes the guesses from it. The schedule is exact up to the first wrong guess, so the
    first disagreement moves later each round and the loop ends; it takes a few rounds in practice.
    """
    work, window = fleet.work, fleet.idle_window
    count = times.size
    if count == 0:
        begins = np.zeros(fleet.min_instances)
        return Schedule(times.copy(), begins, begins + period, 0, 0.0)
    if fleet.min_instances >= 1:
        starts = _fifo_starts(times, fleet.max_concurrency, work)
        end = max(period, float(starts[-1]) + work)
        return Schedule(starts, np.zeros(1), np.array([end]), 0, _busy_seconds(starts, work))

    # A request can start an instance only if it arrives more than work + window after the one before.
    new = np.empty(count, dtype=bool)
    new[0] = True
    np.greater(np.diff(times), work + window, out=new[1:])
    while True:
        ready = np.maximum.accumulate(np.where(new, times + fleet.cold_start, -np.inf))
        starts = _fifo_starts(np.maximum(times, ready), fleet.max_concurrency, work)
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
    return Schedule(starts, times[firsts], finishes[lasts] + window, int(firsts.size), _busy_seconds(starts, work))


def _busy_seconds(starts: np.ndarray, work: float) -> float:
    """Return the length of the union of the intervals [start, start + work] for sorted ``starts``."""
    if starts.size == 0:
        return 0.0
    return float(np.minimum(np.diff(starts), work).sum()) + work


class _Instance:
    __slots__ = ("begin", "ready", "slots", "last_finish", "busy", "busy_until", "pinned")

    def __init__(self, begin: float, ready: float, slots: int, pinned: bool) -> None:
        self.begin = begin
        self.ready = ready
        #: Times at which each slot frees, as a heap.
        self.slots = [ready] * slots
        self.last_finish = ready
        self.busy = 0.0
        self.busy_until = ready
        self.pinned = pinned


def _event_loop(times: np.ndarray, period: float, fleet: Fleet) -> Schedule:
    """Simulate any number of instances, one request at a time."""
    work, window = fleet.work, fleet.idle_window
    alive = [_Instance(0.0, 0.0, fleet.max_concurrency, pinned=True) for _ in range(fleet.min_instances)]
    stopped: list[tuple[float, float]] = []
    busy = 0.0
    cold_starts = 0
    starts = np.empty(times.size)
    for index, arrival in enumerate(times.tolist()):
        # Instances idle for longer than the window stopped before this arrival.
        for instance in [item for item in alive if not item.pinned and item.last_finish + window < arrival]:
            alive.remove(instance)
            stopped.append((instance.begin, instance.last_finish + window))
            busy += instance.busy

        chosen = min(alive, key=lambda item: item.slots[0], default=None)
        start = float("inf") if chosen is None else max(chosen.slots[0], arrival)
        # A slot that frees by the time its instance is ready is unassigned: a starting instance's
        # slots count as capacity, so a burst does not start more instances than it needs.
        all_busy = all(item.slots[0] > max(arrival, item.ready) for item in alive)
        if all_busy and len(alive) < fleet.max_instances:
            instance = _Instance(arrival, arrival + fleet.cold_start, fleet.max_concurrency, pinned=False)
            alive.append(instance)
            cold_starts += 1
            if instance.ready < start:
                chosen, start = instance, instance.ready
        assert chosen is not None  # max_instances >= 1, so a request always finds or starts an instance

        finish = start + work
        heapq.heapreplace(chosen.slots, finish)
        chosen.last_finish = max(chosen.last_finish, finish)
        chosen.busy += max(0.0, min(work, finish - chosen.busy_until))
        chosen.busy_until = max(chosen.busy_until, finish)
        starts[index] = start

    for instance in alive:
        end = max(period, instance.last_finish) if instance.pinned else instance.last_finish + window
        stopped.append((instance.begin, end))
        busy += instance.busy
    begins = np.array([begin for begin, _ in stopped], dtype=np.float64)
    ends = np.array([end for _, end in stopped], dtype=np.float64)
    return Schedule(starts, begins, ends, cold_starts, busy)
