"""Declaring that ``predict`` takes a batch: the ``batched`` decorator.

Example::

    class Embed(gpuserve.Endpoint):
        @gpuserve.batched(max_batch_size=32, max_wait_ms=5)
        def predict(self, text: list[str]) -> list[list[float]]:
            return self.model.encode(text).tolist()

Each request still sends one item (``{"text": "hello"}``). The runtime gathers concurrent
requests, calls ``predict`` once with a list per parameter, and returns each caller the output
at its position. The outer ``list`` of each annotation is the batch dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__gpuserve_batch__"


@dataclass(frozen=True)
class BatchConfig:
    """The limits on gathering requests into one ``predict`` call."""

    #: Maximum number of requests in one call.
    max_batch_size: int
    #: Maximum wait, in milliseconds, for more requests after the first one arrives.
    max_wait_ms: float


def batched(max_batch_size: int = 8, max_wait_ms: float = 10.0) -> Callable[[F], F]:
    """Mark ``predict`` as taking a batch of requests, up to ``max_batch_size`` gathered for ``max_wait_ms``.

    ``predict`` then receives a list for each parameter and returns a list with one output per
    request, in the same order. To reject one item, put a ``gpuserve.InputError`` at its
    position in the returned list; that request gets 422 and the others their outputs. When the
    whole call raises, the runtime calls ``predict`` again once per item, so that only the
    items that fail on their own get an error.
    """
    if callable(max_batch_size):
        raise ConfigError("Use @gpuserve.batched(...) with parentheses, for example @gpuserve.batched(max_batch_size=8).")
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ConfigError(f"Invalid max_batch_size {max_batch_size!r}; use a whole number of at least 1, such as 8.")
    if (
        isinstance(max_wait_ms, bool)
        or not isinstance(max_wait_ms, (int, float))
        or not 0 <= max_wait_ms < math.inf
    ):
        raise ConfigError(f"Invalid max_wait_ms {max_wait_ms!r}; use a number of milliseconds of 0 or more, such as 10.")
    config = BatchConfig(max_batch_size=max_batch_size, max_wait_ms=float(max_wait_ms))

    def mark(function: F) -> F:
        setattr(function, _ATTRIBUTE, config)
        return function

    return mark


def batch_config(function: object) -> BatchConfig | None:
    """Return the ``BatchConfig`` that ``batched`` attached to ``function``, if any."""
    config = getattr(function, _ATTRIBUTE, None)
    return config if isinstance(config, BatchConfig) else None
