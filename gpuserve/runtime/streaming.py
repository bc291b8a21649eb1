"""Streaming predicts: iterate a generator ``predict`` and send its items as server-sent events.

Each item is one event; docs/http.md describes the schema::

    event: output
    data: <the item as JSON>

    event: error
    data: {"error": {"code": "predict_error", "message": "ValueError: boom", "type": "ValueError"}}

    event: done
    data: {"items": 3}
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..encoding import encode_json
from ..errors import InputError, OutputEncodingError
from .batcher import PredictTimeoutError

logger = logging.getLogger(__name__)

#: Returned by ``ItemStream.next`` once the generator is exhausted.
END = object()


def _next_or_end(generator: Any) -> Any:
    return next(generator, END)


def event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def error_event(code: str, message: str, **extra: Any) -> bytes:
    return event("error", json.dumps({"error": {"code": code, "message": message, **extra}}).encode())


class ItemStream:
    """One generator ``predict`` call: its items, its time limit, and its closing.

    A sync generator advances on the predict executor, an async one on the event loop. ``close``
    closes the generator once (its ``finally`` blocks run) and then calls ``on_closed``.
    """

    def __init__(
        self,
        generator: Any,
        *,
        executor: Executor | None,
        timeout: float,
        on_closed: Callable[[], None],
    ) -> None:
        self._generator = generator
        self._executor = executor
        self._deadline = time.monotonic() + timeout
        self.timeout = timeout
        self._on_closed = on_closed
        self._in_flight: asyncio.Future[Any] | None = None
        self._closed = False

    async def next(self) -> Any:
        """Return the next item, or ``END``; raise the generator's exception or ``PredictTimeoutError``."""
        remaining = self._deadline - time.monotonic()
        if self._executor is None:
            try:
                return await asyncio.wait_for(self._generator.__anext__(), max(remaining, 0))
            except StopAsyncIteration:
                return END
            except asyncio.TimeoutError:
                raise PredictTimeoutError(None) from None
        step = asyncio.wrap_future(self._executor.submit(_next_or_end, self._generator))
        self._in_flight = step
        done, _ = await asyncio.wait({step}, timeout=max(remaining, 0))
        if not done:
            raise PredictTimeoutError(step)
        return step.result()

    def close(self) -> None:
        """Close the generator without waiting: after the step that runs now, when one does."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._executor is None:
            loop.create_task(self._close_async())
            return
        executor = self._executor

        def close_in_thread() -> None:
            try:
                self._generator.close()
            except Exception:
                logger.exception("Closing the predict generator raised")
            finally:
                loop.call_soon_threadsafe(self._on_closed)

        step = self._in_flight
        if step is not None and not step.done():
            step.add_done_callback(lambda _: executor.submit(close_in_thread))
            step.add_done_callback(_consume)
        else:
            executor.submit(close_in_thread)

    async def _close_async(self) -> None:
        try:
            await self._generator.aclose()
        except Exception:
            logger.exception("Closing the predict generator raised")
        finally:
            self._on_closed()


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # mark it retrieved; the caller already got its response


async def event_body(stream: ItemStream, first: Any) -> AsyncIterator[bytes]:
    """Yield ``first`` and the stream's later items as events, then ``done`` or an ``error`` event."""
    count = 0
    item = first
    try:
        while item is not END:
            try:
                data = encode_json(item)
            except OutputEncodingError as exc:
                logger.error("A streamed item cannot be encoded: %s", exc)
                yield error_event("output_encoding_error", str(exc))
                return
            yield event("output", data)
            count += 1
            try:
                item = await stream.next()
            except PredictTimeoutError:
                logger.warning("A streaming predict ran past the request timeout of %g s", stream.timeout)
                yield error_event("timeout", f"predict did not finish within the request timeout of {stream.timeout:g} s.")
                return
            except InputError as exc:
                yield error_event("invalid_input", str(exc))
                return
            except Exception as exc:
                logger.exception("A streaming predict raised %s after %d items", type(exc).__name__, count)
                yield error_event("predict_error", f"{type(exc).__name__}: {exc}", type=type(exc).__name__)
                return
        yield event("done", b'{"items":%d}' % count)
    finally:
        stream.close()


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that closes its item stream when the client leaves."""

    def __init__(self, body: AsyncIterator[bytes], stream: ItemStream) -> None:
        super().__init__(
            body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stream.close()
