"""The baseline for ``runtime_overhead.py``: a plain Starlette app that does Echo's work with no gpuserve.

It parses the same JSON body as ``examples/tiny.py:Echo`` ({"text": ..., "times": ...}), checks
the two fields by hand, repeats the text and returns {"output": ...}. It runs the work inline on
the event loop, with no input model, no predict thread and no readiness checks, so the difference
to the gpuserve runtime is the cost of those layers.

Serve it with ``python -m uvicorn bare_echo_app:app --app-dir benchmarks --port 8000``.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "invalid_input", "message": message}}, status_code=422)


async def predict(request: Request) -> Response:
    try:
        payload = json.loads(await request.body())
    except ValueError as exc:
        return _invalid(f"The request body is not valid JSON: {exc}.")
    if not isinstance(payload, dict):
        return _invalid("The request body must be a JSON object.")

    text = payload.get("text")
    times = payload.get("times", 1)
    if not isinstance(text, str):
        return _invalid("Invalid input: text must be a string.")
    if not isinstance(times, int) or not 1 <= times <= 10:
        return _invalid("Invalid input: times must be an integer from 1 to 10.")

    return JSONResponse({"output": " ".join([text] * times)})


async def health(request: Request) -> Response:
    return JSONResponse({"phase": "ready"})


app = Starlette(
    routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)
