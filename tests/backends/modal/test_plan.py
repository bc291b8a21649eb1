"""The Modal plan: gpuserve settings translated into the values Modal receives, checked offline."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

import pytest

import gpuserve
from gpuserve.backends.modal.plan import REFERENCE_ENV, ModalPlan, make_plan
from gpuserve.envvars import SETTINGS_ENV
from gpuserve.gpus import GPU_MEMORY_GIB
from gpuserve.settings import Settings

from .conftest import ECHO_REFERENCE, FAILING_REFERENCE, make_spec


def _plan(reference: str = ECHO_REFERENCE, **overrides: Any) -> ModalPlan:
    return make_plan(make_spec(reference, **overrides))


def _installed_requirements() -> tuple[str, ...]:
    """gpuserve's runtime requirements as pip installed them, without those of extras."""
    requirements = importlib.metadata.requires("gpuserve") or []
    return tuple(requirement for requirement in requirements if "extra ==" not in requirement)


def test_app_name_is_deployment_name() -> None:
    plan = make_plan(make_spec(name="text-echo"))
    assert plan.app_name == "text-echo"


def test_python_version_matches_deployer() -> None:
    assert _plan().python_version == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_no_gpu_by_default() -> None:
    assert _plan().gpu is None


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [
        ("A10G", "A10"),
        ("A10G:4", "A10:4"),
        ("A10", "A10"),
        ("H100:2", "H100:2"),
        ("H100:8", "H100:8"),
        ("L4", "L4"),
        ("A100", "A100-40GB"),
        ("A100-80GB:2", "A100-80GB:2"),
        ("RTX-PRO-6000", "RTX-PRO-6000"),
    ],
)
def test_gpu_mapping(gpu: str, expected: str) -> None:
    assert _plan(gpu=gpu).gpu == expected


@pytest.mark.parametrize("name", sorted(GPU_MEMORY_GIB))
def test_every_gpuserve_gpu_maps(name: str) -> None:
    plan = _plan(gpu=name)
    assert plan.gpu is not None
    assert plan.gpu.partition(":")[0] in {name, "A10"}


@pytest.mark.parametrize("gpu", ["A10G:5", "A10:8"])
def test_gpu_count_over_limit_rejected(gpu: str) -> None:
    with pytest.raises(gpuserve.ConfigError) as info:
        _plan(gpu=gpu)
    assert "at most 4 A10 GPUs" in str(info.value)
    assert f"{gpu.partition(':')[2]} were requested" in str(info.value)


@pytest.mark.parametrize("idle_timeout", [0.4, 1, 1.4, 3601, 86400])
def test_idle_timeout_outside_range_rejected(idle_timeout: float) -> None:
    with pytest.raises(gpuserve.ConfigError) as info:
        _plan(idle_timeout=idle_timeout)
    assert "2 to 3600 s" in str(info.value)
    assert f"idle_timeout={idle_timeout:g}" in str(info.value)


@pytest.mark.parametrize("idle_timeout", [2, 60, 3600])
def test_idle_timeout_in_range_accepted(idle_timeout: float) -> None:
    assert _plan(idle_timeout=idle_timeout).scaledown_window == idle_timeout


def test_idle_timeout_rounded_to_seconds() -> None:
    assert _plan(idle_timeout=59.6).scaledown_window == 60


@pytest.mark.parametrize("setting", ["timeout", "setup_timeout"])
def test_timeout_over_a_day_rejected(setting: str) -> None:
    overrides: dict[str, Any] = {setting: 24 * 3600 + 1}
    with pytest.raises(gpuserve.ConfigError) as info:
        _plan(**overrides)
    assert str(info.value).startswith(f"{setting}=86401 s exceeds")
    assert "86400 s (24 hours)" in str(info.value)


def test_timeout_of_a_day_accepted() -> None:
    plan = _plan(timeout=24 * 3600, setup_timeout=24 * 3600)
    assert plan.timeout == 86400
    assert plan.startup_timeout == 86400


def test_timeouts_in_whole_seconds() -> None:
    plan = _plan(timeout=12.4, setup_timeout=0.2)
    assert plan.timeout == 12
    assert plan.startup_timeout == 1


def test_secrets_split_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf-value")
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    plan = _plan(secrets=["HF_TOKEN", "DB_PASSWORD"])
    assert plan.secrets_from_environment == ("HF_TOKEN",)
    assert plan.secrets_from_modal == ("DB_PASSWORD",)


def test_secret_values_not_in_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf-secret-value-1234")
    plan = _plan(secrets=["HF_TOKEN"])
    assert "hf-secret-value-1234" not in repr(plan)


def test_named_volumes() -> None:
    plan = _plan(
        volumes={
            "/models": gpuserve.Volume(name="weights", read_only=True),
            "/cache": gpuserve.Volume(name="cache"),
        }
    )
    assert plan.volumes == {"/models": ("weights", True), "/cache": ("cache", False)}
    assert plan.local_dirs == {}


def test_local_dir_volumes_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    plan = _plan(
        volumes={
            "/data": gpuserve.Volume(local_dir="data"),
            "/weights": gpuserve.Volume(local_dir="~/weights", read_only=True),
            "/models": gpuserve.Volume(name="weights"),
        }
    )
    assert plan.local_dirs == {"/data": str(tmp_path / "data"), "/weights": str(tmp_path / "home" / "weights")}
    assert plan.volumes == {"/models": ("weights", False)}


def test_env_carries_reference_and_settings() -> None:
    spec = make_spec(gpu="L4", idle_timeout=120)
    plan = make_plan(spec)
    assert plan.env[REFERENCE_ENV] == "tiny:Echo"
    assert Settings.from_json(plan.env[SETTINGS_ENV]) == spec.settings


def test_env_keeps_image_env() -> None:
    plan = _plan(image=gpuserve.Image(env={"HF_HOME": "/models", REFERENCE_ENV: "other:Class"}))
    assert plan.env["HF_HOME"] == "/models"
    assert plan.env[REFERENCE_ENV] == "tiny:Echo"


@pytest.mark.parametrize(
    ("reference", "modules", "container_reference"),
    [
        ("examples/tiny.py:Echo", ("gpuserve", "tiny"), "tiny:Echo"),
        ("/srv/app/tiny.py:Echo", ("gpuserve", "tiny"), "tiny:Echo"),
        ("examples/tiny.py:Outer.Echo", ("gpuserve", "tiny"), "tiny:Outer.Echo"),
        ("tiny:Echo", ("gpuserve", "tiny"), "tiny:Echo"),
        ("myapp.serve:Echo", ("gpuserve", "myapp"), "myapp.serve:Echo"),
        ("gpuserve.testing:Echo", ("gpuserve",), "gpuserve.testing:Echo"),
    ],
)
def test_local_modules_for_reference(reference: str, modules: tuple[str, ...], container_reference: str) -> None:
    plan = make_plan(dataclasses.replace(make_spec(), reference=reference))
    assert plan.local_modules == modules
    assert plan.env[REFERENCE_ENV] == container_reference


def test_local_modules_for_dotted_reference() -> None:
    plan = _plan(FAILING_REFERENCE)
    assert plan.local_modules == ("gpuserve", "tests")
    assert plan.env[REFERENCE_ENV] == FAILING_REFERENCE


def test_python_packages_gpuserve_first() -> None:
    plan = _plan(image=gpuserve.Image(python_packages=["numpy<2", "torch==2.4.1"]))
    requirements = _installed_requirements()
    assert requirements
    assert plan.python_packages == (*requirements, "numpy<2", "torch==2.4.1")


def test_python_packages_without_extras() -> None:
    names = [requirement.split(">")[0].split("=")[0].strip() for requirement in _plan().python_packages]
    assert "pydantic" in names
    assert "modal" not in names
    assert "boto3" not in names


def test_wheel_folders_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    plan = _plan(image=gpuserve.Image(find_links=["wheels", "~/more-wheels", str(tmp_path / "abs")]))
    assert plan.wheel_folders == (
        str(tmp_path / "wheels"),
        str(tmp_path / "home" / "more-wheels"),
        str(tmp_path / "abs"),
    )


def test_base_image_and_system_packages() -> None:
    plan = _plan(image=gpuserve.Image(base_image="nvidia/cuda:12.4.1-runtime-ubuntu22.04", system_packages=["ffmpeg"]))
    assert plan.base_image == "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert plan.system_packages == ("ffmpeg",)


def test_scaling_defaults_of_example() -> None:
    plan = _plan()
    assert plan.min_containers == 0
    assert plan.max_containers == 1
    assert plan.max_inputs == 1
    assert plan.scaledown_window == 30


def test_scaling_from_settings() -> None:
    plan = _plan(scaling=gpuserve.Scaling(min_instances=1, max_instances=3, max_concurrency=4, idle_timeout=90))
    assert plan.min_containers == 1
    assert plan.max_containers == 3
    assert plan.max_inputs == 4
    assert plan.scaledown_window == 90
