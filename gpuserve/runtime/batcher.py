"""Dynamic batching: gather concurrent requests into one ``predict`` call and return each caller its own item."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..batching import BatchConfig
from .gate import CHECK_AFTER_WAIT, ClientGoneError, IsGone, QueueFullError
from .metrics import Metrics

logger = logging.getLogger(__name__)

#: Runs predict once with a list per parameter, within the request timeout.
BatchCall = Callable[[dict[str, list[Any]]], Awaitable[Any]]


class BatchOutputError(Exception):
    """A batched ``predict`` returned something other than one output per request."""


class PredictTimeoutError(Exception):
    """``predict`` ran past the request timeout.

    ``pending`` is a future that finishes when a sync call, which cannot be interrupted, really
    ends; it is None for async calls, which are cancelled.
    """

    def __init__(self, pending: asyncio.Future[Any] | None) -> None:
        super().__init__("predict ran past the request timeout")
        self.pending = pending


@dataclass
class _Item:
    inputs: dict[str, Any]
    future: asyncio.Future[Any]
    #: Checked before the item joins a batch; set only for items queued behind full batches.
    is_gone: IsGone | None = None
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Queues single requests and runs them through ``call`` in batches of up to ``max_batch_size``.

    ``workers`` batches may run at the same time; each waits up to ``max_wait_ms`` after its first
    item for the batch to fill. At most ``max_queue`` requests wait beyond the batches that are filling.
    """

    def __init__(self, config: BatchConfig, call: BatchCall, *, workers: int, max_queue: int, metrics: Metrics) -> None:
        self.config = config
        self._call = call
        self._worker_count = workers
        self._max_waiting = max_queue + config.max_batch_size * workers
        self._metrics = metrics
        self._pending: deque[_Item] = deque()
        self._arrived: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []
        #: Requests inside a running predict call.
        self.running = 0

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def submit(self, inputs: dict[str, Any], is_gone: IsGone | None = None) -> Any:
        """Queue one request and return its output, or raise its own error.

        A request queued behind full batches is dropped, with ``ClientGoneError``, when ``is_gone``
        reports that its client left before its batch starts.
        """
        if len(self._pending) >= self._max_waiting:
            raise QueueFullError
        if self._arrived is None:
            self._arrived = asyncio.Event()
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(self._worker_count)]
        far_back = len(self._pending) >= self.config.max_batch_size * self._worker_count
        item = _Item(inputs, asyncio.get_running_loop().create_future(), is_gone if far_back else None)
        self._pending.append(item)
        self._arrived.set()
        try:
            await item.future
        except asyncio.CancelledError:
            item.future.cancel()
            with contextlib.suppress(ValueError):
                self._pending.remove(item)
            raise
        return item.future.result()

    async def _work(self) -> None:
        assert self._arrived is not None
        wait = self.config.max_wait_ms / 1000
        size = self.config.max_batch_size
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._pending[0].arrived + wait
            while len(self._pending) < size and (remaining := deadline - time.monotonic()) > 0:
                self._arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), remaining)
            batch: list[_Item] = []
            while self._pending and len(batch) < size:
                item = self._pending.popleft()
                waited = time.monotonic() - item.arrived
                if item.is_gone is not None and waited >= CHECK_AFTER_WAIT and await item.is_gone():
                    item.future.set_exception(ClientGoneError())
                if not item.future.done():
                    batch.append(item)
            if batch:
                self.running += len(batch)
                try:
                    await self._run(batch)
                except Exception:  # a bug here must not stop the worker and hang every later request
                    logger.exception("The batch worker failed")
                    _fail(batch, RuntimeError("the batch worker failed; see the server log"))
                finally:
                    self.running -= len(batch)

    async def _run(self, batch: list[_Item]) -> None:
        self._metrics.batch_sizes.observe(len(batch))
        columns = {name: [item.inputs[name] for item in batch] for name in batch[0].inputs}
        try:
            outputs = await self._call(columns)
        except PredictTimeoutError as exc:
            _fail(batch, exc)
            if exc.pending is not None:  # the next batch starts once the thread is free again
                with contextlib.suppress(BaseException):
                    await exc.pending
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            logger.warning(
                "A batch of %d raised %s: %s; running its items one at a time", len(batch), type(exc).__name__, exc
            )
            for item in batch:
                await self._run([item])
            return
        try:
            results = _split(outputs, len(batch))
        except BatchOutputError as exc:
            _fail(batch, exc)
            return
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)


def _split(outputs: Any, expected: int) -> list[Any]:
    if isinstance(outputs, (str, bytes, dict)) or not hasattr(outputs, "__len__") or not hasattr(outputs, "__iter__"):
        raise BatchOutputError(
            f"The batched predict returned a {type(outputs).__name__} for a batch of {expected}; "
            "return a list with one output per request, in order."
        )
    results = list(outputs)
    if len(results) != expected:
        raise BatchOutputError(
            f"The batched predict returned {len(results)} outputs for a batch of {expected}; "
            "return exactly one output per request, in order."
        )
    return results


def _fail(batch: list[_Item], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
