"""Endpoints for the concurrency, timeout and shutdown tests."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import gpuserve


class Sleeper(gpuserve.Endpoint):
    """Sleeps ``seconds`` and logs each call to $CALL_LOG when that is set."""

    timeout = 1.0
    shutdown_grace = 10.0
    scaling = gpuserve.Scaling(max_queue=8)

    def predict(self, seconds: float = 0.0, tag: str = "") -> str:
        if os.environ.get("CALL_LOG"):
            with Path(os.environ["CALL_LOG"]).open("a") as log:
                log.write(f"{tag}\n")
        time.sleep(seconds)
        return tag or "done"


class Stateful(gpuserve.Endpoint):
    """Keeps per-request state on ``self``: correct only when calls never overlap."""

    scaling = gpuserve.Scaling(max_concurrency=8)

    def setup(self) -> None:
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def predict(self, x: int) -> dict[str, int]:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.current = x
        time.sleep(0.005)
        result = {"x": self.current, "max_running": self.max_running}
        with self.lock:
            self.running -= 1
        return result


class ThreadSafe(Stateful):
    """The same counters, marked thread_safe, so that calls overlap up to max_concurrency."""

    thread_safe = True
    scaling = gpuserve.Scaling(max_concurrency=4)

    def predict(self, x: int) -> dict[str, int]:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return {"x": x, "max_running": self.max_running}


class AsyncCounter(gpuserve.Endpoint):
    """An async predict that reports how many calls overlapped."""

    scaling = gpuserve.Scaling(max_concurrency=2, max_queue=50)

    def setup(self) -> None:
        self.running = 0
        self.max_running = 0

    async def predict(self, x: int) -> dict[str, int]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        return {"x": x, "max_running": self.max_running}


class Square(gpuserve.Endpoint):
    """x squared: the load test's endpoint, with a queue deep enough for its concurrency."""

    scaling = gpuserve.Scaling(max_queue=256)
    max_body_size = 1024

    def predict(self, x: int, note: str = "") -> int:
        return x * x


class Draining(gpuserve.Endpoint):
    """Sleeps ``seconds``; its grace period of 10 s outlasts any one call."""

    timeout = 30.0
    shutdown_grace = 10.0

    def predict(self, seconds: float = 0.0) -> float:
        time.sleep(seconds)
        return seconds


class SameThread(gpuserve.Endpoint):
    """Reports whether predict runs on the thread that ran setup."""

    def setup(self) -> None:
        self.setup_thread = threading.get_ident()

    def predict(self) -> bool:
        return threading.get_ident() == self.setup_thread
