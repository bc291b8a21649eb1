"""How many requests one instance serves at once, as the serving runtime runs ``predict``."""

from __future__ import annotations

from dataclasses import dataclass

from ..batching import batch_config
from ..endpoint import Endpoint, concurrent_calls


@dataclass(frozen=True)
class Slots:
    """The requests one instance serves at once: ``calls`` concurrent ``predict`` calls of ``batch_size`` each."""

    calls: int
    #: Maximum requests in one ``predict`` call: ``max_batch_size`` for a batched predict, else 1.
    batch_size: int
    #: Reason the runtime allows that many calls, for reports.
    reason: str

    @property
    def total(self) -> int:
        """Slots the simulation gives each instance."""
        return self.calls * self.batch_size

    def describe(self) -> str:
        """Return the slots in words, for example "1 at a time: sync predict, not thread_safe"."""
        if self.batch_size == 1:
            return f"{self.calls} at a time: {self.reason}"
        calls = "1 call" if self.calls == 1 else f"{self.calls} calls"
        return f"{calls} at a time: {self.reason}; batches of up to {self.batch_size}, {self.total} slots"


def instance_slots(endpoint: type[Endpoint], max_concurrency: int) -> Slots:
    """Return the requests one instance of ``endpoint`` serves at once under ``max_concurrency``.

    ``concurrent_calls`` gives the calls the runtime runs at once. A batched predict takes up to
    ``max_batch_size`` requests per call. The planner assumes that each request of a batch takes
    the given work seconds in its own slot, as if a full batch took no longer than one request.

    Example: ``instance_slots(Embed, 4).total`` is 1 for a sync ``Embed`` without ``thread_safe``.
    """
    calls, reason = concurrent_calls(endpoint, max_concurrency)
    config = batch_config(endpoint.predict)
    batch_size = 1 if config is None else config.max_batch_size
    return Slots(calls, batch_size, reason)
