"""Generator predicts, sync and async, for the streaming tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy

import gpuserve


def _note(line: str) -> None:
    """Append ``line`` to $STREAM_LOG, where the tests read when a generator ended."""
    with Path(os.environ["STREAM_LOG"]).open("a") as log:
        log.write(f"{time.time():.3f} {line}\n")


class Letters(gpuserve.Endpoint):
    """Yields "a", a numpy array and "b"."""

    def predict(self) -> Iterator[Any]:
        yield "a"
        yield numpy.array([1, 2])
        yield "b"


class Boom(gpuserve.Endpoint):
    """Yields two items, then raises ValueError("boom") when ``fail`` is set."""

    def predict(self, fail: bool = True) -> Iterator[int]:
        yield 1
        yield 2
        if fail:
            raise ValueError("boom")
        yield 3


class Ticker(gpuserve.Endpoint):
    """Yields ``count`` numbers ``interval`` seconds apart, and logs when its generator ends."""

    def predict(self, count: int = 200, interval: float = 0.05, tag: str = "") -> Iterator[int]:
        _note(f"start {tag}")
        try:
            for number in range(count):
                yield number
                time.sleep(interval)
        finally:
            _note(f"closed {tag}")


class AsyncTicker(gpuserve.Endpoint):
    """The async twin of ``Ticker``; ``fail_after`` raises after that many items."""

    scaling = gpuserve.Scaling(max_concurrency=4)

    async def predict(
        self, count: int = 200, interval: float = 0.05, tag: str = "", fail_after: int = -1
    ) -> AsyncIterator[int]:
        _note(f"start {tag}")
        try:
            for number in range(count):
                if number == fail_after:
                    raise ValueError("boom")
                yield number
                await asyncio.sleep(interval)
        finally:
            _note(f"closed {tag}")


class Picky(gpuserve.Endpoint):
    """Rejects its input before the first item, or streams it back letter by letter."""

    def predict(self, text: str) -> Iterator[str]:
        if not text.isalpha():
            raise gpuserve.InputError(f"text {text!r} has characters other than letters; send letters only")
        yield from text
