"""Counters of one runtime process, rendered in the Prometheus text format on ``GET /metrics``."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    """Counts of observations per bucket, plus their sum; buckets are upper bounds."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def render(self, name: str) -> list[str]:
        lines = []
        running = 0
        for bound, count in zip(self.bounds, self.counts):
            running += count
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {running}')
        running += self.counts[-1]
        lines.append(f'{name}_bucket{{le="+Inf"}} {running}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {running}")
        return lines


class Metrics:
    """The counters ``/metrics`` reports: requests by route and status, latency, batches, queue and start-up."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency = Histogram(_LATENCY_BUCKETS)
        self.batch_sizes = Histogram(_BATCH_BUCKETS)
        #: Return the current queue depth and the requests in flight; set by the host.
        self.load: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def record(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency.observe(seconds)

    def render(self, *, ready: bool, import_seconds: float | None, setup_seconds: float | None,
               cold_start_seconds: float | None) -> str:
        queued, in_flight = self.load()
        lines = [
            "# HELP gpuserve_requests_total Requests answered, by route and HTTP status.",
            "# TYPE gpuserve_requests_total counter",
        ]
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'gpuserve_requests_total{{route="{route}",status="{status}"}} {count}')
        lines += [
            "# HELP gpuserve_request_duration_seconds Time from a request's arrival to its response.",
            "# TYPE gpuserve_request_duration_seconds histogram",
            *self.latency.render("gpuserve_request_duration_seconds"),
            "# HELP gpuserve_batch_size Requests per predict call of a batched endpoint.",
            "# TYPE gpuserve_batch_size histogram",
            *self.batch_sizes.render("gpuserve_batch_size"),
            "# HELP gpuserve_queue_depth Requests waiting for a free slot or a batch.",
            "# TYPE gpuserve_queue_depth gauge",
            f"gpuserve_queue_depth {queued}",
            "# HELP gpuserve_requests_in_flight Requests being served, queued ones included.",
            "# TYPE gpuserve_requests_in_flight gauge",
            f"gpuserve_requests_in_flight {in_flight}",
            "# HELP gpuserve_ready 1 when the endpoint serves requests, else 0.",
            "# TYPE gpuserve_ready gauge",
            f"gpuserve_ready {int(ready)}",
            "# HELP gpuserve_cold_starts_total Starts of this instance that reached the ready state.",
            "# TYPE gpuserve_cold_starts_total counter",
            f"gpuserve_cold_starts_total {int(cold_start_seconds is not None)}",
        ]
        for name, help_text, value in (
            ("gpuserve_import_seconds", "Seconds the import of the endpoint's module took.", import_seconds),
            ("gpuserve_setup_seconds", "Seconds the endpoint's setup took.", setup_seconds),
            ("gpuserve_cold_start_seconds", "Seconds from the process start to the ready state.", cold_start_seconds),
        ):
            if value is not None:
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:.6f}"]
        return "\n".join(lines) + "\n"
