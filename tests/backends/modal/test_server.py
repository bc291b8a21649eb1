"""The modal.App that a plan becomes, checked on the real modal objects, and the server class run locally.

Nothing here talks to Modal: the SDK builds its objects lazily, and the conftest makes any connection
attempt fail. Image steps are recorded by a stand-in for ``modal.Image``, because a real image keeps
its build steps in closures.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import modal
import pytest
from modal._partial_function import _find_partial_methods_for_user_cls, _PartialFunctionFlags
from modal_proto import api_pb2
from starlette.testclient import TestClient

import gpuserve
from gpuserve.backends.modal.plan import REFERENCE_ENV, ModalPlan, make_plan
from gpuserve.backends.modal.server import SERVER_CLASS, GpuserveServer, build_app, build_image, cls_options
from gpuserve.envvars import AUTH_TOKEN_ENV, SETTINGS_ENV

from .conftest import FAILING_REFERENCE, make_spec, raw_object, start_container

TOKEN = "test-token-0123456789"


def _plan(reference: str | None = None, **overrides: Any) -> ModalPlan:
    spec = make_spec(reference, **overrides) if reference else make_spec(**overrides)
    return make_plan(spec)


def _server_cls(app: modal.App) -> modal.Cls:
    """Return the app's one registered class."""
    # NOTE: modal 1.6.4 has no other public accessor, and registered_classes warns that 1.7.0 removes it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", modal.exception.DeprecationError)
        classes = dict(app.registered_classes)
    assert list(classes) == [SERVER_CLASS]
    return classes[SERVER_CLASS]


def _service_function(app: modal.App) -> Any:
    """Return the class service function (the raw ``_Function``) that serves every method of the class."""
    return raw_object(_server_cls(app)._get_class_service_function())


# --- the app and its class -------------------------------------------------------------------------


def test_app_named_after_deployment() -> None:
    app = build_app(make_plan(make_spec(name="text-echo")), TOKEN)
    assert isinstance(app, modal.App)
    assert app.name == "text-echo"


def test_registered_class_is_server() -> None:
    cls = _server_cls(build_app(_plan(), TOKEN))
    assert cls._get_user_cls() is GpuserveServer


def test_build_app_twice_keeps_apps_apart() -> None:
    first = _service_function(build_app(_plan(gpu="L4"), TOKEN))
    second = _service_function(build_app(_plan(gpu="H100:2"), TOKEN))
    assert first._spec.gpus == "L4"
    assert second._spec.gpus == "H100:2"


@pytest.mark.parametrize(
    ("gpu", "expected"), [(None, None), ("A10G", "A10"), ("A10G:2", "A10:2"), ("H100:2", "H100:2")]
)
def test_spec_gpus(gpu: str | None, expected: str | None) -> None:
    function = _service_function(build_app(_plan(gpu=gpu), TOKEN))
    assert function._spec.gpus == expected


def test_spec_volumes(tmp_path: Path) -> None:
    plan = _plan(
        volumes={
            "/models": gpuserve.Volume(name="weights", read_only=True),
            "/cache": gpuserve.Volume(name="hf-cache"),
            "/data": gpuserve.Volume(local_dir=str(tmp_path)),
        }
    )
    function = _service_function(build_app(plan, TOKEN))
    assert sorted(function._spec.volumes) == ["/cache", "/models"]
    for volume in function._spec.volumes.values():
        assert isinstance(volume, modal.volume._Volume)
    assert function._spec.volumes["/models"].name == "weights"
    assert function._spec.volumes["/cache"].name == "hf-cache"


def test_volume_read_only_flags() -> None:
    plan = _plan(
        volumes={"/models": gpuserve.Volume(name="weights", read_only=True), "/cache": gpuserve.Volume(name="c")}
    )
    mounts = _service_function(build_app(plan, TOKEN))._function_info.volumes
    assert mounts["/models"].read_only is True
    assert mounts["/cache"].read_only is False


def test_secrets_token_only() -> None:
    secrets = _service_function(build_app(_plan(), TOKEN))._spec.secrets
    assert len(secrets) == 1
    assert secrets[0]._keys == {AUTH_TOKEN_ENV}


def test_secrets_none_without_token() -> None:
    assert _service_function(build_app(_plan(), None))._spec.secrets == []


def test_secrets_environment_and_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf-value")
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    monkeypatch.delenv("API_KEY", raising=False)
    plan = _plan(secrets=["HF_TOKEN", "DB_PASSWORD", "API_KEY"])
    secrets = _service_function(build_app(plan, TOKEN))._spec.secrets
    assert len(secrets) == 3
    assert secrets[0]._keys == {"HF_TOKEN", AUTH_TOKEN_ENV}
    assert [repr(secret) for secret in secrets[1:]] == [
        "modal.Secret.from_name('DB_PASSWORD')",
        "modal.Secret.from_name('API_KEY')",
    ]


def test_secret_values_sent_to_modal(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, str | None]] = []
    from_dict = modal.Secret.from_dict

    def record(env_dict: dict[str, str | None]) -> modal.Secret:
        sent.append(dict(env_dict))
        return from_dict(env_dict)

    monkeypatch.setattr(modal.Secret, "from_dict", record)
    monkeypatch.setenv("HF_TOKEN", "hf-value")
    build_app(_plan(secrets=["HF_TOKEN"]), TOKEN)
    assert sent == [{"HF_TOKEN": "hf-value", AUTH_TOKEN_ENV: TOKEN}]


def test_timeouts_and_concurrency() -> None:
    plan = _plan(timeout=120, setup_timeout=900, max_concurrency=4)
    info = _service_function(build_app(plan, TOKEN))._function_info
    assert info.timeout == 120
    assert info.startup_timeout == 900
    assert info.concurrency_info.max_inputs == 4


def test_web_method_registered() -> None:
    info = _service_function(build_app(_plan(), TOKEN))._function_info
    assert info.method_names == ["web"]
    # Modal's proxy lets every request through, because the runtime checks the bearer token itself.
    assert info.method_details["web"].unauthenticated is True


def test_autoscaler_options() -> None:
    plan = _plan(min_instances=1, max_instances=5, idle_timeout=300)
    options = cls_options(plan, TOKEN)
    assert options["min_containers"] == 1
    assert options["max_containers"] == 5
    assert options["scaledown_window"] == 300
    assert options["timeout"] == plan.timeout
    assert options["startup_timeout"] == plan.startup_timeout


def test_enter_method_is_load() -> None:
    enter = _find_partial_methods_for_user_cls(GpuserveServer, _PartialFunctionFlags.ENTER_POST_SNAPSHOT)
    assert list(enter) == ["load"]


def test_no_snapshot_enter() -> None:
    # A pre-snapshot enter would need enable_memory_snapshot=True on app.cls.
    assert _find_partial_methods_for_user_cls(GpuserveServer, _PartialFunctionFlags.ENTER_PRE_SNAPSHOT) == {}


def test_web_is_asgi_endpoint() -> None:
    web = _find_partial_methods_for_user_cls(GpuserveServer, _PartialFunctionFlags.WEB_INTERFACE)
    assert list(web) == ["web"]
    assert web["web"].params.webhook_config is not None
    assert web["web"].params.webhook_config.type == api_pb2.WEBHOOK_TYPE_ASGI_APP


# --- image steps -------------------------------------------------------------------------------------


@dataclass
class RecordedImage:
    """Stands in for ``modal.Image``: records each build step and returns itself."""

    base: tuple[str, tuple[Any, ...], dict[str, Any]]
    steps: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def _record(self, step: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RecordedImage:
        self.steps.append((step, args, kwargs))
        return self

    def apt_install(self, *args: Any, **kwargs: Any) -> RecordedImage:
        return self._record("apt_install", args, kwargs)

    def pip_install(self, *args: Any, **kwargs: Any) -> RecordedImage:
        return self._record("pip_install", args, kwargs)

    def add_local_dir(self, *args: Any, **kwargs: Any) -> RecordedImage:
        return self._record("add_local_dir", args, kwargs)

    def env(self, *args: Any, **kwargs: Any) -> RecordedImage:
        return self._record("env", args, kwargs)

    def add_local_python_source(self, *args: Any, **kwargs: Any) -> RecordedImage:
        return self._record("add_local_python_source", args, kwargs)

    def step_names(self) -> list[str]:
        return [step[0] for step in self.steps]


def _build_image(plan: ModalPlan) -> RecordedImage:
    image = build_image(plan)
    assert isinstance(image, RecordedImage)
    return image


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> list[RecordedImage]:
    """Replace the two base-image constructors of ``modal.Image``; collect the images they return."""
    created: list[RecordedImage] = []

    def debian_slim(*args: Any, **kwargs: Any) -> RecordedImage:
        created.append(RecordedImage(("debian_slim", args, kwargs)))
        return created[-1]

    def from_registry(*args: Any, **kwargs: Any) -> RecordedImage:
        created.append(RecordedImage(("from_registry", args, kwargs)))
        return created[-1]

    monkeypatch.setattr(modal.Image, "debian_slim", staticmethod(debian_slim))
    monkeypatch.setattr(modal.Image, "from_registry", staticmethod(from_registry))
    return created


def test_image_default_steps(images: list[RecordedImage]) -> None:
    plan = _plan()
    image = _build_image(plan)
    assert images == [image]  # one base image, extended step by step
    assert image.base == ("debian_slim", (), {"python_version": plan.python_version})
    assert image.step_names() == ["pip_install", "env", "add_local_python_source"]


def test_image_pip_install(images: list[RecordedImage]) -> None:
    plan = _plan(image=gpuserve.Image(python_packages=["numpy<2"]))
    _, args, kwargs = _build_image(plan).steps[0]
    assert args == plan.python_packages
    assert args[-1] == "numpy<2"
    assert kwargs == {"extra_options": ""}


def test_image_env(images: list[RecordedImage]) -> None:
    plan = _plan(image=gpuserve.Image(env={"HF_HOME": "/models"}))
    env_steps = [step for step in _build_image(plan).steps if step[0] == "env"]
    assert env_steps == [("env", (plan.env,), {})]
    assert env_steps[0][1][0]["HF_HOME"] == "/models"
    assert env_steps[0][1][0][REFERENCE_ENV] == "tiny:Echo"
    assert SETTINGS_ENV in env_steps[0][1][0]


def test_image_base_from_registry(images: list[RecordedImage]) -> None:
    plan = _plan(image=gpuserve.Image(base_image="nvidia/cuda:12.4.1-runtime-ubuntu22.04"))
    image = _build_image(plan)
    assert image.base == (
        "from_registry",
        ("nvidia/cuda:12.4.1-runtime-ubuntu22.04",),
        {"add_python": plan.python_version},
    )


def test_image_system_packages_first(images: list[RecordedImage]) -> None:
    image = _build_image(_plan(image=gpuserve.Image(system_packages=["ffmpeg", "libgl1"])))
    assert image.steps[0] == ("apt_install", ("ffmpeg", "libgl1"), {})
    assert image.step_names() == ["apt_install", "pip_install", "env", "add_local_python_source"]


def test_image_wheel_folders(images: list[RecordedImage], tmp_path: Path) -> None:
    first, second = tmp_path / "wheels", tmp_path / "more"
    plan = _plan(image=gpuserve.Image(find_links=[str(first), str(second)]))
    image = _build_image(plan)
    assert image.steps[:3] == [
        ("add_local_dir", (str(first), "/gpuserve/wheels/0"), {"copy": True}),
        ("add_local_dir", (str(second), "/gpuserve/wheels/1"), {"copy": True}),
        (
            "pip_install",
            plan.python_packages,
            {"extra_options": "--find-links /gpuserve/wheels/0 --find-links /gpuserve/wheels/1"},
        ),
    ]


def test_image_local_dir_volume(images: list[RecordedImage], tmp_path: Path) -> None:
    plan = _plan(volumes={"/data": gpuserve.Volume(local_dir=str(tmp_path)), "/m": gpuserve.Volume(name="m")})
    image = _build_image(plan)
    assert image.step_names() == ["pip_install", "env", "add_local_dir", "add_local_python_source"]
    assert image.steps[2][1] == (str(tmp_path), "/data")


def test_image_local_source_last(images: list[RecordedImage], tmp_path: Path) -> None:
    plan = _plan(
        image=gpuserve.Image(system_packages=["ffmpeg"], find_links=[str(tmp_path)]),
        volumes={"/data": gpuserve.Volume(local_dir=str(tmp_path))},
    )
    image = _build_image(plan)
    assert image.steps[-1] == ("add_local_python_source", ("gpuserve", "tiny"), {})


def test_image_dotted_reference_source(images: list[RecordedImage]) -> None:
    image = _build_image(_plan(FAILING_REFERENCE))
    assert image.steps[-1] == ("add_local_python_source", ("gpuserve", "tests"), {})


# --- the server class, run locally as the container runs it ------------------------------------------


@pytest.fixture
def container_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set the image's environment of the tiny example, as Modal does in the container."""
    plan = _plan(timeout=42)
    for key, value in plan.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(AUTH_TOKEN_ENV, raising=False)
    yield monkeypatch


def test_container_reads_settings(container_env: pytest.MonkeyPatch) -> None:
    server = GpuserveServer()
    start_container(server)
    assert server.host.settings.timeout == 42
    assert server.host.settings.scaling.idle_timeout == 30


def test_container_predict(container_env: pytest.MonkeyPatch) -> None:
    with TestClient(start_container(GpuserveServer())) as client:
        response = client.post("/predict", json={"text": "hi", "times": 2, "style": "shout"})
    assert response.status_code == 200
    assert response.json() == {"output": "HI HI"}


def test_container_health(container_env: pytest.MonkeyPatch) -> None:
    with TestClient(start_container(GpuserveServer())) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["phase"] == "ready"


def test_container_requires_token(container_env: pytest.MonkeyPatch) -> None:
    container_env.setenv(AUTH_TOKEN_ENV, TOKEN)
    with TestClient(start_container(GpuserveServer())) as client:
        missing = client.post("/predict", json={"text": "hi"})
        wrong = client.post("/predict", json={"text": "hi"}, headers={"Authorization": "Bearer wrong"})
        right = client.post("/predict", json={"text": "hi"}, headers={"Authorization": f"Bearer {TOKEN}"})
        health = client.get("/health")
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert right.json() == {"output": "hi"}
    assert health.status_code == 200


def test_container_setup_failure(container_env: pytest.MonkeyPatch) -> None:
    for key, value in _plan(FAILING_REFERENCE).env.items():
        container_env.setenv(key, value)
    app = start_container(GpuserveServer())  # enter returns; the failure is reported over HTTP
    with TestClient(app) as client:
        predict = client.post("/predict", json={})
        health = client.get("/health")
    assert predict.status_code == 503
    assert predict.json()["error"]["code"] == "setup_failed"
    assert "weights missing" in predict.json()["error"]["message"]
    assert health.status_code == 503
    assert health.json()["phase"] == "failed"
