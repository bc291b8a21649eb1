"""A bounded load test on 127.0.0.1: 10,000 requests at concurrency 64, each checked for its own output."""

from __future__ import annotations

import asyncio
import time

import httpx

from ..conftest import ServeFactory

REQUESTS = 10_000
CONCURRENCY = 64
TIME_LIMIT = 180.0


async def _load(url: str) -> tuple[list[int], list[str]]:
    numbers = iter(range(REQUESTS))
    wrong: list[str] = []
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def worker() -> None:
            for number in numbers:
                response = await http.post(f"{url}/predict", json={"x": number, "note": f"n{number}"})
                statuses.append(response.status_code)
                if response.status_code != 200 or response.json() != {"output": number * number}:
                    wrong.append(f"x={number}: {response.status_code} {response.text[:200]}")

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), TIME_LIMIT)
    return statuses, wrong


def test_load_10000_requests_at_concurrency_64(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/serving.py:Square")
    assert server.wait_ready().status_code == 200, server.log()
    began = time.monotonic()
    statuses, wrong = asyncio.run(_load(server.url))
    took = time.monotonic() - began
    assert len(statuses) == REQUESTS
    assert wrong == [], wrong[:5]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert f'gpuserve_requests_total{{route="/predict",status="200"}} {REQUESTS}' in metrics
    assert "gpuserve_queue_depth 0" in metrics
    print(f"{REQUESTS} requests at concurrency {CONCURRENCY} in {took:.1f} s ({REQUESTS / took:.0f} req/s)")
