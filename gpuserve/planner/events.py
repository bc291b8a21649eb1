"""The simulation for any number of instances: an event loop that computes calm stretches with numpy.

Each request goes to the slot that freed first. Among slots that freed at the same tick, it goes
to the one whose last request came first. While no instance starts or stops, that rule hands
request ``i`` the slot of request ``i - K`` for ``K`` slots in all, so a stretch of requests is
one ``fifo_starts`` call. ``_Loop.try_stretch`` computes a stretch, keeps it up to the first
request where an instance would start or stop or the rule would not hold, and ``_Loop.step``
handles that request alone. Both give the same schedule, and a test checks it.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from .fifo import FAR_PAST, TickSchedule, fifo_starts

if TYPE_CHECKING:
    from .simulate import Fleet

#: Requests computed at once in a stretch, at first and at most.
_FIRST_STRETCH = 256
_MAX_STRETCH = 1 << 16
#: A stretch shorter than this costs about as much as stepping through its requests.
_WORTHWHILE = 64
#: Requests handled one at a time after a short stretch before the next try, at first and at most.
#: The pause doubles after each short stretch, so a fleet that changes all the time is stepped.
_FIRST_PAUSE = 32
_MAX_PAUSE = 8192


class _Instance:
    __slots__ = ("begin", "ready", "slots", "last_finish", "busy", "busy_until", "pinned")

    def __init__(self, begin: int, ready: int, slots: int, pinned: bool) -> None:
        self.begin = begin
        self.ready = ready
        #: Heap of (tick the slot frees, index of its last request, or -1 before the first).
        self.slots: list[tuple[int, int]] = [(ready, -1)] * slots
        self.last_finish = ready
        self.busy = 0
        self.busy_until = ready
        self.pinned = pinned

    def add_busy(self, start: int, finish: int) -> None:
        until = self.busy_until
        if finish > until:
            self.busy += finish - (start if start > until else until)
            self.busy_until = finish
        if finish > self.last_finish:
            self.last_finish = finish


def event_loop(times: np.ndarray, period: int, fleet: Fleet, stretches: bool = True) -> TickSchedule:
    """Simulate ``fleet`` on sorted arrival ``times``, all in ticks; ``stretches=False`` visits every request alone."""
    loop = _Loop(times, fleet)
    count = times.size
    arrivals = times.tolist()
    index, size, pause, backoff = 0, _FIRST_STRETCH, 0, _FIRST_PAUSE
    while index < count:
        loop.retire(arrivals[index])
        if stretches and pause == 0 and loop.all_ready(arrivals[index]):
            accepted = loop.try_stretch(index, size)
            index += accepted
            size = min(2 * size, _MAX_STRETCH) if accepted == size else _FIRST_STRETCH
            if accepted >= _WORTHWHILE:
                backoff = _FIRST_PAUSE
                continue
            pause, backoff = backoff, min(2 * backoff, _MAX_PAUSE)
            if index >= count:
                break
            loop.retire(arrivals[index])
        pause = max(0, pause - 1)
        loop.step(index, arrivals[index])
        index += 1
    return loop.finish(period)


class _Loop:
    def __init__(self, times: np.ndarray, fleet: Fleet) -> None:
        self.times = times
        self.fleet = fleet
        self.work = int(fleet.work)
        self.window = int(fleet.idle_window)
        self.cold_start = int(fleet.cold_start)
        self.alive = [_Instance(0, 0, fleet.max_concurrency, pinned=True) for _ in range(fleet.min_instances)]
        self.stopped: list[tuple[int, int]] = []
        self.busy = 0
        self.cold_starts = 0
        self.starts = np.empty(times.size, dtype=np.int64)

    def retire(self, arrival: int) -> None:
        """Stop the instances that were idle for longer than the window before ``arrival``."""
        window = self.window
        if all(item.pinned or item.last_finish + window >= arrival for item in self.alive):
            return
        for instance in [item for item in self.alive if not item.pinned and item.last_finish + window < arrival]:
            self.alive.remove(instance)
            self.stopped.append((instance.begin, instance.last_finish + window))
            self.busy += instance.busy

    def all_ready(self, arrival: int) -> bool:
        return bool(self.alive) and all(item.ready <= arrival for item in self.alive)

    def step(self, index: int, arrival: int) -> None:
        """Serve one request, starting an instance when every slot is busy."""
        # This runs once per request outside stretches, hence one pass and no helper calls.
        chosen: _Instance | None = None
        earliest = (0, 0)
        all_busy = True
        for item in self.alive:
            head = item.slots[0]
            if chosen is None or head < earliest:
                chosen, earliest = item, head
            # A slot that frees by the time its instance is ready is unassigned: a starting
            # instance's slots count as capacity, so a burst starts no more instances than it needs.
            if head[0] <= (arrival if arrival > item.ready else item.ready):
                all_busy = False
        start = earliest[0] if earliest[0] > arrival else arrival
        if all_busy and len(self.alive) < self.fleet.max_instances:
            instance = _Instance(arrival, arrival + self.cold_start, self.fleet.max_concurrency, pinned=False)
            self.alive.append(instance)
            self.cold_starts += 1
            if chosen is None or instance.ready < start:
                chosen, start = instance, instance.ready
        assert chosen is not None  # max_instances >= 1, so a request always finds or starts an instance

        finish = start + self.work
        heapq.heapreplace(chosen.slots, (finish, index))
        chosen.add_busy(start, finish)
        self.starts[index] = start

    def try_stretch(self, first: int, size: int) -> int:
        """Serve requests from ``first`` on with numpy while no instance starts or stops; return how many."""
        work = self.work
        entries = sorted(
            (free, last, position) for position, item in enumerate(self.alive) for free, last in item.slots
        )
        slots = len(entries)
        arrivals = self.times[first : first + size]
        # The slots' current free times act as the finishes of ``slots`` earlier requests.
        starts = fifo_starts(np.concatenate(([free - work for free, _, _ in entries], arrivals)), slots, work)
        finishes = starts + work
        owners = np.array([position for _, _, position in entries])[np.arange(arrivals.size) % slots]

        accepted = self._valid_length(finishes, slots)
        if len(self.alive) < self.fleet.max_instances:
            # The first request that finds every slot busy would start an instance.
            busy = np.flatnonzero(finishes[: arrivals.size] > arrivals)
            accepted = min(accepted, int(busy[0]) if busy.size else accepted)
        accepted = min(accepted, self._first_retirement(arrivals, finishes[slots:], owners))
        if accepted == 0:
            return 0
        self._apply(first, accepted, entries, starts[slots : slots + accepted], owners[:accepted])
        return accepted

    @staticmethod
    def _valid_length(finishes: np.ndarray, slots: int) -> int:
        """Return how many requests the stride rule serves right: it needs the finishes before them in order."""
        drops = np.flatnonzero(finishes[1:] < finishes[:-1])
        count = finishes.size - slots
        return count if drops.size == 0 else max(0, min(count, int(drops[0]) + 2 - slots))

    def _first_retirement(self, arrivals: np.ndarray, finishes: np.ndarray, owners: np.ndarray) -> int:
        """Return the index of the first arrival before which an instance would stop, or the stretch size."""
        first = arrivals.size
        window = self.window
        for position, instance in enumerate(self.alive):
            if instance.pinned:
                continue
            latest = np.maximum.accumulate(np.where(owners == position, finishes, FAR_PAST))
            before = np.maximum(instance.last_finish, np.concatenate(([FAR_PAST], latest[:-1])))
            stops = np.flatnonzero(before[1:] + window < arrivals[1:])
            if stops.size:
                first = min(first, int(stops[0]) + 1)
        return first

    def _apply(
        self, first: int, count: int, entries: list[tuple[int, int, int]], starts: np.ndarray, owners: np.ndarray
    ) -> None:
        """Record ``count`` requests of a stretch and bring each slot and instance up to date."""
        work, slots = self.work, len(entries)
        self.starts[first : first + count] = starts
        updated: list[list[tuple[int, int]]] = [[] for _ in self.alive]
        for slot, (free, last, position) in enumerate(entries):
            if slot < count:
                latest = slot + slots * ((count - 1 - slot) // slots)
                free, last = int(starts[latest]) + work, first + latest
            updated[position].append((free, last))
        for position, instance in enumerate(self.alive):
            heapq.heapify(updated[position])
            instance.slots = updated[position]
            mine = starts[owners == position]
            if mine.size:
                ends = mine + work
                previous = np.maximum(instance.busy_until, np.concatenate(([instance.busy_until], ends[:-1])))
                instance.busy += int(np.maximum(0, ends - np.maximum(mine, previous)).sum())
                instance.busy_until = max(instance.busy_until, int(ends[-1]))
                instance.last_finish = max(instance.last_finish, int(ends[-1]))

    def finish(self, period: int) -> TickSchedule:
        for instance in self.alive:
            end = max(period, instance.last_finish) if instance.pinned else instance.last_finish + self.window
            self.stopped.append((instance.begin, end))
            self.busy += instance.busy
        begins = np.array([begin for begin, _ in self.stopped], dtype=np.int64)
        ends = np.array([end for _, end in self.stopped], dtype=np.int64)
        return TickSchedule(self.starts, begins, ends, self.cold_starts, self.busy)
