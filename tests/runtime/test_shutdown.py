"""Graceful shutdown on SIGTERM: drain in-flight requests, reject new ones with 503, exit 0."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from ..conftest import ServeFactory


def test_sigterm_drains_and_rejects_new(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/serving.py:Draining")
    assert server.wait_ready().status_code == 200, server.log()
    result: dict[str, object] = {}

    def in_flight() -> None:
        response = httpx.post(f"{server.url}/predict", json={"seconds": 5}, timeout=30)
        result["status"], result["body"] = response.status_code, response.json()
        result["at"] = time.monotonic()

    caller = threading.Thread(target=in_flight)
    caller.start()
    time.sleep(1)
    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.3)

    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 503
    assert health.json()["phase"] == "stopping"
    rejected = httpx.post(f"{server.url}/predict", json={"seconds": 0})
    assert rejected.status_code == 503
    assert rejected.json()["error"]["code"] == "stopping"
    assert rejected.headers["retry-after"] == "1"

    caller.join(10)
    assert result["status"] == 200
    assert result["body"] == {"output": 5}
    assert server.process.wait(10) == 0
    exited = time.monotonic()
    assert exited - signalled < 10, "the process outlived its grace period"
    assert exited - float(result["at"]) < 2.5  # it exits soon after the last request, not at the end of the grace


def test_sigterm_when_idle_exits_at_once(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/serving.py:Draining")
    assert server.wait_ready().status_code == 200, server.log()
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    assert time.monotonic() - began < 2


def test_grace_period_bounds_wait(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/serving.py:Draining", env={"GPUSERVE_SETTINGS": _settings(shutdown_grace=1)})
    assert server.wait_ready().status_code == 200, server.log()
    caller = threading.Thread(target=lambda: _swallow(server.url))
    caller.start()
    time.sleep(0.5)
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    assert time.monotonic() - began < 4.5
    caller.join(10)
    assert "Shutting down with requests unfinished after 1 s (1)" in server.log()


def _swallow(url: str) -> None:
    try:
        httpx.post(f"{url}/predict", json={"seconds": 8}, timeout=30)
    except httpx.HTTPError:
        pass


def _settings(**overrides: object) -> str:
    from tests.endpoints.serving import Draining

    return Draining.deployment_settings(**overrides).to_json()
