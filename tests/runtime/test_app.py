"""The runtime's HTTP contract, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import RuntimeServer, ServeFactory, launch_runtime


@pytest.fixture(scope="module")
def typed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = launch_runtime(
        "tests/endpoints/typed.py:Typed", tmp_path_factory.mktemp("typed") / "log", env={"GPUSERVE_HOME": ""}
    )
    assert server.wait_ready().status_code == 200, server.log()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def raising_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = launch_runtime(
        "tests/endpoints/raising.py:Raising", tmp_path_factory.mktemp("raising") / "log", env={"GPUSERVE_HOME": ""}
    )
    assert server.wait_ready().status_code == 200, server.log()
    yield server.url
    server.stop()


def _predict(url: str, payload: object) -> httpx.Response:
    return httpx.post(f"{url}/predict", json=payload, timeout=30)


def test_typed_inputs_defaults(typed_url: str) -> None:
    response = _predict(typed_url, {"text": "hi"})
    assert response.status_code == 200
    output = response.json()["output"]
    assert output["count"] == 3
    assert output["ratio"] == 0.5
    assert output["flag"] is False
    assert output["tags"] == []
    assert output["weights"] is None
    assert output["note"] is None
    assert output["mode"] == "fast"
    assert output["color"] == "red"
    assert output["point"] is None


def test_typed_inputs_all_given(typed_url: str) -> None:
    payload = {
        "text": "hi",
        "count": 7,
        "ratio": 2,
        "flag": True,
        "tags": ["a", "b"],
        "weights": {"w": 0.5},
        "note": "n",
        "mode": "slow",
        "color": "blue",
        "point": {"x": 1.5},
    }
    output = _predict(typed_url, payload).json()["output"]
    assert output["count"] == 7
    assert output["ratio"] == 2.0
    assert output["tags"] == ["a", "b"]
    assert output["weights"] == {"w": 0.5}
    assert output["mode"] == "slow"
    assert output["color"] == "blue"
    assert output["color_type"] == "Color"
    assert output["point"] == {"x": 1.5, "y": 0.0}
    assert output["point_type"] == "Point"


@pytest.mark.parametrize(
    ("payload", "field", "error_type"),
    [
        ({}, "text", "missing"),
        ({"text": 5}, "text", "string_type"),
        ({"text": "a", "count": -1}, "count", "greater_than_equal"),
        ({"text": "a", "count": 101}, "count", "less_than_equal"),
        ({"text": "a", "mode": "medium"}, "mode", "literal_error"),
        ({"text": "a", "color": "green"}, "color", "enum"),
        ({"text": "a", "point": {"y": 1}}, "point", "missing"),
        ({"text": "a", "tags": "not-a-list"}, "tags", "list_type"),
        ({"text": "a", "txt": "typo"}, "txt", "extra_forbidden"),
    ],
)
def test_invalid_input_names_field(typed_url: str, payload: dict[str, object], field: str, error_type: str) -> None:
    response = _predict(typed_url, payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["message"]
    assert [d["loc"][0] for d in error["details"]] == [field]
    assert error["details"][0]["type"] == error_type


@pytest.mark.parametrize("body", [b"", b"   ", b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_body_is_422(typed_url: str, body: bytes) -> None:
    response = httpx.post(f"{typed_url}/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_openapi_describes_inputs(typed_url: str) -> None:
    document = httpx.get(f"{typed_url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) >= {"/predict", "/invocations", "/health"}
    schema = document["components"]["schemas"]["TypedInput"]
    assert schema["required"] == ["text"]
    count = schema["properties"]["count"]
    assert count["default"] == 3
    assert count["minimum"] == 0
    assert count["maximum"] == 100
    assert count["description"] == "How many."
    assert schema["properties"]["mode"]["enum"] == ["fast", "slow"]
    assert "Color" in document["components"]["schemas"]
    assert "Point" in document["components"]["schemas"]


def test_openapi_describes_output(typed_url: str) -> None:
    document = httpx.get(f"{typed_url}/openapi.json").json()
    ok = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["properties"]["output"]["type"] == "object"


def test_invocations_matches_predict(typed_url: str) -> None:
    response = httpx.post(f"{typed_url}/invocations", json={"text": "hi", "count": 1})
    assert response.status_code == 200
    assert response.json()["output"]["count"] == 1


def test_predict_exception_is_500(raising_url: str) -> None:
    response = _predict(raising_url, {"fail": True})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "predict_error"
    assert error["message"] == "ValueError: bad value for the model"
    assert _predict(raising_url, {}).json() == {"output": "ok"}


def test_timeout_is_504_and_server_stays_healthy(raising_url: str) -> None:
    began = time.monotonic()
    response = _predict(raising_url, {"sleep": 2.5})
    elapsed = time.monotonic() - began
    assert response.status_code == 504
    assert "1 s" in response.json()["error"]["message"]
    assert elapsed < 2.0
    assert httpx.get(f"{raising_url}/health").status_code == 200
    time.sleep(1.6)  # the timed-out call keeps the predict thread busy until its sleep ends
    assert _predict(raising_url, {}).status_code == 200


def test_setup_failure_reported(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/failing_setup.py:FailingSetup")
    health = server.wait_ready(timeout=30)
    assert health.status_code == 503
    assert health.json()["phase"] == "failed"
    assert health.json()["error"] == "RuntimeError: weights missing"
    began = time.monotonic()
    response = _predict(server.url, {})
    assert time.monotonic() - began < 2
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "setup_failed"
    assert "weights missing" in response.json()["error"]["message"]
    assert httpx.get(f"{server.url}/ping").status_code == 503
    assert "Traceback" in server.log()


def test_slow_setup_listens_at_once(serve: ServeFactory) -> None:
    server = serve("tests/endpoints/slow_setup.py:SlowSetup", env={"SLOW_SETUP_SECONDS": "10"})
    listening_after = server.wait_listening()
    assert listening_after < 5
    began = time.monotonic()
    phases = []
    while time.monotonic() - began < 30:
        response = httpx.get(f"{server.url}/health")
        phases.append((response.status_code, response.json()["phase"]))
        if response.status_code == 200:
            break
        time.sleep(0.2)
    assert phases[0] == (503, "starting")
    assert phases[-1] == (200, "ready")
    assert set(phases[:-1]) == {(503, "starting")}
    assert time.monotonic() - began > 8
    assert _predict(server.url, {}).json() == {"output": True}


def test_port_from_environment_with_long_setup(serve: ServeFactory) -> None:
    from ..conftest import free_port

    port = free_port()
    server = serve("tests/endpoints/slow_setup.py:SlowSetup", env={"PORT": str(port), "SLOW_SETUP_SECONDS": "360"})
    assert server.url.endswith(f":{port}")
    assert server.wait_listening() < 5
    for _ in range(5):
        response = httpx.get(f"{server.url}/health")
        assert response.status_code == 503
        assert response.json()["phase"] == "starting"
        assert response.json()["step"] == "setup"
        time.sleep(0.2)
    predict = _predict(server.url, {})
    assert predict.status_code == 503
    assert predict.headers["Retry-After"] == "1"


def test_sagemaker_serve_contract(serve: ServeFactory) -> None:
    server = serve("examples/tiny.py:Echo", "serve")
    assert server.url.endswith(":8080")
    server.wait_ready()
    ping = httpx.get(f"{server.url}/ping")
    assert ping.status_code == 200
    response = httpx.post(f"{server.url}/invocations", json={"text": "sm", "times": 2})
    assert response.json() == {"output": "sm sm"}


def test_async_predict_concurrent(serve: ServeFactory) -> None:
    import asyncio

    server = serve("tests/endpoints/async_predict.py:AsyncPredict")
    assert server.wait_ready().status_code == 200

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            responses = await asyncio.gather(*(client.post("/predict", json={"x": i}) for i in range(20)))
        return [r.json()["output"] for r in responses]

    assert asyncio.run(many()) == [2 * i for i in range(20)]


def test_sigterm_stops_server(serve: ServeFactory, tmp_path: Path) -> None:
    server: RuntimeServer = serve("examples/tiny.py:Echo")
    server.wait_ready()
    began = time.monotonic()
    exit_code = server.stop()
    assert time.monotonic() - began < 5
    assert exit_code == 0
