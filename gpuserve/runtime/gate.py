"""Per-instance admission: at most ``limit`` requests run at once, at most ``max_queue`` wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

#: Reports, without waiting, whether a request's client has disconnected (Starlette's ``is_disconnected``).
IsGone = Callable[[], Coroutine[Any, Any, bool]]

#: Seconds a request must have waited before its turn checks that the client is still there. The check
#: costs a turn of the event loop, which under load would idle the predict thread between calls.
CHECK_AFTER_WAIT = 0.1


class QueueFullError(Exception):
    """All slots are taken and ``max_queue`` requests already wait."""


class ClientGoneError(Exception):
    """The client disconnected while its request waited for a slot."""


class Gate:
    """Hands out ``limit`` slots; later callers queue in arrival order, up to ``max_queue`` of them."""

    def __init__(self, limit: int, max_queue: int) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def acquire(self, is_gone: IsGone | None = None) -> None:
        """Take a slot, waiting in line when all are taken.

        Raises ``QueueFullError`` when the line is full. A request that waited ``CHECK_AFTER_WAIT``
        seconds or more is checked with ``is_gone`` when its turn comes: if its client left, the
        slot passes on and ``ClientGoneError`` is raised. Checking at the turn, not while waiting,
        costs nothing per waiting request.
        """
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return
        if len(self._waiting) >= self.max_queue:
            raise QueueFullError
        loop = asyncio.get_running_loop()
        queued_at = loop.time()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived together with the disconnect or cancellation
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)
            raise
        if is_gone is not None and loop.time() - queued_at >= CHECK_AFTER_WAIT and await is_gone():
            self.release()
            raise ClientGoneError

    def release(self) -> None:
        """Give the slot to the next caller in line, or free it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1
