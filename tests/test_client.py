"""``Client`` and ``AsyncClient`` against a real HTTP server on 127.0.0.1 that plays an endpoint."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gpuserve.client import AsyncClient, Client
from gpuserve.errors import (
    AuthenticationError,
    ClientError,
    DeadlineExceededError,
    EndpointUnavailableError,
    InvalidInputError,
    PredictError,
)

TOKEN = "secret-token"
#: Number of 503 responses the "starting" scenario returns before it returns an output.
STARTING_REPLIES = 3
FIELD_ERRORS = [{"loc": ["times"], "msg": "Input should be a valid integer", "type": "int_parsing"}]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _reply(scenario: str, request: Request, attempt: int) -> Response:
    """Return the response of ``scenario`` to its ``attempt``-th predict request."""
    if scenario == "ok":
        return JSONResponse({"output": {"inputs": await request.json()}})
    if scenario == "auth":
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthorized", "Missing or invalid token.")
        return JSONResponse({"output": "welcome"})
    if scenario == "invalid":
        body = {"error": {"code": "invalid_input", "message": "Invalid input: times.", "details": FIELD_ERRORS}}
        return JSONResponse(body, status_code=422)
    if scenario == "crash":
        return _error(500, "predict_error", "ZeroDivisionError: division by zero")
    if scenario == "proxy-crash":
        return PlainTextResponse("Internal Server Error from the proxy", status_code=500)
    if scenario == "timeout":
        return _error(504, "timeout", "predict did not finish within the request timeout of 1 s.")
    if scenario == "starting" and attempt > STARTING_REPLIES:
        return JSONResponse({"output": "ready now"})
    if scenario in ("starting", "never-ready"):
        return _error(503, "starting", "The endpoint is starting (setup).")
    if scenario == "setup-failed":
        return _error(503, "setup_failed", "Setup failed: RuntimeError: no weights")
    if scenario == "no-output":
        return JSONResponse({"result": 1})
    return _error(404, "not_found", f"Unknown test scenario {scenario!r}.")


class FakeEndpoint:
    """A Starlette app served by uvicorn in a thread. Each URL from ``url`` counts its own requests."""

    def __init__(self) -> None:
        #: Path prefix of a URL from ``url`` -> the headers of each request it received.
        self.requests: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.base_url = ""
        routes = [
            Route("/{scenario}/{key}/predict", self._predict, methods=["POST"]),
            Route("/{scenario}/{key}/health", self._health, methods=["GET"]),
        ]
        self.app = Starlette(routes=routes)

    def url(self, scenario: str) -> str:
        """Return a fresh endpoint URL that behaves as ``scenario``."""
        return f"{self.base_url}/{scenario}/{uuid.uuid4().hex[:8]}"

    def requests_to(self, url: str) -> list[dict[str, str]]:
        return self.requests[url.removeprefix(self.base_url).rstrip("/")]

    async def _predict(self, request: Request) -> Response:
        prefix = f"/{request.path_params['scenario']}/{request.path_params['key']}"
        self.requests[prefix].append(dict(request.headers))
        return await _reply(request.path_params["scenario"], request, len(self.requests[prefix]))

    async def _health(self, request: Request) -> Response:
        if request.path_params["scenario"] == "ok":
            return JSONResponse({"phase": "ready", "error": None})
        return JSONResponse({"phase": "starting", "error": None}, status_code=503)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    uvicorn_server = uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started_by = time.monotonic() + 10
    while not uvicorn_server.started:
        assert time.monotonic() < started_by, "the test server did not start within 10 s"
        time.sleep(0.01)
    try:
        yield fake
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def closed_port_url() -> str:
    """Return a URL on 127.0.0.1 whose port nothing listens on, so connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class PredictCall(Protocol):
    def __call__(self, url: str, inputs: dict[str, Any] | None = None, **options: Any) -> Any: ...


def _predict_sync(url: str, inputs: dict[str, Any] | None = None, **options: Any) -> Any:
    with Client(url, **options) as client:
        return client.predict(**(inputs or {}))


def _predict_async(url: str, inputs: dict[str, Any] | None = None, **options: Any) -> Any:
    async def call() -> Any:
        async with AsyncClient(url, **options) as client:
            return await client.predict(**(inputs or {}))

    return asyncio.run(call())


@pytest.fixture(params=["sync", "async"])
def predict(request: pytest.FixtureRequest) -> PredictCall:
    """Call ``predict`` through ``Client`` or ``AsyncClient``, so each test covers both."""
    return _predict_sync if request.param == "sync" else _predict_async


def test_output_returned(server: FakeEndpoint, predict: PredictCall) -> None:
    output = predict(server.url("ok"), {"text": "hi", "times": 2})

    assert output == {"inputs": {"text": "hi", "times": 2}}


def test_inputs_sent_as_json(server: FakeEndpoint, predict: PredictCall) -> None:
    url = server.url("ok")

    predict(url, {"text": "hi"})

    headers = server.requests_to(url)[0]
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"


def test_trailing_slash_url(server: FakeEndpoint, predict: PredictCall) -> None:
    assert predict(server.url("ok") + "/", {"text": "hi"}) == {"inputs": {"text": "hi"}}


def test_token_sent_as_bearer(server: FakeEndpoint, predict: PredictCall) -> None:
    url = server.url("auth")

    assert predict(url, token=TOKEN) == "welcome"
    assert server.requests_to(url)[0]["authorization"] == f"Bearer {TOKEN}"


def test_no_token_no_header(server: FakeEndpoint, predict: PredictCall) -> None:
    url = server.url("ok")

    predict(url)

    assert "authorization" not in server.requests_to(url)[0]


def test_401_authentication_error(server: FakeEndpoint, predict: PredictCall) -> None:
    with pytest.raises(AuthenticationError) as caught:
        predict(server.url("auth"), token="wrong-token")

    assert caught.value.status_code == 401
    assert "Missing or invalid token." in str(caught.value)


def test_422_invalid_input(server: FakeEndpoint, predict: PredictCall) -> None:
    with pytest.raises(InvalidInputError) as caught:
        predict(server.url("invalid"), {"times": "x"})

    assert caught.value.status_code == 422
    assert caught.value.errors == FIELD_ERRORS
    assert "Invalid input: times." in str(caught.value)


def test_500_predict_error(server: FakeEndpoint, predict: PredictCall) -> None:
    with pytest.raises(PredictError) as caught:
        predict(server.url("crash"))

    assert caught.value.status_code == 500
    assert "ZeroDivisionError: division by zero" in str(caught.value)
    assert caught.value.body["error"]["code"] == "predict_error"


def test_500_plain_text_body(server: FakeEndpoint, predict: PredictCall) -> None:
    with pytest.raises(PredictError) as caught:
        predict(server.url("proxy-crash"))

    assert "Internal Server Error from the proxy" in str(caught.value)
    assert caught.value.body is None


def test_504_deadline_exceeded(server: FakeEndpoint, predict: PredictCall) -> None:
    with pytest.raises(DeadlineExceededError) as caught:
        predict(server.url("timeout"))

    assert caught.value.status_code == 504


def test_200_without_output(server: FakeEndpoint, predict: PredictCall) -> None:
    with pytest.raises(ClientError, match="200 without an output"):
        predict(server.url("no-output"))


def test_starting_retried(server: FakeEndpoint, predict: PredictCall) -> None:
    url = server.url("starting")

    assert predict(url, deadline=5) == "ready now"
    assert len(server.requests_to(url)) == STARTING_REPLIES + 1


def test_setup_failed_not_retried(server: FakeEndpoint, predict: PredictCall) -> None:
    url = server.url("setup-failed")

    with pytest.raises(EndpointUnavailableError) as caught:
        predict(url, deadline=5)

    assert caught.value.status_code == 503
    assert "Setup failed: RuntimeError: no weights" in str(caught.value)
    assert len(server.requests_to(url)) == 1


def test_never_ready_deadline(server: FakeEndpoint, predict: PredictCall) -> None:
    url = server.url("never-ready")
    began = time.monotonic()

    with pytest.raises(DeadlineExceededError) as caught:
        predict(url, deadline=0.5)

    assert time.monotonic() - began < 1.0
    assert "deadline of 0.5 s" in str(caught.value)
    assert len(server.requests_to(url)) > 1


def test_connection_refused_deadline(closed_port_url: str, predict: PredictCall) -> None:
    began = time.monotonic()

    with pytest.raises(DeadlineExceededError) as caught:
        predict(closed_port_url, deadline=1)

    elapsed = time.monotonic() - began
    assert elapsed > 0.4
    assert elapsed < 1.5
    assert "connection failed" in str(caught.value)
    assert isinstance(caught.value, TimeoutError)


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://127.0.0.1/", "", "localhost"])
@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_invalid_url(url: str, client_class: type[Client] | type[AsyncClient]) -> None:
    with pytest.raises(ValueError) as caught:
        client_class(url)

    assert repr(url) in str(caught.value)
    assert "http://127.0.0.1:8080" in str(caught.value)


def test_health_ready(server: FakeEndpoint) -> None:
    with Client(server.url("ok")) as client:
        assert client.health() == {"phase": "ready", "error": None}


def test_health_starting_body(server: FakeEndpoint) -> None:
    with Client(server.url("starting")) as client:
        assert client.health()["phase"] == "starting"


def test_async_health_starting_body(server: FakeEndpoint) -> None:
    async def health() -> dict[str, Any]:
        async with AsyncClient(server.url("starting")) as client:
            return await client.health()

    assert asyncio.run(health())["phase"] == "starting"


def test_nested_inputs_sent(server: FakeEndpoint, predict: PredictCall) -> None:
    inputs = {"texts": ["a", "b"], "top_k": 5, "options": {"normalize": True, "scale": None}}

    assert predict(server.url("ok"), inputs) == {"inputs": inputs}
