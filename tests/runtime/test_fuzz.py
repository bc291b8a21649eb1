"""Property-based fuzzing of the runtime's own OpenAPI document with schemathesis: no 500, ever.

schemathesis reads /openapi.json from the ASGI app, generates valid and invalid requests for each
operation with hypothesis, and checks each response against the document: its status is listed,
its body matches the schema, and no request gets a 5xx.

One check is left out: ``negative_data_rejection``. Inputs are validated in pydantic's lax mode,
as FastAPI does. So ``false`` is accepted where a number is declared (as 0.0), and ``"3"`` where
an integer is, and schemathesis counts such coercions as invalid data accepted. The batched endpoint
also rejects odd numbers with 422 on purpose, so ``positive_data_acceptance`` is left out for it.
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance  # noqa: E402

from gpuserve.runtime.app import create_app  # noqa: E402
from gpuserve.runtime.host import EndpointHost  # noqa: E402

from ..endpoints.batched import BatchMarked  # noqa: E402
from ..endpoints.typed import Typed  # noqa: E402

_HEADERS = {"Authorization": "Bearer fuzz-token"}


def _schema_for(endpoint: type) -> Any:
    host = EndpointHost(endpoint, endpoint.deployment_settings(max_body_size=64 * 1024))  # type: ignore[attr-defined]
    host.start()
    app = create_app(host, start_setup=False, token="fuzz-token")

    async def without_lifespan(scope: Any, receive: Any, send: Any) -> None:
        # schemathesis runs the lifespan around each call; the app's shutdown would stop the host.
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await app(scope, receive, send)

    return schemathesis.openapi.from_asgi("/openapi.json", without_lifespan, headers=_HEADERS)


typed_schema = _schema_for(Typed)
batched_schema = _schema_for(BatchMarked)


def _check(case: Any, *excluded: Any) -> None:
    response = case.call(headers=_HEADERS)
    assert response.status_code < 500, (response.status_code, response.text)
    case.validate_response(response, excluded_checks=[negative_data_rejection, *excluded])


@typed_schema.parametrize()
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_typed_endpoint_never_answers_a_server_error(case: Any) -> None:
    _check(case)


@batched_schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_batched_endpoint_never_answers_a_server_error(case: Any) -> None:
    _check(case, positive_data_acceptance)
