"""OpenAPI description of an endpoint, built from its input model and return annotation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..schema import output_schema

if TYPE_CHECKING:
    from .host import EndpointHost

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def build_openapi(host: EndpointHost) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of ``host``'s endpoint."""
    assert host.input_model is not None and host.endpoint_class is not None
    input_schema = host.input_model.model_json_schema(ref_template="#/components/schemas/{model}")
    components = input_schema.pop("$defs", {})
    components[host.input_model.__name__] = input_schema
    item = output_schema(host.endpoint_class.predict)
    if host.streams:
        success = {
            "description": "Server-sent events: one 'output' event per item (its data is the item as JSON), "
            "then 'done', or an 'error' event with an Error object.",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "x-item-schema": item}},
        }
    else:
        success = _json_response(
            "The output of predict.", {"type": "object", "properties": {"output": item}, "required": ["output"]}
        )
    components["Error"] = _ERROR_SCHEMA

    error_ref = {"$ref": "#/components/schemas/Error"}
    operation = {
        "summary": (host.endpoint_class.__doc__ or host.endpoint_class.__name__).strip().splitlines()[0],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{host.input_model.__name__}"}}},
        },
        "responses": {
            "200": success,
            "401": _json_response("The bearer token is missing or wrong.", error_ref),
            "413": _json_response("The body is larger than the max_body_size setting.", error_ref),
            "415": _json_response("The Content-Type is not JSON.", error_ref),
            "422": _json_response("The inputs failed validation; details lists each field.", error_ref),
            "500": _json_response("predict raised, or its output could not be encoded.", error_ref),
            "503": _json_response(
                "The endpoint is starting, failed setup, is shutting down, or its queue is full.", error_ref
            ),
            "504": _json_response("predict exceeded the request timeout.", error_ref),
        },
    }
    health = {"responses": {"200": {"description": "Ready."}, "503": {"description": "Starting, failed or stopping."}}}
    metrics = {
        "responses": {
            "200": {"description": "Counters in the Prometheus text format.", "content": {"text/plain": {}}},
            "401": _json_response("The bearer token is missing or wrong.", error_ref),
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": host.endpoint_class.__name__, "version": "1"},
        "paths": {
            "/predict": {"post": {**operation, "operationId": "predict"}},
            "/invocations": {"post": {**operation, "operationId": "invocations"}},
            "/health": {"get": {**health, "operationId": "health"}},
            "/metrics": {"get": {**metrics, "operationId": "metrics"}},
        },
        "components": {"schemas": components},
    }
