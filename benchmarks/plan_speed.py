"""Time ``gpuserve.plan`` on a month of generated traffic, for every provider in the price table.

Each case runs ``--repeats`` times (default 3) in this process after one untimed run, and the
table shows the fastest and the median wall time. Arrival generation is part of the timing.

    python benchmarks/plan_speed.py
    python benchmarks/plan_speed.py --requests-per-day 10000 --repeats 9
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import gpuserve
from gpuserve.planner import Traffic


class Embed(gpuserve.Endpoint):
    gpu = "L4"
    thread_safe = True  # so that max_concurrency=4 gives 4 slots per instance

    def predict(self, text: str) -> str:
        return text


#: (label, plan keyword arguments) for each case.
CASES = [
    ("defaults, flat, 0.2 s", {"shape": "flat", "work_seconds": 0.2}),
    ("defaults, business, 0.2 s", {"shape": "business", "work_seconds": 0.2}),
    ("defaults, evening, 0.05 s", {"shape": "evening", "work_seconds": 0.05}),
    ("max_concurrency=4, business, 0.5 s", {"shape": "business", "work_seconds": 0.5, "max_concurrency": 4}),
    ("min_instances=1, flat, 0.2 s", {"shape": "flat", "work_seconds": 0.2, "min_instances": 1}),
    ("max_instances=3, business, 0.5 s", {"shape": "business", "work_seconds": 0.5, "max_instances": 3}),
    # The slow case: Modal's 2 s window makes instances start and stop about 400,000 times a month.
    (
        "max_instances=3, idle_timeout=2, 0.5 s",
        {"shape": "business", "work_seconds": 0.5, "max_instances": 3, "idle_timeout": 2},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-day", type=float, default=100_000.0)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{args.requests_per_day:,.0f} requests/day for {args.days} days, all providers, {args.repeats} repeats\n")
    print(f"{'case':<38} {'requests':>10} {'fastest s':>10} {'median s':>10}")
    for label, options in CASES:
        shape = options.pop("shape")
        traffic = Traffic(requests_per_day=args.requests_per_day, shape=str(shape), days=args.days)
        report = gpuserve.plan(Embed, traffic, **options)  # untimed, to load numpy and warm the allocator
        durations = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            gpuserve.plan(Embed, traffic, **options)
            durations.append(time.perf_counter() - began)
        fastest, median = min(durations), statistics.median(durations)
        print(f"{label:<38} {report.simulated_requests:>10,} {fastest:>10.3f} {median:>10.3f}")


if __name__ == "__main__":
    main()
