"""The front door of a local deployment: a small proxy on 127.0.0.1 that behaves like a cloud
load balancer in front of a scale-to-zero worker.

Run as ``python -m gpuserve.backends.local.frontdoor DEPLOYMENT_DIR``; the deploy starts it in
its own session so that it outlives the command that deployed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from ...auth import OPEN_PATHS, UNAUTHORIZED_MESSAGE, bearer_matches
from ...settings import Settings
from ...state import read_json
from .process import ProcessLauncher
from .scaler import READY, SCALED_TO_ZERO, Launcher, Scaler, StartFailedError

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Hop-by-hop headers are meaningful for one connection only (RFC 9110, section 7.6.1).
_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer"}
# The request body is forwarded whole, so httpx sets Host and Content-Length for the worker itself.
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length"}
# Only these paths start a worker that scaled to zero; the front door responds to the others itself.
_WAKING_PATHS = frozenset({"/predict", "/invocations", "/openapi.json"})


async def _send_json(
    send: Send, status: int, body: dict[str, Any] | None, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    content = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    headers += extra_headers or []
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class FrontDoor:
    """ASGI app that forwards every request to the worker, starting the worker when there is none."""

    def __init__(self, scaler: Scaler, start_at_launch: bool, token: str | None = None) -> None:
        self.scaler = scaler
        self.start_at_launch = start_at_launch
        self.token = token
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(None), limits=httpx.Limits(max_keepalive_connections=64))
        self._idle_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.scaler.write_state()
                if self.start_at_launch:
                    self.scaler.begin_start()
                self._idle_task = asyncio.create_task(self.scaler.run_idle_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._idle_task is not None:
                    self._idle_task.cancel()
                await self.scaler.close()
                await self._http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _authorized(self, scope: Scope) -> bool:
        """Check the token here, so that a request without it never wakes the worker."""
        if self.token is None or scope["path"] in OPEN_PATHS:
            return True
        header = next((value for key, value in scope["headers"] if key.lower() == b"authorization"), b"")
        return bearer_matches(header.decode("latin-1"), self.token)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._authorized(scope):
            await _send_json(
                send,
                401,
                {"error": {"code": "unauthorized", "message": UNAUTHORIZED_MESSAGE}},
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if scope["path"] not in _WAKING_PATHS and self.scaler.phase != READY:
            await self._answer_without_worker(scope["path"], send)
            return
        body = await _read_body(receive)
        try:
            worker_url = await self.scaler.acquire()
        except StartFailedError as exc:
            await _send_json(
                send,
                503,
                {"error": {"code": "setup_failed", "message": f"The worker could not start: {exc}", "phase": "failed"}},
            )
            return
        try:
            await self._proxy(worker_url, scope, body, receive, send)
        finally:
            self.scaler.release()

    async def _answer_without_worker(self, path: str, send: Send) -> None:
        """Respond to health checks, metrics scrapes and unknown paths here, so that they never start a worker."""
        phase = self.scaler.phase
        if path in ("/health", "/ping"):
            # A deployment at zero is healthy: the next request starts a worker.
            status = 200 if phase == SCALED_TO_ZERO else 503
            body = {"phase": phase, "step": None, "error": self.scaler.error} if path == "/health" else None
            await _send_json(send, status, body)
        elif path == "/metrics":
            message = f"No worker is running ({phase}), so there are no worker metrics; a /predict request starts one."
            await _send_json(send, 503, {"error": {"code": phase, "message": message}})
        else:
            await _send_json(send, 404, {"error": {"code": "not_found", "message": f"No route {path!r}."}})

    async def _proxy(self, worker_url: str, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"")
        url = worker_url + scope["path"] + (f"?{query.decode()}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _NOT_FORWARDED]
        request = self._http.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            self.scaler.worker_lost()
            await _send_json(
                send, 502, {"error": {"code": "worker_unavailable", "message": f"The worker did not answer: {exc}"}}
            )
            return
        try:
            response_headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": response_headers})
            relay = _relay(response, send)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await _until_disconnect(relay, receive)
            else:
                await relay
        finally:
            await response.aclose()


async def _relay(response: httpx.Response, send: Send) -> None:
    async for chunk in response.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _until_disconnect(relay: Awaitable[None], receive: Receive) -> None:
    """Run ``relay`` until it ends or the client disconnects, whichever comes first.

    On a disconnect the relay stops and the caller closes the worker's response, so the worker
    detects the disconnect and closes the generator that makes the stream.
    """
    relaying = asyncio.ensure_future(relay)

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watching = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({relaying, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relaying, watching):
            task.cancel()
    if relaying.done() and not relaying.cancelled():
        relaying.result()  # re-raise a failed relay


def _make_launcher(backend: str, config: dict[str, Any]) -> Launcher:
    if backend == "docker":
        from ..docker.launcher import DockerLauncher

        return DockerLauncher(config)
    return ProcessLauncher(config, sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m gpuserve.backends.local.frontdoor DEPLOYMENT_DIR")
    directory = Path(args[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request is noise
    record = read_json(directory / "deployment.json")
    settings = Settings.from_json(record["settings_json"])
    config = {
        **record["extra"],
        "reference": record["reference"],
        "settings_json": record["settings_json"],
        "token": record.get("token"),
    }

    import uvicorn

    # Port 0 lets the system pick a free port at bind time; choosing one earlier races with other processes.
    # IPPROTO_TCP must be explicit because asyncio sets TCP_NODELAY only on sockets whose proto is TCP.
    # Without it every response waits about 40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", int(config.get("port") or 0)))
    except OSError as exc:
        sys.exit(f"Cannot listen on 127.0.0.1:{config.get('port')}: {exc.strerror}; choose another port.")
    launcher = _make_launcher(record["backend"], config)
    scaler = Scaler(launcher, settings, directory / "state.json")
    scaler.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = FrontDoor(scaler, start_at_launch=True, token=record.get("token"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", access_log=False, log_level="info", lifespan="on"))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    main()
