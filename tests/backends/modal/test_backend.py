"""The Modal backend's deploy, status, logs and delete through ``gpuserve.deploy``, with Modal faked.

``FakeModalApi`` replaces the ``ModalApi`` seam. Its deploy checks the ``modal.App`` it receives,
then does what a Modal container would. It sets the image's environment and the values of the app's
secrets, runs the server class's enter and ASGI methods, and serves the ASGI app with uvicorn on
127.0.0.1. The "container" shares the test process, so its environment is the test's, changed with
monkeypatch until the test ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import modal
import modal.exception
import pytest
import uvicorn

import gpuserve
import gpuserve.backends
import gpuserve.backends.modal.backend as modal_backend
from gpuserve.backends.modal.plan import ModalPlan, make_plan
from gpuserve.backends.modal.server import SERVER_CLASS, GpuserveServer
from gpuserve.deployment import Deployment
from gpuserve.envvars import AUTH_TOKEN_ENV

from ...endpoints.volume_reader import VolumeReader
from .conftest import load_echo, raw_object, start_container

Echo = load_echo()

LOG_LINES = ["Echo is starting", "Echo is ready\n"]


@dataclasses.dataclass
class RunningServer:
    """A uvicorn server on 127.0.0.1 in a background thread."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str
    #: The server class instance whose ASGI app is served.
    container: GpuserveServer | None = None

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), f"the server at {self.url} did not stop"


@dataclasses.dataclass
class FakeModal:
    """The state shared by every ``FakeModalApi`` of one test, and what the test sets."""

    monkeypatch: pytest.MonkeyPatch
    credentials: bool = True
    deploy_error: BaseException | None = None
    stop_error: BaseException | None = None
    #: Replaces the served URL in deploy's return value, to test a missing web URL.
    url: str | None = None
    #: Put a stand-in for Modal's web proxy in front of the app, which returns 303 to every predict.
    redirect_predicts: bool = False
    calls: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    plans: list[ModalPlan] = dataclasses.field(default_factory=list)
    #: Each ``modal.Secret.from_dict`` object with the values it was given.
    secret_values: list[tuple[Any, dict[str, str]]] = dataclasses.field(default_factory=list)
    servers: dict[str, RunningServer] = dataclasses.field(default_factory=dict)

    def call_names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def stop_all(self) -> None:
        while self.servers:
            self.servers.popitem()[1].stop()


class FakeModalApi:
    """Stands in for ``ModalApi``: checks what the backend sends and serves the app on 127.0.0.1."""

    state: ClassVar[FakeModal]

    def credentials_present(self) -> bool:
        self.state.calls.append(("credentials_present",))
        return self.state.credentials

    def deploy(self, app: modal.App, name: str) -> tuple[str, str]:
        self.state.calls.append(("deploy", name))
        assert isinstance(app, modal.App)
        assert app.name == name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", modal.exception.DeprecationError)
            classes = dict(app.registered_classes)
        assert list(classes) == [SERVER_CLASS]
        if self.state.deploy_error is not None:
            raise self.state.deploy_error

        plan = self.state.plans[-1]
        assert plan.app_name == name
        if name in self.state.servers:  # Modal replaces the running app of the same name
            self.state.servers.pop(name).stop()
        service = raw_object(classes[SERVER_CLASS]._get_class_service_function())
        self._set_container_env(plan, service._spec.secrets)
        server = GpuserveServer()
        asgi = start_container(server)
        if self.state.redirect_predicts:
            asgi = ResultRedirectProxy(asgi)
        running = _serve(asgi, name)
        running.container = server
        self.state.servers[name] = running
        return "ap-fake", self.state.url if self.state.url is not None else running.url

    def exists(self, name: str) -> bool:
        self.state.calls.append(("exists", name))
        return name in self.state.servers

    def logs(self, name: str, entries: int) -> list[str]:
        self.state.calls.append(("logs", name, str(entries)))
        return LOG_LINES

    def stop(self, name: str) -> None:
        self.state.calls.append(("stop", name))
        if self.state.stop_error is not None:
            raise self.state.stop_error
        self.state.servers.pop(name).stop()

    def _set_container_env(self, plan: ModalPlan, secrets: list[Any]) -> None:
        """Set the image's env and the app's secret values, which Modal puts in the container's env."""
        for key, value in plan.env.items():
            self.state.monkeypatch.setenv(key, value)
        for secret, values in self.state.secret_values:
            if any(raw_object(secret) is attached for attached in secrets):
                for key, value in values.items():
                    self.state.monkeypatch.setenv(key, value)


class ResultRedirectProxy:
    """A stand-in for Modal's web proxy, which returns 303 once a request runs past its 150 s limit.

    Every POST /predict gets that 303. It points at the same URL with a ``__modal_function_call_id``
    query parameter, and a GET of that URL waits for the result (modal.com/docs/guide/webhook-timeouts).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: dict[str, asyncio.Task[list[dict[str, Any]]]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            await self.app(scope, receive, send)
            return
        query = scope["query_string"].decode()
        if scope["method"] == "POST":
            call_id = f"fc-{len(self.pending)}"
            body = await _read_body(receive)
            self.pending[call_id] = asyncio.ensure_future(self._forward(scope, body))
            location = f"/predict?__modal_function_call_id={call_id}".encode()
            await send({"type": "http.response.start", "status": 303, "headers": [(b"location", location)]})
            await send({"type": "http.response.body", "body": b""})
            return
        call_id = query.partition("__modal_function_call_id=")[2]
        for message in await self.pending.pop(call_id):
            await send(message)

    async def _forward(self, scope: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, send)
        return messages


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message: dict[str, Any] = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


def _serve(asgi: Any, name: str) -> RunningServer:
    """Serve ``asgi`` with uvicorn on a free port of 127.0.0.1; return once it accepts connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"fake-modal-{name}", daemon=True)
    thread.start()
    running = RunningServer(server, thread, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop()
            sock.close()
            raise AssertionError("uvicorn did not start within 10 s")
        time.sleep(0.01)
    return running  # uvicorn closes the socket when it shuts down


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    """Fail a test that leaves running a thread that started during the test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (left := _new_threads(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [thread.name for thread in left] == []


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModal]:
    """Replace the ModalApi seam with ``FakeModalApi``; record plans and secret values on the way."""
    state = FakeModal(monkeypatch)
    monkeypatch.setattr(FakeModalApi, "state", state, raising=False)
    monkeypatch.setattr(modal_backend, "ModalApi", FakeModalApi)

    def record_plan(spec: Any) -> ModalPlan:
        plan = make_plan(spec)
        state.plans.append(plan)
        return plan

    from_dict = modal.Secret.from_dict

    def record_secret(env_dict: dict[str, str | None]) -> modal.Secret:
        secret = from_dict(env_dict)
        state.secret_values.append((secret, {k: v for k, v in env_dict.items() if v is not None}))
        return secret

    monkeypatch.setattr(modal_backend, "make_plan", record_plan)
    monkeypatch.setattr(modal.Secret, "from_dict", record_secret)
    yield state
    state.stop_all()


def _deploy(endpoint: type[gpuserve.Endpoint] = Echo, **options: Any) -> Deployment:
    return gpuserve.deploy(endpoint, backend="modal", **options)


def _record_file(home: Path, name: str) -> Path:
    return home / "deployments" / name / "deployment.json"


# --- the whole flow ----------------------------------------------------------------------------------


def test_deploy_then_predict(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    assert deployment.url == fake.servers["echo-modal"].url
    assert deployment.predict(text="hi", times=2, style="shout") == "HI HI"


def test_deploy_calls_in_order(fake: FakeModal) -> None:
    _deploy(name="echo-modal")
    assert fake.calls == [("credentials_present",), ("deploy", "echo-modal")]


def test_deploy_record(fake: FakeModal, gpuserve_home: Path) -> None:
    deployment = _deploy(name="echo-modal", gpu="A10G:2")
    record = Deployment.get("echo-modal").record
    assert record.backend == "modal"
    assert record.reference == "tiny:Echo"
    assert record.url == deployment.url
    assert record.extra == {"app_id": "ap-fake", "app_name": "echo-modal", "gpu": "A10:2"}
    assert _record_file(gpuserve_home, "echo-modal").is_file()


def test_token_generated_and_sent(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    token = deployment.record.token
    assert token is not None
    assert len(token) >= 32
    assert [values[AUTH_TOKEN_ENV] for _, values in fake.secret_values] == [token]


def test_token_differs_per_deploy(fake: FakeModal) -> None:
    first = _deploy(name="echo-one")
    second = _deploy(name="echo-two")
    assert first.record.token != second.record.token


def test_request_without_token_rejected(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    response = httpx.post(f"{deployment.url}/predict", json={"text": "hi"})
    assert response.status_code == 401
    with gpuserve.Client(deployment.url) as client, pytest.raises(gpuserve.AuthenticationError):
        client.predict(text="hi")


def test_request_with_token_accepted(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    headers = {"Authorization": f"Bearer {deployment.record.token}"}
    response = httpx.post(f"{deployment.url}/predict", json={"text": "hi"}, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"output": "hi"}


def test_secret_reaches_container(fake: FakeModal, monkeypatch: pytest.MonkeyPatch, gpuserve_home: Path) -> None:
    monkeypatch.setenv("READER_TOKEN", "s3cr3t-value-1234")
    deployment = _deploy(VolumeReader, name="reader")
    assert fake.secret_values[0][1]["READER_TOKEN"] == "s3cr3t-value-1234"
    assert deployment.predict()["token_length"] == len("s3cr3t-value-1234")
    assert "s3cr3t-value-1234" not in _record_file(gpuserve_home, "reader").read_text()


def test_status_deployed(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal", gpu="L4")
    status = deployment.status()
    assert status["state"] == "deployed"
    assert status["url"] == deployment.url
    assert status["instances"] is None
    assert status["app_id"] == "ap-fake"
    assert status["gpu"] == "L4"


def test_status_stopped(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    fake.stop_all()
    assert deployment.status()["state"] == "stopped"


def test_logs_returns_lines(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    assert deployment.logs() == "Echo is starting\nEcho is ready\n"
    assert fake.calls[-1] == ("logs", "echo-modal", "100")


def test_logs_tail(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    deployment.logs(tail=5)
    assert fake.calls[-1] == ("logs", "echo-modal", "5")


def test_delete_stops_app(fake: FakeModal) -> None:
    deployment = _deploy(name="echo-modal")
    server = fake.servers["echo-modal"]
    deployment.delete()
    assert fake.calls[-1] == ("stop", "echo-modal")
    assert not server.thread.is_alive()
    assert gpuserve.list_deployments() == []
    with pytest.raises(gpuserve.DeploymentNotFoundError, match="echo-modal"):
        Deployment.get("echo-modal")


def test_delete_when_app_gone(fake: FakeModal, gpuserve_home: Path) -> None:
    deployment = _deploy(name="echo-modal")
    fake.stop_error = modal.exception.NotFoundError("App 'echo-modal' not found")
    deployment.delete()
    assert fake.calls[-1] == ("stop", "echo-modal")
    assert not _record_file(gpuserve_home, "echo-modal").exists()


def test_delete_failure_keeps_record(fake: FakeModal, gpuserve_home: Path) -> None:
    deployment = _deploy(name="echo-modal")
    fake.stop_error = modal.exception.ConnectionError("connection refused")
    with pytest.raises(gpuserve.BackendUnavailableError):
        deployment.delete()
    assert _record_file(gpuserve_home, "echo-modal").is_file()


def test_redeploy_replaces_app(fake: FakeModal) -> None:
    first = _deploy(name="echo-modal")
    second = _deploy(name="echo-modal")
    assert second.predict(text="b") == "b"
    with gpuserve.Client(second.url, token=first.record.token) as client, pytest.raises(gpuserve.AuthenticationError):
        client.predict(text="a")
    assert [deployment.name for deployment in gpuserve.list_deployments()] == ["echo-modal"]


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=5)
    except httpx.ConnectError:
        return False
    return True


def test_deploy_replaces_local_deployment(fake: FakeModal) -> None:
    local = gpuserve.deploy(Echo, name="echo-shared")
    try:
        _deploy(name="echo-shared")
        assert not _answers(local.url)
    finally:
        gpuserve.backends.get_backend("local").delete(local.record)


def test_predict_follows_result_redirect(fake: FakeModal) -> None:
    fake.redirect_predicts = True
    deployment = _deploy(name="echo-modal")
    assert deployment.predict(text="slow") == "slow"


# --- errors ------------------------------------------------------------------------------------------


def test_no_credentials_rejected(fake: FakeModal) -> None:
    fake.credentials = False
    began = time.monotonic()
    with pytest.raises(gpuserve.BackendUnavailableError) as info:
        _deploy(name="echo-modal")
    assert time.monotonic() - began < 1
    assert "modal token new" in str(info.value)
    assert "MODAL_TOKEN_ID" in str(info.value)


def test_no_credentials_no_record(fake: FakeModal, gpuserve_home: Path) -> None:
    fake.credentials = False
    with pytest.raises(gpuserve.BackendUnavailableError):
        _deploy(name="echo-modal")
    assert fake.call_names() == ["credentials_present"]
    assert gpuserve.list_deployments() == []
    assert not _record_file(gpuserve_home, "echo-modal").exists()


@pytest.mark.parametrize(
    ("modal_error", "gpuserve_error"),
    [
        (modal.exception.AuthError("token rejected"), gpuserve.BackendUnavailableError),
        (modal.exception.InvalidError("bad gpu"), gpuserve.ConfigError),
        (modal.exception.NotFoundError("no such secret"), gpuserve.DeploymentNotFoundError),
        (modal.exception.ConnectionError("cannot connect"), gpuserve.BackendUnavailableError),
        (modal.exception.ExecutionError("image build failed"), gpuserve.BackendError),
    ],
)
def test_deploy_error_translated(
    fake: FakeModal, modal_error: modal.exception.Error, gpuserve_error: type[Exception]
) -> None:
    fake.deploy_error = modal_error
    with pytest.raises(gpuserve_error) as info:
        _deploy(name="echo-modal")
    assert info.value.__cause__ is modal_error
    assert str(modal_error) in str(info.value)
    assert gpuserve.list_deployments() == []


def test_auth_error_names_fix(fake: FakeModal) -> None:
    fake.deploy_error = modal.exception.AuthError("token rejected")
    with pytest.raises(gpuserve.BackendUnavailableError) as info:
        _deploy(name="echo-modal")
    assert "modal token new" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"idle_timeout": 1}, "2 to 3600 s"),
        ({"idle_timeout": 7200}, "2 to 3600 s"),
        ({"gpu": "A10G:5"}, "at most 4 A10 GPUs"),
        ({"timeout": 90000}, "timeout=90000 s exceeds"),
    ],
)
def test_invalid_setting_rejected_before_modal(fake: FakeModal, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(gpuserve.ConfigError, match=message):
        _deploy(name="echo-modal", **overrides)
    assert fake.calls == []


def test_missing_local_dir_rejected(fake: FakeModal, tmp_path: Path) -> None:
    missing = str(tmp_path / "absent")
    with pytest.raises(gpuserve.ConfigError, match="is not a directory"):
        _deploy(name="echo-modal", volumes={"/data": gpuserve.Volume(local_dir=missing)})
    assert fake.calls == []


def test_url_missing_stops_app(fake: FakeModal, gpuserve_home: Path) -> None:
    fake.url = ""
    with pytest.raises(gpuserve.DeployError, match="without a web URL"):
        _deploy(name="echo-modal")
    assert fake.call_names() == ["credentials_present", "deploy", "stop"]
    assert not _record_file(gpuserve_home, "echo-modal").exists()


def test_progress_messages(fake: FakeModal) -> None:
    messages: list[str] = []
    deployment = _deploy(name="echo-modal", progress=messages.append)
    assert len(messages) == 2
    assert "echo-modal" in messages[0]
    assert messages[1].endswith(deployment.url)


def test_settings_reach_container(fake: FakeModal) -> None:
    _deploy(name="echo-modal", timeout=42, max_concurrency=3)
    container = fake.servers["echo-modal"].container
    assert container is not None
    settings = container.host.settings
    assert settings.timeout == 42
    assert settings.scaling.max_concurrency == 3
