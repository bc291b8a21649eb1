"""The ASGI app that serves an endpoint: the same app runs inside every backend's container.

Routes (docs/http.md describes the bodies):
  POST /predict, POST /invocations   run predict; /invocations is SageMaker's name for it
  GET  /health                       200 when ready, 503 while starting, after a setup failure or when stopping
  GET  /ping                         SageMaker's health check, the same status codes without a body
  GET  /metrics                      counters in the Prometheus text format
  GET  /openapi.json                 OpenAPI 3.1 description of the inputs and outputs
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pydantic
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import UNAUTHORIZED_MESSAGE, bearer_matches
from ..encoding import encode_json
from ..envvars import AUTH_TOKEN_ENV
from ..errors import InputError, OutputEncodingError
from .batcher import BatchOutputError, PredictTimeoutError
from .gate import ClientGoneError, QueueFullError
from .host import FAILED, READY, STARTING, EndpointHost, NotReadyError
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .openapi import build_openapi
from .streaming import EventStreamResponse, event_body

logger = logging.getLogger(__name__)

_JSON = "application/json"
_PREDICT_PATHS = frozenset({"/predict", "/invocations"})
# Status 499 is what nginx logs for a client that closed the connection before the response. The client is
# gone, so the status only shows in the metrics.
_CLIENT_GONE = 499


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return Response(json.dumps(body), status_code=status, media_type=_JSON, headers=headers)


def _not_ready(host: EndpointHost) -> Response:
    report = host.report
    if report.phase == FAILED:
        return _error(503, "setup_failed", f"Setup failed: {report.error}", phase=FAILED)
    if report.phase == STARTING:
        return _error(
            503, "starting", f"The endpoint is starting ({report.step}).", {"Retry-After": "1"}, phase=STARTING
        )
    return _error(
        503,
        "stopping",
        "The endpoint is shutting down; retry on another instance.",
        {"Retry-After": "1"},
        phase=report.phase,
    )


def _unauthorized(request: Request, token: str | None) -> Response | None:
    """Return a 401 response unless the request carries ``token`` as a bearer token (or no token is set)."""
    if token is None or bearer_matches(request.headers.get("authorization"), token):
        return None
    return _error(401, "unauthorized", UNAUTHORIZED_MESSAGE, {"WWW-Authenticate": "Bearer"})


def _unsupported_media_type(request: Request) -> Response | None:
    """Accept JSON with or without a charset, and a missing Content-Type; refuse other types with 415."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if (
        not media_type
        or media_type == _JSON
        or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        return None
    return _error(
        415,
        "unsupported_media_type",
        f"Content-Type {content_type!r} is not supported; send a JSON object with 'Content-Type: application/json'.",
    )


def _too_large(limit: int) -> Response:
    return _error(
        413,
        "body_too_large",
        f"The request body is larger than the limit of {limit} bytes; send less, or raise the endpoint's "
        "max_body_size setting.",
        limit=limit,
        setting="max_body_size",
    )


async def _read_body(request: Request, limit: int) -> bytes | Response:
    """Return the body, or a 413 response as soon as it is known to pass ``limit`` bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(host: EndpointHost, *, start_setup: bool = True, token: str | None = None) -> ASGIApp:
    """Build the ASGI app for ``host``.

    With ``start_setup`` the app runs setup in the background at startup. With ``token``, every
    route but /health and /ping requires it as a bearer token; the default reads ``$GPUSERVE_AUTH_TOKEN``.
    """
    if token is None:
        token = os.environ.get(AUTH_TOKEN_ENV) or None
    metrics = host.metrics

    async def predict(request: Request) -> Response:
        began = time.perf_counter()
        response = await _predict(request)
        metrics.record(request.scope["path"], response.status_code, time.perf_counter() - began)
        return response

    async def _predict(request: Request) -> Response:
        if (denied := _unauthorized(request, token)) is not None:
            return denied
        if (refused := _unsupported_media_type(request)) is not None:
            return refused
        body = await _read_body(request, host.settings.max_body_size)
        if isinstance(body, Response):
            return body
        if host.phase != READY:
            return _not_ready(host)
        if not body.strip():
            return _error(422, "invalid_input", "The request body is empty; send a JSON object of inputs, e.g. {}.")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return _error(422, "invalid_input", f"The request body is not valid JSON: {exc}.")
        try:
            inputs = host.validate(payload)
        except pydantic.ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False, include_input=False)
            problems = "; ".join(f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}" for e in details)
            return _error(422, "invalid_input", f"Invalid input: {problems}.", details=details)
        except RecursionError:
            return _error(422, "invalid_input", "The request body is nested too deeply.")
        if host.streams:
            return await _run_stream(host, inputs, request)
        return await _run_predict(host, inputs, request)

    async def health(request: Request) -> Response:
        report = host.report
        body = {
            "phase": report.phase,
            "step": report.step,
            "error": report.error,
            "import_seconds": report.import_seconds,
            "setup_seconds": report.setup_seconds,
        }
        return Response(json.dumps(body), status_code=200 if report.phase == READY else 503, media_type=_JSON)

    async def ping(request: Request) -> Response:
        return Response(status_code=200 if host.phase == READY else 503)

    async def openapi(request: Request) -> Response:
        if (denied := _unauthorized(request, token)) is not None:
            return denied
        if host.input_model is None:
            return _not_ready(host)
        return Response(json.dumps(build_openapi(host)), media_type=_JSON)

    async def metrics_route(request: Request) -> Response:
        if (denied := _unauthorized(request, token)) is not None:
            return denied
        report = host.report
        cold_start = None if report.ready_at is None else report.ready_at - report.started_at
        text = metrics.render(
            ready=host.phase == READY,
            import_seconds=report.import_seconds,
            setup_seconds=report.setup_seconds,
            cold_start_seconds=cold_start,
        )
        return Response(text, media_type=METRICS_CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Setup starts in the background so that the port opens at once. Platforms then see
        # a live process whose health reports "starting" instead of a refused connection.
        if start_setup:
            host.start_background()
        yield
        host.shutdown()

    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/invocations", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # POST /predict is the path every request takes, so it skips Starlette's middleware and router,
        # which the other routes keep.
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in _PREDICT_PATHS:
            request = Request(scope, receive, send)
            try:
                response = await predict(request)
            except Exception:
                logger.exception("The request to %s failed", scope["path"])
                response = _error(500, "internal_error", "The server failed to handle the request; see its log.")
            await response(scope, receive, send)
            return
        await starlette(scope, receive, send)

    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Give routing errors (404 unknown path, 405 wrong method) the same JSON shape as the others."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}."
    return _error(exc.status_code, code, message, dict(exc.headers or {}))


def _queue_full(host: EndpointHost) -> Response:
    scaling = host.settings.scaling
    return _error(
        503,
        "queue_full",
        f"The endpoint is busy: {host.in_flight} requests are running or waiting, and the queue holds at most "
        f"{scaling.max_queue}; retry later, or raise max_queue, max_concurrency or max_instances.",
        {"Retry-After": "1"},
    )


def _timeout(host: EndpointHost) -> Response:
    logger.warning("predict of %s timed out after %g s", host.name, host.settings.timeout)
    return _error(504, "timeout", f"predict did not finish within the request timeout of {host.settings.timeout:g} s.")


def _predict_error(host: EndpointHost, exc: Exception) -> Response:
    if isinstance(exc, InputError):
        return _error(422, "invalid_input", str(exc))
    if isinstance(exc, BatchOutputError):
        logger.error("predict of %s: %s", host.name, exc)
        return _error(500, "predict_error", str(exc), type=type(exc).__name__)
    logger.error("predict of %s raised %s", host.name, type(exc).__name__, exc_info=exc)
    return _error(500, "predict_error", f"{type(exc).__name__}: {exc}", type=type(exc).__name__)


def _failure(host: EndpointHost, exc: Exception) -> Response:
    """Map an exception from admitting or running a predict call to its error response."""
    if isinstance(exc, NotReadyError):
        return _not_ready(host)
    if isinstance(exc, QueueFullError):
        return _queue_full(host)
    if isinstance(exc, ClientGoneError):
        return Response(status_code=_CLIENT_GONE)
    if isinstance(exc, PredictTimeoutError):
        return _timeout(host)
    return _predict_error(host, exc)


async def _run_predict(host: EndpointHost, inputs: dict[str, Any], request: Request) -> Response:
    try:
        output = await host.predict(inputs, request.is_disconnected)
    except Exception as exc:
        return _failure(host, exc)
    try:
        encoded = encode_json(output)
    except OutputEncodingError as exc:
        logger.error("predict of %s returned an output that cannot be encoded: %s", host.name, exc)
        return _error(500, "output_encoding_error", str(exc))
    return Response(b'{"output":' + encoded + b"}", media_type=_JSON)


async def _run_stream(host: EndpointHost, inputs: dict[str, Any], request: Request) -> Response:
    try:
        stream = await host.open_stream(inputs, request.is_disconnected)
    except Exception as exc:  # not admitted, or predict raised while creating its generator
        return _failure(host, exc)
    # The first item decides the status: an error before any item is a plain JSON error response.
    try:
        first = await stream.next()
    except BaseException as exc:
        stream.close()
        if isinstance(exc, Exception):
            return _failure(host, exc)
        raise
    return EventStreamResponse(event_body(stream, first), stream)
