"""Concurrency, queueing, timeouts and request limits over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpuserve.testing import EndpointTestClient

from ..conftest import RuntimeServer, ServeFactory
from ..endpoints.serving import SameThread, Square


def _ready(server: RuntimeServer) -> str:
    assert server.wait_ready().status_code == 200, server.log()
    return server.url


async def _post_all(url: str, bodies: list[dict[str, Any]], stagger: float = 0.0) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=len(bodies))) as http:

        async def post(index: int, body: dict[str, Any]) -> httpx.Response:
            await asyncio.sleep(index * stagger)
            return await http.post(f"{url}/predict", json=body)

        return list(await asyncio.gather(*(post(i, body) for i, body in enumerate(bodies))))


def test_sync_predict_serial_unless_thread_safe(serve: ServeFactory) -> None:
    stateful = _ready(serve("tests/endpoints/serving.py:Stateful"))
    responses = asyncio.run(_post_all(stateful, [{"x": n} for n in range(24)]))
    outputs = [r.json()["output"] for r in responses]
    assert [o["x"] for o in outputs] == list(range(24))  # state on self never mixed
    assert max(o["max_running"] for o in outputs) == 1

    threaded = _ready(serve("tests/endpoints/serving.py:ThreadSafe"))
    outputs = [r.json()["output"] for r in asyncio.run(_post_all(threaded, [{"x": n} for n in range(12)]))]
    assert max(o["max_running"] for o in outputs) == 4  # max_concurrency


def test_async_predict_concurrency_limit(serve: ServeFactory) -> None:
    url = _ready(serve("tests/endpoints/serving.py:AsyncCounter"))
    outputs = [r.json()["output"] for r in asyncio.run(_post_all(url, [{"x": n} for n in range(10)]))]
    assert [o["x"] for o in outputs] == list(range(10))
    assert max(o["max_running"] for o in outputs) == 2


def test_queue_full_gets_503(serve: ServeFactory) -> None:
    # One runs, max_queue (8) wait, the other 3 are turned away at once.
    url = _ready(serve("tests/endpoints/serving.py:Sleeper", env={"GPUSERVE_SETTINGS": ""}))
    began = time.monotonic()
    responses = asyncio.run(
        _post_all(url, [{"seconds": 0.0 if n else 0.5, "tag": str(n)} for n in range(12)], stagger=0.01)
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 9, statuses
    assert statuses.count(503) == 3, statuses
    rejected = [r for r in responses if r.status_code == 503]
    for response in rejected:
        assert response.headers["retry-after"] == "1"
        body = response.json()["error"]
        assert body["code"] == "queue_full"
        assert "max_queue" in body["message"]
    assert time.monotonic() - began < 3


def test_timeout_gets_504_and_server_stays_healthy(serve: ServeFactory) -> None:
    url = _ready(serve("tests/endpoints/serving.py:Sleeper"))
    began = time.monotonic()
    response = httpx.post(f"{url}/predict", json={"seconds": 5}, timeout=30)
    took = time.monotonic() - began
    assert response.status_code == 504
    assert 0.9 < took < 2.0, took
    assert response.json()["error"] == {
        "code": "timeout",
        "message": "predict did not finish within the request timeout of 1 s.",
    }
    assert httpx.get(f"{url}/health").status_code == 200
    # The next request is served: the sync call cannot be interrupted, so it waits for the
    # thread, and then its own timeout counts from its own start.
    response = httpx.post(f"{url}/predict", json={"seconds": 0.1, "tag": "next"}, timeout=30)
    assert response.status_code == 200
    assert response.json() == {"output": "next"}


def test_queued_request_of_gone_client_dropped(serve: ServeFactory, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    url = _ready(serve("tests/endpoints/serving.py:Sleeper", env={"CALL_LOG": str(calls)}))

    async def scenario() -> int:
        async with httpx.AsyncClient(timeout=30) as http:
            first = asyncio.ensure_future(http.post(f"{url}/predict", json={"seconds": 0.8, "tag": "first"}))
            await asyncio.sleep(0.2)
            # A raw connection sends the second request and closes while it waits in line.
            host, port = url.removeprefix("http://").split(":")
            body = b'{"seconds": 0, "tag": "gone"}'
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await asyncio.sleep(0.2)
            response = await first
            return response.status_code

    assert asyncio.run(scenario()) == 200
    assert httpx.post(f"{url}/predict", json={"tag": "third"}).status_code == 200
    assert calls.read_text().split() == ["first", "third"]


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_json_content_types_accepted(serve_square: str, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = httpx.post(f"{serve_square}/predict", content=b'{"x": 3}', headers=headers)
    assert response.status_code == 200
    assert response.json() == {"output": 9}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_other_content_types_get_415(serve_square: str, content_type: str) -> None:
    response = httpx.post(f"{serve_square}/predict", content=b'{"x": 3}', headers={"Content-Type": content_type})
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert content_type in error["message"]


def test_large_body_gets_413(serve_square: str) -> None:
    response = httpx.post(f"{serve_square}/predict", json={"x": 1, "note": "n" * 2000})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["limit"] == 1024
    assert error["setting"] == "max_body_size"
    assert "1024 bytes" in error["message"]
    assert "max_body_size" in error["message"]

    def chunks() -> Any:
        yield b'{"x": 1, "note": "'
        for _ in range(20):
            yield b"n" * 100
        yield b'"}'

    # Without a Content-Length (chunked), the limit applies while the body is read.
    assert httpx.post(f"{serve_square}/predict", content=chunks()).status_code == 413
    assert httpx.post(f"{serve_square}/predict", json={"x": 2}).json() == {"output": 4}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 422),
        (b"   ", 422),
        (b"{", 422),
        (b"\xff\xfe\x00", 422),
        (b"[1, 2]", 422),
        (b"null", 422),
        (b"[" * 100_000 + b"]" * 100_000, 413),
        (b'{"x": ' + b"9" * 5000 + b"}", 413),
    ],
)
def test_malformed_bodies_never_get_500(serve_square: str, body: bytes, status: int) -> None:
    response = httpx.post(f"{serve_square}/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in ("invalid_input", "body_too_large")


def test_deep_nesting_and_huge_numbers_get_422() -> None:
    with EndpointTestClient(Square, max_body_size=1_000_000) as client:
        for body in (
            b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            b'{"x": ' + b"9" * 5000 + b"}",
            b'{"x": 1e999}',
        ):
            response = client.post("/predict", content=body)
            assert response.status_code == 422, (body[:20], response.text)
            assert response.json()["error"]["code"] == "invalid_input"


@pytest.fixture
def serve_square(serve: ServeFactory) -> str:
    return _ready(serve("tests/endpoints/serving.py:Square"))


def test_sync_predict_on_setup_thread() -> None:
    # Per-thread state, such as torch.set_num_threads or the current CUDA device, then carries over.
    with EndpointTestClient(SameThread) as client:
        assert client.predict() is True
        assert client.predict() is True


def test_routing_errors_are_json() -> None:
    with EndpointTestClient(Square) as client:
        wrong_method = client.get("/predict")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "POST"
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"
        unknown = client.get("/nope")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"
