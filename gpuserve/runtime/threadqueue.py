"""Sync ``predict`` calls queued on the predict threads, so a thread starts its next call without the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
        loop = asyncio.get_running_loop()
        job = _Job(call, is_gone, loop)
        result: asyncio.Future[Any] = loop.create_future()
        work = self._executor.submit(job.run)
        self.admitted += 1
        # A plain callback instead of asyncio.wrap_future and asyncio.wait: this path runs for every request.
        work.add_done_callback(lambda done: loop.call_soon_threadsafe(self._finished, done, result))
        timer = loop.call_later(self._timeout, self._check_timeout, job, result)
        try:
            return await result
        finally:
            timer.cancel()

    def _finished(self, work: Future[Any], result: asyncio.Future[Any]) -> None:
        self.admitted -= 1
        if result.done():
            return  # the caller already got a 504 response, or left
        if work.cancelled():
            result.cancel()
        elif (error := work.exception()) is not None:
            result.set_exception(error)
        else:
            result.set_result(work.result())

    def _check_timeout(self, job: _Job, result: asyncio.Future[Any]) -> None:
        """Fail ``result`` once the call has run for the timeout; a call still queued gets more time."""
        if result.done():
            return
        started_at = job.started_at
        now = time.monotonic()
        if started_at is not None and now >= started_at + self._timeout:
            result.set_exception(PredictTimeoutError(None))  # the slot frees in _finished, when the call ends
            return
        delay = self._timeout if started_at is None else started_at + self._timeout - now
        job.loop.call_later(delay, self._check_timeout, job, result)
