"""Bearer-token authentication of the runtime, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

import gpuserve

from ..conftest import ServeFactory

TOKEN = "test-token-5b9d"


def test_requests_need_token(serve: ServeFactory) -> None:
    server = serve("examples/tiny.py:Echo", env={"GPUSERVE_AUTH_TOKEN": TOKEN})
    assert server.wait_ready().status_code == 200
    denied = httpx.post(f"{server.url}/predict", json={"text": "x"})
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    assert denied.headers["WWW-Authenticate"] == "Bearer"
    wrong = httpx.post(f"{server.url}/predict", json={"text": "x"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{server.url}/openapi.json").status_code == 401
    assert httpx.post(f"{server.url}/invocations", json={"text": "x"}).status_code == 401
    allowed = httpx.post(f"{server.url}/predict", json={"text": "x"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.json() == {"output": "x"}
    assert TOKEN not in server.log()


def test_health_stays_open(serve: ServeFactory) -> None:
    server = serve("examples/tiny.py:Echo", env={"GPUSERVE_AUTH_TOKEN": TOKEN})
    assert server.wait_ready().status_code == 200
    assert httpx.get(f"{server.url}/ping").status_code == 200


def test_client_sends_token(serve: ServeFactory) -> None:
    server = serve("examples/tiny.py:Echo", env={"GPUSERVE_AUTH_TOKEN": TOKEN})
    server.wait_ready()
    with gpuserve.Client(server.url, token=TOKEN) as client:
        assert client.predict(text="ok") == "ok"
    with gpuserve.Client(server.url) as client, pytest.raises(gpuserve.AuthenticationError) as info:
        client.predict(text="ok")
    assert info.value.status_code == 401
