"""The ``Endpoint`` base class: settings and ``predict`` checked at class definition, names, volumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import gpuserve
from gpuserve import Endpoint, Scaling, Volume
from gpuserve.endpoint import default_name
from gpuserve.envvars import VOLUME_PATHS_ENV
from gpuserve.errors import ConfigError
from gpuserve.gpus import GPU


class Echo(Endpoint):
    gpu = "a100"
    scaling = Scaling(max_instances=3, idle_timeout=120)
    volumes = {"/models": Volume(name="weights")}

    def predict(self, text: str, times: int = 1) -> str:
        return " ".join([text] * times)


def test_unknown_gpu_rejected_at_definition() -> None:
    with pytest.raises(ConfigError) as caught:

        class BadGpu(Endpoint):
            gpu = "A1000"

    assert "'A1000'" in str(caught.value)
    assert "BadGpu" in str(caught.value)
    assert "L4" in str(caught.value)


def test_invalid_scaling_rejected_at_definition() -> None:
    with pytest.raises(ConfigError, match="Invalid scaling"):

        class BadScaling(Endpoint):
            scaling = {"idle_timeout": 5}  # type: ignore[assignment]


def test_invalid_timeout_rejected_at_definition() -> None:
    with pytest.raises(ConfigError, match="Invalid timeout -1"):

        class BadTimeout(Endpoint):
            timeout = -1


def test_var_positional_predict_rejected() -> None:
    with pytest.raises(ConfigError) as caught:

        class Star(Endpoint):
            def predict(self, *texts: str) -> str:
                return ""

    assert "Star.predict takes *texts" in str(caught.value)
    assert "named parameter" in str(caught.value)


def test_var_keyword_predict_rejected() -> None:
    with pytest.raises(ConfigError) as caught:

        class DoubleStar(Endpoint):
            def predict(self, **inputs: Any) -> str:
                return ""

    assert "DoubleStar.predict takes **inputs" in str(caught.value)


def test_positional_only_predict_rejected() -> None:
    with pytest.raises(ConfigError) as caught:

        class Slash(Endpoint):
            def predict(self, text: str, /) -> str:
                return text

    assert "positional-only parameter 'text'" in str(caught.value)
    assert "remove the '/'" in str(caught.value)


def test_keyword_only_predict_accepted() -> None:
    class KeywordOnly(Endpoint):
        def predict(self, *, text: str) -> str:
            return text

    assert KeywordOnly().predict(text="hi") == "hi"


def test_inherited_bad_predict_rejected() -> None:
    with pytest.raises(ConfigError, match="Child.predict takes"):

        class Child(Echo):
            def predict(self, *args: Any) -> str:  # type: ignore[override]
                return ""


def test_base_predict_not_implemented() -> None:
    class NoPredict(Endpoint):
        pass

    with pytest.raises(NotImplementedError, match="NoPredict must define predict"):
        NoPredict().predict()


def test_settings_from_class_attributes() -> None:
    settings = Echo.deployment_settings()

    assert settings.gpu == GPU("A100-40GB")
    assert settings.scaling.max_instances == 3
    assert list(settings.volumes) == ["/models"]


def test_settings_override_scaling_field() -> None:
    settings = Echo.deployment_settings(idle_timeout=5)

    assert settings.scaling.idle_timeout == 5
    assert settings.scaling.max_instances == 3


def test_settings_override_gpu() -> None:
    assert Echo.deployment_settings(gpu="H100:2").gpu == GPU("H100", 2)


def test_settings_override_leaves_class() -> None:
    Echo.deployment_settings(idle_timeout=5)

    assert Echo.deployment_settings().scaling.idle_timeout == 120


def test_settings_invalid_override() -> None:
    with pytest.raises(ConfigError) as caught:
        Echo.deployment_settings(idle_timeout=0)

    assert str(caught.value).startswith("Echo: ")
    assert "Invalid idle_timeout 0" in str(caught.value)


def test_settings_unknown_override() -> None:
    with pytest.raises(ConfigError) as caught:
        Echo.deployment_settings(idle_timout=5)

    assert "Unknown setting 'idle_timout'" in str(caught.value)
    assert "idle_timeout" in str(caught.value)


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("TextEmbed", "text-embed"),
        ("Echo", "echo"),
        ("Whisper2Large", "whisper2-large"),
        ("My_Model", "my-model"),
        ("LLM", "llm"),
    ],
)
def test_default_name(class_name: str, expected: str) -> None:
    assert default_name(type(class_name, (), {})) == expected


def test_volume_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VOLUME_PATHS_ENV, json.dumps({"/models": str(tmp_path)}))

    assert Echo().volume_path("/models") == tmp_path


def test_volume_path_trailing_slash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VOLUME_PATHS_ENV, json.dumps({"/models": str(tmp_path)}))

    assert Echo().volume_path("/models/") == tmp_path


def test_volume_path_unmapped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VOLUME_PATHS_ENV, json.dumps({"/models": str(tmp_path)}))

    assert Echo().volume_path("/data") == Path("/data")


def test_volume_path_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VOLUME_PATHS_ENV, raising=False)

    assert Echo().volume_path("/models") == Path("/models")


def test_volume_path_below_mount(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Reader(Endpoint):
        def predict(self) -> str:
            return ""

    monkeypatch.setenv("GPUSERVE_VOLUME_PATHS", json.dumps({"/models": str(tmp_path)}))
    assert Reader().volume_path("/models/llama/config.json") == tmp_path / "llama" / "config.json"
    assert Reader().volume_path("/models-old/x") == Path("/models-old/x")


def test_scaling_field_as_class_attribute_is_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match=r"write scaling = gpuserve.Scaling\(idle_timeout=5\)"):

        class Loose(gpuserve.Endpoint):
            idle_timeout = 5

            def predict(self) -> int:
                return 1


def test_misspelled_setting_warns() -> None:
    with pytest.warns(UserWarning, match="Typo.scailing is not a gpuserve setting.*did you mean scaling"):

        class Typo(gpuserve.Endpoint):
            scailing = gpuserve.Scaling(max_instances=2)

            def predict(self) -> int:
                return 1
