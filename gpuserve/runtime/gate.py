"""Per-instance admission: at most ``limit`` requests run at once, at most ``max_queue`` wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

#: Awaits the next ASGI message of a request; after the body it returns only ``http.disconnect``.
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class QueueFullError(Exception):
    """All slots are taken and ``max_queue`` requests already wait."""


class ClientGoneError(Exception):
    """The client disconnected while its request waited for a slot."""


async def wait_or_disconnect(waiter: asyncio.Future[Any], receive: Receive | None) -> None:
    """Wait for ``waiter``; raise ``ClientGoneError`` if the client disconnects first.

    ``waiter`` is left to the caller, which cancels or hands it back.
    """
    if receive is None:
        await asyncio.shield(waiter)
        return
    watcher = asyncio.ensure_future(receive())
    try:
        while not waiter.done():
            await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if waiter.done():
                return
            if watcher.result().get("type") == "http.disconnect":
                raise ClientGoneError
            watcher = asyncio.ensure_future(receive())
    finally:
        if not watcher.done():
            watcher.cancel()


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

    async def acquire(self, receive: Receive | None = None) -> None:
        """Take a slot, waiting in line when all are taken.

        Raises ``QueueFullError`` when the line is full, and ``ClientGoneError`` when ``receive``
        reports that the client left while waiting (its place in line is given up).
        """
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return
        if len(self._waiting) >= self.max_queue:
            raise QueueFullError
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await wait_or_disconnect(waiter, receive)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived together with the disconnect or cancellation
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)
            raise

    def release(self) -> None:
        """Give the slot to the next caller in line, or free it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1

