"""Batched predicts for the batching tests."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import gpuserve


class BatchSqrt(gpuserve.Endpoint):
    """Square roots of a batch; the whole call raises InputError when one x is negative."""

    def setup(self) -> None:
        self.batches: list[int] = []

    @gpuserve.batched(max_batch_size=4, max_wait_ms=200)
    def predict(self, x: list[float]) -> list[float]:
        self.batches.append(len(x))
        for value in x:
            if value < 0:
                raise gpuserve.InputError(f"x={value} is negative; send x >= 0")
        return [math.sqrt(value) for value in x]


class BatchMarked(gpuserve.Endpoint):
    """Doubles each item, and rejects odd ones by returning an InputError at their position."""

    @gpuserve.batched(max_batch_size=8, max_wait_ms=100)
    def predict(self, x: list[int], label: list[str]) -> list[Any]:
        return [
            gpuserve.InputError(f"x={value} is odd; send an even x") if value % 2 else f"{name}={value * 2}"
            for value, name in zip(x, label)
        ]


class BatchWrongLength(gpuserve.Endpoint):
    """Returns one output too few."""

    @gpuserve.batched(max_batch_size=4, max_wait_ms=50)
    def predict(self, x: list[int]) -> list[int]:
        return x[:-1]


class BatchAsync(gpuserve.Endpoint):
    """An async batched predict that records its batch sizes and sleeps ``seconds``."""

    timeout = 1.0

    def setup(self) -> None:
        self.batches: list[int] = []

    @gpuserve.batched(max_batch_size=16, max_wait_ms=50)
    async def predict(self, x: list[int], seconds: list[float]) -> list[int]:
        self.batches.append(len(x))
        await asyncio.sleep(max(seconds))
        return [value + 1 for value in x]


class BatchThreads(gpuserve.Endpoint):
    """A sync batched predict that records the thread and size of each batch."""

    def setup(self) -> None:
        self.batches: list[tuple[str, int]] = []

    @gpuserve.batched(max_batch_size=8, max_wait_ms=20)
    def predict(self, x: list[int]) -> list[int]:
        self.batches.append((threading.current_thread().name, len(x)))
        time.sleep(0.05)
        return [value * 10 for value in x]
