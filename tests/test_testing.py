"""The in-process test client users run under pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

import gpuserve
from gpuserve.testing import EndpointTestClient

from .endpoints.async_predict import AsyncPredict
from .endpoints.failing_setup import FailingSetup
from .endpoints.optional_text import OptionalText
from .endpoints.raising import Raising
from .endpoints.volume_reader import VolumeReader


def test_optional_text_defaults_to_none() -> None:
    with EndpointTestClient(OptionalText) as client:
        assert client.predict() == {"text": None, "text_is_none": True, "n": 3}
        assert client.predict(text=None) == {"text": None, "text_is_none": True, "n": 3}
        assert client.predict(text="None", n=1) == {"text": "None", "text_is_none": False, "n": 1}


def test_optional_text_schema_nullable() -> None:
    with EndpointTestClient(OptionalText) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["OptionalTextInput"]
    text = schema["properties"]["text"]
    assert {"type": "null"} in text["anyOf"]
    assert {"type": "string"} in text["anyOf"]
    assert text["default"] is None
    assert schema["properties"]["n"]["default"] == 3
    assert "required" not in schema


def test_setup_failure_raises_with_traceback() -> None:
    with pytest.raises(gpuserve.SetupFailedError, match="weights missing") as info:
        with EndpointTestClient(FailingSetup):
            pass
    assert info.value.traceback is not None
    assert "RuntimeError: weights missing" in info.value.traceback


def test_predict_errors_are_typed() -> None:
    with EndpointTestClient(Raising) as client:
        with pytest.raises(gpuserve.PredictError, match="ValueError: bad value"):
            client.predict(fail=True)
        with pytest.raises(gpuserve.InvalidInputError):
            client.predict(fail=[1])
        assert client.predict() == "ok"


def test_async_endpoint() -> None:
    with EndpointTestClient(AsyncPredict) as client:
        assert client.predict(x=21) == 42


def test_local_dir_volume_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READER_TOKEN", "abc")
    (tmp_path / "message.txt").write_text("mapped")
    volumes = {"/data": gpuserve.Volume(local_dir=str(tmp_path))}
    with EndpointTestClient(VolumeReader, volumes=volumes) as client:
        output = client.predict()
    assert output["message"] == "mapped"
    assert output["path"] == str(tmp_path / "message.txt")
    assert output["token_length"] == 3


def test_client_outside_context_raises() -> None:
    client = EndpointTestClient(OptionalText)
    with pytest.raises(RuntimeError, match="context manager"):
        client.predict()
