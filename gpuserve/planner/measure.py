"""Time an endpoint's ``setup`` and ``predict`` in this process, on this machine's hardware."""

from __future__ import annotations

import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..endpoint import Endpoint
from ..errors import ConfigError


@dataclass(frozen=True)
class Timing:
    """Measured seconds of one ``setup`` and the median of several ``predict`` calls."""

    setup_seconds: float
    work_seconds: float
    repeats: int
    #: Origin of the numbers, for reports: this machine's CPU or GPU.
    source: str


def measure_endpoint(endpoint: type[Endpoint], inputs: dict[str, Any], repeats: int = 5, **overrides: Any) -> Timing:
    """Run ``setup`` once and ``predict(**inputs)`` ``repeats + 1`` times; the first call is a warm-up.

    The endpoint runs in-process through ``EndpointTestClient``, so the times are those of this
    machine, which may have another GPU than the one the endpoint requests, or none.

    Example: ``measure_endpoint(Embed, {"text": "hello"}).work_seconds``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"Invalid repeats {repeats!r}; use a whole number of at least 1, for example 5.")
    from ..testing import EndpointTestClient

    client = EndpointTestClient(endpoint, **overrides)
    began = time.perf_counter()
    with client:
        setup_seconds = time.perf_counter() - began
        client.predict(**inputs)
        durations = []
        for _ in range(repeats):
            began = time.perf_counter()
            client.predict(**inputs)
            durations.append(time.perf_counter() - began)
    return Timing(setup_seconds, statistics.median(durations), repeats, f"measured on {_hardware()}")


def _hardware() -> str:
    """Return "this machine's GPU, NAME" when the endpoint imported torch and torch finds one, else its CPU."""
    # Importing torch only to name the hardware would add seconds for endpoints that never use it.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"this machine's GPU, {torch.cuda.get_device_name(0)}"
    return f"this machine's CPU, {platform.processor() or platform.machine()}"
