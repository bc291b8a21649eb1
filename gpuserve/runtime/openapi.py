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
    output = {
        "type": "object",
        "properties": {"output": output_schema(host.endpoint_class.predict)},
        "required": ["output"],
    }
    components["Error"] = _ERROR_SCHEMA

    error_ref = {"$ref": "#/components/schemas/Error"}
    operation = {
        "summary": (host.endpoint_class.__doc__ or host.endpoint_class.__name__).strip().splitlines()[0],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{host.input_model.__name__}"}}},
        },
        "responses": {
            "200": _json_response("The output of predict.", output),
            "422": _json_response("The inputs failed validation; details lists each field.", error_ref),
            "500": _json_response("predict raised, or its output could not be encoded.", error_ref),
            "503": _json_response("The endpoint is starting, failed setup, or is shutting down.", error_ref),
            "504": _json_response("predict exceeded the request timeout.", error_ref),
        },
    }
    health = {"responses": {"200": {"description": "Ready."}, "503": {"description": "Starting, failed or stopping."}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": host.endpoint_class.__name__, "version": "1"},
        "paths": {
            "/predict": {"post": {**operation, "operationId": "predict"}},
            "/invocations": {"post": {**operation, "operationId": "invocations"}},
            "/health": {"get": {**health, "operationId": "health"}},
        },
        "components": {"schemas": components},
    }
