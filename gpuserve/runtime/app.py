"""The ASGI app that serves an endpoint: the same app runs inside every backend's container.

Routes (docs/http.md describes the bodies):
  POST /predict, POST /invocations   run predict; /invocations is SageMaker's name for it
  GET  /health                       200 when ready, 503 while starting, after a setup failure or when stopping
  GET  /ping                         SageMaker's health check, the same status codes without a body
  GET  /openapi.json                 OpenAPI 3.1 description of the inputs and outputs
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..encoding import encode_json
from ..envvars import AUTH_TOKEN_ENV
from ..errors import OutputEncodingError
from .host import FAILED, READY, STARTING, EndpointHost, NotReadyError
from .openapi import build_openapi

logger = logging.getLogger(__name__)

_JSON = "application/json"


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
    return _error(503, "stopping", "The endpoint is shutting down.", phase=report.phase)


def _unauthorized(request: Request, token: str | None) -> Response | None:
    """Return a 401 response unless the request carries ``token`` as a bearer token (or no token is set)."""
    if token is None:
        return None
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # compare_digest takes the same time wherever the strings differ, so timing reveals nothing of the token.
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return None
    return _error(
        401,
        "unauthorized",
        "Missing or invalid bearer token; send the deployment's token as 'Authorization: Bearer TOKEN'.",
        {"WWW-Authenticate": "Bearer"},
    )


def create_app(host: EndpointHost, *, start_setup: bool = True, token: str | None = None) -> Starlette:
    """Build the ASGI app for ``host``.

    With ``start_setup`` the app runs setup in the background at startup. With ``token``, every
    route but /health and /ping requires it as a bearer token; the default reads ``$GPUSERVE_AUTH_TOKEN``.
    """
    if token is None:
        token = os.environ.get(AUTH_TOKEN_ENV) or None

    async def predict(request: Request) -> Response:
        if (denied := _unauthorized(request, token)) is not None:
            return denied
        if host.phase != READY:
            return _not_ready(host)
        body = await request.body()
        if not body.strip():
            return _error(422, "invalid_input", "The request body is empty; send a JSON object of inputs, e.g. {}.")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return _error(422, "invalid_input", f"The request body is not valid JSON: {exc}.")
        try:
            inputs = host.validate(payload)
        except pydantic.ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False, include_input=False)
            problems = "; ".join(f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}" for e in details)
            return _error(422, "invalid_input", f"Invalid input: {problems}.", details=details)
        return await _run_predict(host, inputs)

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
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _run_predict(host: EndpointHost, inputs: dict[str, Any]) -> Response:
    began = time.perf_counter()
    try:
        output = await host.predict(inputs)
    except NotReadyError:
        return _not_ready(host)
    except asyncio.TimeoutError:
        logger.warning("predict of %s timed out after %.1f s", host.name, host.settings.timeout)
        return _error(
            504, "timeout", f"predict did not finish within the request timeout of {host.settings.timeout:g} s."
        )
    except Exception as exc:
        logger.exception("predict of %s raised %s", host.name, type(exc).__name__)
        return _error(500, "predict_error", f"{type(exc).__name__}: {exc}", type=type(exc).__name__)
    try:
        encoded = encode_json(output)
    except OutputEncodingError as exc:
        logger.error("predict of %s returned an output that cannot be encoded: %s", host.name, exc)
        return _error(500, "output_encoding_error", str(exc))
    logger.debug("predict of %s took %.4f s", host.name, time.perf_counter() - began)
    return Response(b'{"output":' + encoded + b"}", media_type=_JSON)
