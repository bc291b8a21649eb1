"""Dynamic batching over real HTTP, and the checks of the batched decorator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import gpuserve
from gpuserve.testing import EndpointTestClient

from ..conftest import ServeFactory
from ..endpoints.batched import BatchAsync, BatchThreads


async def _post_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=len(bodies))) as http:
        return list(await asyncio.gather(*(http.post(f"{url}/predict", json=body) for body in bodies)))


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is missing from /metrics")


@pytest.fixture
def sqrt_url(serve: ServeFactory) -> Iterator[str]:
    server = serve("tests/endpoints/batched.py:BatchSqrt")
    assert server.wait_ready().status_code == 200, server.log()
    yield server.url


def test_invalid_item_fails_only_its_request(sqrt_url: str) -> None:
    responses = asyncio.run(_post_all(sqrt_url, [{"x": 4}, {"x": 9}, {"x": -1}, {"x": 16}]))
    assert [r.status_code for r in responses] == [200, 200, 422, 200]
    assert [r.json()["output"] for r in responses if r.status_code == 200] == [2.0, 3.0, 4.0]
    assert responses[2].json()["error"] == {"code": "invalid_input", "message": "x=-1.0 is negative; send x >= 0"}
    # The four arrived together: one call of 4 raised, then each item ran alone.
    assert _metric(sqrt_url, "gpuserve_batch_size_count") == 5
    assert _metric(sqrt_url, "gpuserve_batch_size_sum") == 8


def test_invalid_items_never_reach_batch(sqrt_url: str) -> None:
    responses = asyncio.run(_post_all(sqrt_url, [{"x": 1}, {"x": "one"}, {"x": 4}, {"y": 2}]))
    assert [r.status_code for r in responses] == [200, 422, 200, 422]
    assert responses[1].json()["error"]["details"][0]["loc"] == ["x"]
    assert _metric(sqrt_url, "gpuserve_batch_size_sum") == 2


def test_full_and_partial_batches(sqrt_url: str) -> None:
    responses = asyncio.run(_post_all(sqrt_url, [{"x": float(n * n)} for n in range(6)]))
    assert [r.json()["output"] for r in responses] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert _metric(sqrt_url, "gpuserve_batch_size_count") == 2  # 4 + 2


def test_returned_input_error_fails_alone(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/batched.py:BatchMarked")
    assert server.wait_ready().status_code == 200, server.log()
    responses = asyncio.run(_post_all(server.url, [{"x": n, "label": f"n{n}"} for n in range(4)]))
    assert [r.status_code for r in responses] == [200, 422, 200, 422]
    assert [responses[0].json()["output"], responses[2].json()["output"]] == ["n0=0", "n2=4"]
    assert responses[3].json()["error"]["message"] == "x=3 is odd; send an even x"


def test_wrong_output_count_gets_500(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/batched.py:BatchWrongLength")
    assert server.wait_ready().status_code == 200, server.log()
    responses = asyncio.run(_post_all(server.url, [{"x": 1}, {"x": 2}]))
    for response in responses:
        assert response.status_code == 500
        assert "one output per request" in response.json()["error"]["message"]


def test_async_batch_timeout_gets_504() -> None:
    with EndpointTestClient(BatchAsync) as client:
        slow = client.post("/predict", json={"x": 1, "seconds": 3})
        assert slow.status_code == 504
        assert client.predict(x=1, seconds=0) == 2


def test_sync_batches_on_one_thread() -> None:
    with EndpointTestClient(BatchThreads) as client:

        async def burst() -> list[Any]:
            loop = asyncio.get_running_loop()
            return list(
                await asyncio.gather(*(loop.run_in_executor(None, lambda n=n: client.predict(x=n)) for n in range(20)))
            )

        assert asyncio.run(burst()) == [n * 10 for n in range(20)]
        batches = client.host._instance.batches  # type: ignore[union-attr]
        assert {thread for thread, _ in batches} == {"gpuserve-predict_0"}
        assert sum(size for _, size in batches) == 20
        assert max(size for _, size in batches) > 1


def test_openapi_input_is_one_item() -> None:
    with EndpointTestClient(BatchThreads) as client:
        schema = client.get("/openapi.json").json()
        assert schema["components"]["schemas"]["BatchThreadsInput"]["properties"]["x"] == {
            "title": "X",
            "type": "integer",
        }
        output = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert output["properties"]["output"] == {"type": "integer"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_batch_size": 0}, "Invalid max_batch_size 0"),
        ({"max_batch_size": True}, "Invalid max_batch_size True"),
        ({"max_wait_ms": -1}, "Invalid max_wait_ms -1"),
        ({"max_wait_ms": float("nan")}, "Invalid max_wait_ms nan"),
    ],
)
def test_bad_batch_settings_rejected(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(gpuserve.ConfigError, match=message):
        gpuserve.batched(**arguments)


def test_batched_without_parentheses_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="with parentheses"):

        class Bare(gpuserve.Endpoint):
            @gpuserve.batched  # type: ignore[arg-type]
            def predict(self, x: list[int]) -> list[int]:
                return x


def test_batched_parameter_must_be_list() -> None:
    with pytest.raises(gpuserve.ConfigError, match="annotate it as list"):

        class NotList(gpuserve.Endpoint):
            @gpuserve.batched(max_batch_size=4)
            def predict(self, x: int) -> list[int]:
                return [x]


def test_batched_generator_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="cannot both stream and batch"):

        class Both(gpuserve.Endpoint):
            @gpuserve.batched(max_batch_size=4)
            def predict(self, x: list[int]) -> Iterator[int]:
                yield from x


def test_metrics_prometheus_format(tmp_path: Path) -> None:
    with EndpointTestClient(BatchThreads) as client:
        client.predict(x=1)
        response = client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.text
        assert 'gpuserve_requests_total{route="/predict",status="200"} 1' in text
        assert 'gpuserve_batch_size_bucket{le="1"} 1' in text
        assert "gpuserve_cold_starts_total 1" in text
