"""Generator predicts stream server-sent events, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

import gpuserve

from ..conftest import RuntimeServer, ServeFactory


def _start(serve: ServeFactory, tmp_path: Path, cls: str) -> tuple[RuntimeServer, Path]:
    log = tmp_path / "stream.log"
    server = serve(f"tests/endpoints/streaming.py:{cls}", env={"STREAM_LOG": str(log)})
    assert server.wait_ready().status_code == 200, server.log()
    return server, log


def _events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], fields["data"]))
    return events


def test_stream_items_become_output_events(serve: ServeFactory, tmp_path: Path) -> None:
    server, _ = _start(serve, tmp_path, "Letters")
    response = httpx.post(f"{server.url}/predict", json={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert _events(response.text) == [
        ("output", '"a"'),
        ("output", "[1,2]"),
        ("output", '"b"'),
        ("done", '{"items":3}'),
    ]
    with gpuserve.Client(server.url) as client:
        assert list(client.stream()) == ["a", [1, 2], "b"]
        assert client.predict() == ["a", [1, 2], "b"]  # predict collects a stream into a list


def test_stream_error_event_raises_in_client(serve: ServeFactory, tmp_path: Path) -> None:
    server, _ = _start(serve, tmp_path, "Boom")
    response = httpx.post(f"{server.url}/predict", json={})
    assert _events(response.text)[:2] == [("output", "1"), ("output", "2")]
    kind, data = _events(response.text)[2]
    assert kind == "error"
    assert "ValueError: boom" in data
    assert len(_events(response.text)) == 3

    received = []
    with gpuserve.Client(server.url) as client:
        with pytest.raises(gpuserve.StreamError, match="ValueError: boom") as caught:
            for item in client.stream():
                received.append(item)
        assert received == [1, 2]
        assert caught.value.body["error"]["code"] == "predict_error"
        assert list(client.stream(fail=False)) == [1, 2, 3]  # the next request succeeds
    assert "ValueError: boom" in server.log()


@pytest.mark.parametrize("cls", ["Ticker", "AsyncTicker"])
def test_stream_disconnect_closes_generator(serve: ServeFactory, tmp_path: Path, cls: str) -> None:
    server, log = _start(serve, tmp_path, cls)
    second: dict[str, float] = {}

    def waiting_request() -> None:
        time.sleep(0.3)  # arrives while the first stream runs; waits for its slot with the sync Ticker
        sent = time.monotonic()
        with httpx.stream("POST", f"{server.url}/predict", json={"count": 1, "tag": "second"}) as response:
            response.read()
        second["answered"] = time.monotonic() - sent
        second["closed_at"] = time.time()

    waiter = threading.Thread(target=waiting_request)
    received = []
    with httpx.Client() as http:
        with http.stream(
            "POST", f"{server.url}/predict", json={"count": 200, "interval": 0.05, "tag": "first"}
        ) as response:
            waiter.start()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received.append(int(line[6:]))
                if len(received) == 3:
                    break
            time.sleep(0.4)  # the waiting request is queued behind this stream now
            left_at = time.time()
    waiter.join(10)
    assert received == [0, 1, 2]

    lines = log.read_text().splitlines()
    closed_first = [float(line.split()[0]) for line in lines if line.endswith("closed first")]
    assert closed_first, lines
    # The generator's finally ran within about one item (50 ms) of the disconnect, not after 200 items.
    assert closed_first[0] - left_at < 0.5, (closed_first[0] - left_at, lines)
    assert any(line.endswith("closed second") for line in lines)
    # The waiting request started as soon as the slot came free.
    assert second["closed_at"] - left_at < 1.0, second


def test_error_before_first_item_is_json(serve: ServeFactory, tmp_path: Path) -> None:
    server, _ = _start(serve, tmp_path, "Picky")
    response = httpx.post(f"{server.url}/predict", json={"text": "a1"})
    assert response.status_code == 422
    assert "letters only" in response.json()["error"]["message"]
    with gpuserve.Client(server.url) as client:
        with pytest.raises(gpuserve.InvalidInputError, match="letters only"):
            list(client.stream(text="a1"))
        assert list(client.stream(text="ok")) == ["o", "k"]


def test_async_generator_error_event(serve: ServeFactory, tmp_path: Path) -> None:
    server, log = _start(serve, tmp_path, "AsyncTicker")
    with gpuserve.Client(server.url) as client:
        received = []
        with pytest.raises(gpuserve.StreamError, match="boom"):
            for item in client.stream(count=5, interval=0.0, fail_after=2, tag="x"):
                received.append(item)
        assert received == [0, 1]
        assert list(client.stream(count=3, interval=0.0)) == [0, 1, 2]
    assert "closed x" in log.read_text()


def test_async_client_stream(serve: ServeFactory, tmp_path: Path) -> None:
    server, _ = _start(serve, tmp_path, "Boom")

    async def collect() -> tuple[list[int], list[int]]:
        async with gpuserve.AsyncClient(server.url) as client:
            whole = [item async for item in client.stream(fail=False)]
            partial: list[int] = []
            with pytest.raises(gpuserve.StreamError, match="boom"):
                async for item in client.stream():
                    partial.append(item)
            return whole, partial

    assert asyncio.run(collect()) == ([1, 2, 3], [1, 2])
