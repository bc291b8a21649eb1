"""Output encoding over real HTTP: numpy, torch and Python types become plain JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..conftest import launch_runtime


@pytest.fixture(scope="module")
def outputs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = launch_runtime(
        "tests/endpoints/outputs.py:Outputs", tmp_path_factory.mktemp("outputs") / "log", env={"GPUSERVE_HOME": ""}
    )
    assert server.wait_ready().status_code == 200, server.log()
    yield server.url
    server.stop()


def _output(url: str, kind: str) -> httpx.Response:
    return httpx.post(f"{url}/predict", json={"kind": kind}, timeout=30)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("np_float32", 1.5),
        ("np_mapping", {"p": 0.25, "k": 3}),
        ("np_array", [[1, 2], [3, 4]]),
        ("np_bool", True),
        ("np_float16_array", [0.5, 0.25]),
        ("pydantic", {"name": "cat", "score": 0.5}),
        ("dataclass", {"x": 1, "scores": [0.5]}),
        ("datetime", "2024-05-01T12:30:00+00:00"),
        ("date", "2024-05-01"),
        ("enum", "cat"),
        ("uuid", "12345678-1234-5678-1234-567812345678"),
        ("path", "/models/a.bin"),
        ("tuple_and_set", {"t": [1, 2], "s": [3]}),
    ],
)
def test_output_encoded(outputs_url: str, kind: str, expected: Any) -> None:
    response = _output(outputs_url, kind)
    assert response.status_code == 200, response.text
    assert response.json() == {"output": expected}


def test_numpy_numbers_are_plain_json(outputs_url: str) -> None:
    assert _output(outputs_url, "np_float32").text == '{"output":1.5}'
    assert _output(outputs_url, "np_mapping").text == '{"output":{"p":0.25,"k":3}}'


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("torch_matrix", [[1.0, 2.0]]),
        ("torch_scalar", 2.5),
        ("torch_int", [1, 2]),
        ("torch_bfloat16", [0.5, 1.5]),
        ("torch_requires_grad", [2.0]),
    ],
)
def test_torch_output_encoded(outputs_url: str, kind: str, expected: Any) -> None:
    pytest.importorskip("torch", reason="torch is installed by the examples extra")
    response = _output(outputs_url, kind)
    assert response.status_code == 200, response.text
    assert response.json() == {"output": expected}


def test_cuda_tensor_encoded(outputs_url: str) -> None:
    torch = pytest.importorskip("torch", reason="torch is installed by the examples extra")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    assert _output(outputs_url, "torch_cuda").json() == {"output": [[1.0, 2.0]]}


@pytest.mark.parametrize(
    ("kind", "fragments"),
    [
        ("unencodable", ["$.items[1].bad", "object"]),
        ("complex", ["$.z", "complex"]),
        ("nan", ["$.loss", "nan"]),
        ("bytes", ["$", "bytes"]),
    ],
)
def test_unencodable_output_is_500(outputs_url: str, kind: str, fragments: list[str]) -> None:
    response = _output(outputs_url, kind)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "output_encoding_error"
    for fragment in fragments:
        assert fragment in error["message"]
    assert _output(outputs_url, "np_float32").status_code == 200
