"""Request arrival times: generated from requests per day and a daily shape, or read from a file.

Generated traffic is a Poisson process whose rate changes by the hour of the day, drawn from a
seeded generator, so the same ``Traffic`` always gives the same arrivals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import ConfigError

#: Share of a day's requests in each hour (0-23, on the simulated clock) for each shape.
SHAPES: dict[str, tuple[float, ...]] = {
    "flat": tuple([1 / 24] * 24),
    # 80 % of requests from 09:00 to 18:00, the rest spread over the other 15 hours.
    "business": tuple(0.8 / 9 if 9 <= hour < 18 else 0.2 / 15 for hour in range(24)),
    # 60 % of requests from 18:00 to 23:00, the rest spread over the other 19 hours.
    "evening": tuple(0.6 / 5 if 18 <= hour < 23 else 0.4 / 19 for hour in range(24)),
}


@dataclass(frozen=True)
class Traffic:
    """A traffic pattern: ``requests_per_day`` in a daily ``shape``, or the arrivals in ``timestamps_file``.

    Example: ``Traffic(requests_per_day=5000, shape="business")`` or
    ``Traffic(timestamps_file="requests.log")``, one ISO-8601 time or epoch second per line.
    """

    requests_per_day: float = 1000.0
    shape: str = "flat"
    timestamps_file: str | None = None
    #: Days of generated traffic. A timestamp file covers the whole days from its first to its last line.
    days: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        rate = self.requests_per_day
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < float("inf"):
            raise ConfigError(f"Invalid requests_per_day {rate!r}; use a number of zero or more, for example 5000.")
        if self.shape not in SHAPES:
            raise ConfigError(f"Unknown traffic shape {self.shape!r}; valid choices are {', '.join(SHAPES)}.")
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise ConfigError(f"Invalid days {self.days!r}; use a whole number of at least 1, for example 30.")
        if self.timestamps_file is not None and (self.requests_per_day != 1000.0 or self.days != 30):
            # shape stays allowed: the cost chart generates traffic of that shape for a replay.
            raise ConfigError(
                "Traffic takes timestamps_file or requests_per_day and days, not both, because the file's "
                "times are the traffic. Remove requests_per_day and days to replay the file, or "
                "timestamps_file to generate traffic."
            )

    def describe(self) -> str:
        """Return the pattern in words, for reports."""
        if self.timestamps_file is not None:
            return f"replayed from {self.timestamps_file}"
        return f"{self.requests_per_day:,.0f} requests/day, {self.shape} shape, {self.days} days, seed {self.seed}"


@dataclass(frozen=True)
class Arrivals:
    """Sorted arrival times in seconds from the start of the simulated period, and its length."""

    times: np.ndarray
    period_seconds: float


def arrivals(traffic: Traffic) -> Arrivals:
    """Return the arrival times of ``traffic``, generated or read from its file."""
    if traffic.timestamps_file is not None:
        return read_timestamps(traffic.timestamps_file)
    return generate(traffic.requests_per_day, traffic.shape, traffic.days, traffic.seed)


def generate(requests_per_day: float, shape: str, days: int, seed: int) -> Arrivals:
    """Draw Poisson arrivals with an hourly rate of ``requests_per_day`` times the shape's share.

    A unit-rate Poisson process is drawn as running sums of exponential gaps and mapped through
    the inverse of the cumulative rate, which is linear within each hour. That gives sorted
    arrivals without sorting, which matters at millions of requests.
    """
    rng = np.random.default_rng(seed)
    hourly = np.tile(np.asarray(SHAPES[shape]) * requests_per_day, days)
    expected = np.concatenate(([0.0], np.cumsum(hourly)))
    total = float(expected[-1])
    # Enough gaps to pass the expected total with near certainty, and the loop adds more when not.
    points = np.cumsum(rng.standard_exponential(int(total + 10 * math.sqrt(total) + 10)))
    while points[-1] < total:
        more = points[-1] + np.cumsum(rng.standard_exponential(int(total / 10) + 10))
        points = np.concatenate((points, more))
    points = points[points < total]
    hour_starts = np.arange(days * 24 + 1, dtype=np.float64) * 3600.0
    times = np.interp(points, expected, hour_starts)
    return Arrivals(times, days * 86400.0)


def read_timestamps(path: str | Path) -> Arrivals:
    """Read one arrival per line, as ISO-8601 or epoch seconds; blank lines and ``#`` comments are skipped.

    Times without a zone are taken as UTC. The period starts at midnight UTC of the first arrival
    and covers whole days, so daily patterns keep their hours.
    """
    try:
        with open(path, encoding="utf-8") as file:
            values = [_parse_line(line, number, path) for number, line in enumerate(file, start=1)]
    except OSError as exc:
        raise ConfigError(f"Cannot read the timestamp file {str(path)!r}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"The timestamp file {str(path)!r} is not UTF-8 text ({exc.reason}).") from None
    seconds = np.array([value for value in values if value is not None], dtype=np.float64)
    if seconds.size == 0:
        raise ConfigError(f"The timestamp file {str(path)!r} has no timestamps; write one per line.")
    seconds.sort()
    start = math.floor(seconds[0] / 86400.0) * 86400.0
    times = seconds - start
    days = max(1, math.ceil(float(times[-1]) / 86400.0 + 1e-9))
    return Arrivals(times, days * 86400.0)


def _parse_line(line: str, number: int, path: str | Path) -> float | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    try:
        value = float(text)
    except ValueError:
        return _parse_iso(text, number, path)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{path} line {number}: {text!r} is not a valid epoch time; use seconds since 1970, such as 1796376600."
        )
    return value


def _parse_iso(text: str, number: int, path: str | Path) -> float:
    # datetime.fromisoformat accepts a trailing "Z" only from Python 3.11 on.
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise ConfigError(
            f"{path} line {number}: {text!r} is neither an ISO-8601 time nor epoch seconds; "
            "write for example 2026-12-04T09:30:00Z or 1796376600."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
