"""Sync ``predict`` calls queued on the predict threads, so a thread starts its next call without the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .batcher import PredictTimeoutError
from .gate import CHECK_AFTER_WAIT, ClientGoneError, IsGone, QueueFullError


class _Job:
    """One queued call and the time its thread started it."""

    def __init__(self, call: Callable[[], Any], is_gone: IsGone | None, loop: asyncio.AbstractEventLoop) -> None:
        self.call = call
        self.is_gone = is_gone
        self.loop = loop
        self.queued_at = time.monotonic()
        self.started_at: float | None = None

    def run(self) -> Any:
        """Run on a predict thread: skip the call if its client left during a long wait."""
        self.started_at = time.monotonic()
        if self.is_gone is not None and self.started_at - self.queued_at >= CHECK_AFTER_WAIT:
            check = asyncio.run_coroutine_threadsafe(self.is_gone(), self.loop)
            if check.result():
                raise ClientGoneError
        return self.call()


class ThreadQueue:
    """Admits sync calls up to ``threads`` running plus ``max_queue`` waiting, in the executor's own queue.

    A gate on the event loop would hand each free thread its next call only after the loop has
    run everything else that is ready, which leaves the thread idle under load. Here a thread
    takes the next call the moment it finishes one. The request timeout counts from the start
    of the call, not from its arrival.
    """

    def __init__(self, executor: ThreadPoolExecutor, *, threads: int, max_queue: int, timeout: float) -> None:
        self._executor = executor
        self._threads = threads
        self._max_queue = max_queue
        self._timeout = timeout
        #: Calls admitted and not yet finished, queued ones included.
        self.admitted = 0

    @property
    def queued(self) -> int:
        return max(0, self.admitted - self._threads)

    async def run(self, call: Callable[[], Any], is_gone: IsGone | None = None) -> Any:
        """Run ``call`` on a predict thread and return its result, or raise ``PredictTimeoutError``."""
        if self.admitted >= self._threads + self._max_queue:
            raise QueueFullError
        job = _Job(call, is_gone, asyncio.get_running_loop())
        future = asyncio.wrap_future(self._executor.submit(job.run))
        self.admitted += 1
        future.add_done_callback(self._finished)
        while True:
            started_at = job.started_at
            remaining = self._timeout if started_at is None else started_at + self._timeout - time.monotonic()
            done, _ = await asyncio.wait({future}, timeout=max(remaining, 0.0))
            if done:
                return future.result()
            started_at = job.started_at
            if started_at is not None and time.monotonic() >= started_at + self._timeout:
                future.add_done_callback(_consume)
                raise PredictTimeoutError(future)

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self.admitted -= 1


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # the caller already got a 504 response; this only marks the result as read
