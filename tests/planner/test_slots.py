"""Slots per instance: how many requests the runtime lets one instance serve at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import gpuserve
from gpuserve.planner.slots import instance_slots


class SyncPredict(gpuserve.Endpoint):
    gpu = "L4"
    scaling = gpuserve.Scaling(max_concurrency=4)

    def predict(self, text: str) -> str:
        return text


class ThreadSafePredict(SyncPredict):
    thread_safe = True


class AsyncPredict(gpuserve.Endpoint):
    gpu = "L4"
    scaling = gpuserve.Scaling(max_concurrency=4)

    async def predict(self, text: str) -> str:
        return text


class AsyncStream(gpuserve.Endpoint):
    gpu = "L4"
    scaling = gpuserve.Scaling(max_concurrency=4)

    async def predict(self, text: str) -> AsyncIterator[str]:
        yield text


class BatchedPredict(gpuserve.Endpoint):
    gpu = "L4"
    scaling = gpuserve.Scaling(max_concurrency=4)

    @gpuserve.batched(max_batch_size=8)
    def predict(self, text: list[str]) -> list[str]:
        return text


def test_sync_predict_one_slot() -> None:
    slots = instance_slots(SyncPredict, 4)

    assert slots.total == 1
    assert slots.describe() == "1 at a time: sync predict, not thread_safe"


def test_thread_safe_uses_max_concurrency() -> None:
    slots = instance_slots(ThreadSafePredict, 4)

    assert slots.total == 4
    assert slots.describe() == "4 at a time: sync predict, thread_safe"


def test_async_uses_max_concurrency() -> None:
    assert instance_slots(AsyncPredict, 4).total == 4
    assert instance_slots(AsyncStream, 4).total == 4


def test_batched_multiplies_batch_size() -> None:
    slots = instance_slots(BatchedPredict, 4)

    assert (slots.calls, slots.batch_size, slots.total) == (1, 8, 8)
    assert slots.describe() == "1 call at a time: sync predict, not thread_safe; batches of up to 8, 8 slots"


def test_plan_simulates_effective_slots() -> None:
    sync = gpuserve.plan(SyncPredict, 20_000, work_seconds=1.0, providers=["modal"])
    threaded = gpuserve.plan(ThreadSafePredict, 20_000, work_seconds=1.0, providers=["modal"])

    assert (sync.max_concurrency, sync.slots) == (4, 1)
    assert (threaded.max_concurrency, threaded.slots) == (4, 4)
    assert sync.results[0].wait_p95 > threaded.results[0].wait_p95
