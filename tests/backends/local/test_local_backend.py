"""The local backend: deploy, cold starts, scale to zero, failures and cleanup, over real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import gpuserve
from gpuserve.deployment import Deployment

from ...conftest import REPO, wait_for
from ...endpoints.failing_setup import FailingSetup
from ...endpoints.raising import Raising
from ...endpoints.slow_setup import SlowSetup
from ...endpoints.volume_reader import VolumeReader

sys.path.insert(0, str(REPO / "examples"))
from tiny import Echo  # noqa: E402


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())  # empty for a zombie
    except FileNotFoundError:
        return False


def test_deploy_predict_status(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-basic")
    deployments.append(deployment)
    assert deployment.url.startswith("http://127.0.0.1:")
    assert deployment.predict(text="hi", times=2, style="shout") == "HI HI"
    status = deployment.status()
    assert status["state"] == "ready"
    assert status["instances"] == 1
    assert status["cold_starts"] == 1
    assert status["last_cold_start_seconds"] > 0


def test_scale_to_zero_cycle(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-idle", idle_timeout=1)
    deployments.append(deployment)
    assert deployment.predict(text="warm") == "warm"
    worker_pid = deployment.status()["worker_pid"]
    assert _alive(worker_pid)

    wait_for(lambda: deployment.status()["state"] == "scaled_to_zero", timeout=10)
    status = deployment.status()
    assert status["instances"] == 0
    assert status["worker_pid"] is None
    wait_for(lambda: not _alive(worker_pid), timeout=5)

    began = time.monotonic()
    assert deployment.predict(text="cold") == "cold"
    cold_seconds = time.monotonic() - began
    status = deployment.status()
    assert status["state"] == "ready"
    assert status["cold_starts"] == 2
    assert status["worker_pid"] != worker_pid
    assert 0 < status["last_cold_start_seconds"] <= cold_seconds
    assert "Scaled to zero" in deployment.logs()


def test_requests_keep_worker_warm(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-warm", idle_timeout=1.5)
    deployments.append(deployment)
    for _ in range(8):
        deployment.predict(text="x")
        time.sleep(0.4)
    assert deployment.status()["cold_starts"] == 1


def test_min_instances_never_scales_to_zero(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-min", idle_timeout=0.5, min_instances=1)
    deployments.append(deployment)
    time.sleep(1.5)
    assert deployment.status()["state"] == "ready"
    assert deployment.status()["cold_starts"] == 1


def test_setup_failure_fails_deploy_fast(gpuserve_home: Path) -> None:
    began = time.monotonic()
    with pytest.raises(gpuserve.SetupFailedError) as info:
        gpuserve.deploy(FailingSetup, name="broken")
    assert time.monotonic() - began < 15
    assert "weights missing" in str(info.value)
    assert info.value.traceback is not None
    assert "Traceback (most recent call last)" in info.value.traceback
    assert 'raise RuntimeError("weights missing")' in info.value.traceback
    assert gpuserve.list_deployments() == []
    assert not (gpuserve_home / "deployments" / "broken").exists()


def test_setup_timeout_fails_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOW_SETUP_SECONDS", "30")
    began = time.monotonic()
    with pytest.raises(gpuserve.DeployError, match="setup_timeout=1 s"):
        gpuserve.deploy(SlowSetup, name="too-slow", setup_timeout=1)
    assert time.monotonic() - began < 10
    assert gpuserve.list_deployments() == []


def test_predict_error_keeps_serving(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Raising, name="raising")
    deployments.append(deployment)
    with pytest.raises(gpuserve.PredictError, match="bad value for the model") as info:
        deployment.predict(fail=True)
    assert info.value.status_code == 500
    with pytest.raises(gpuserve.InvalidInputError) as invalid:
        deployment.predict(fail="maybe")
    assert invalid.value.errors[0]["loc"] == ["fail"]
    assert deployment.predict() == "ok"


def test_secrets_and_named_volume(
    deployments: list[Deployment], gpuserve_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-value-1234"
    monkeypatch.setenv("READER_TOKEN", secret)
    deployment = gpuserve.deploy(VolumeReader, name="reader")
    deployments.append(deployment)
    volume_dir = gpuserve_home / "volumes" / "reader-data"
    assert volume_dir.is_dir()
    (volume_dir / "message.txt").write_text("from the volume")
    output = deployment.predict()
    assert output["message"] == "from the volume"
    assert output["token_length"] == len(secret)
    assert secret not in deployment.logs()
    assert secret not in (gpuserve_home / "deployments" / "reader" / "deployment.json").read_text()


def test_missing_secret_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("READER_TOKEN", raising=False)
    with pytest.raises(gpuserve.ConfigError, match="READER_TOKEN"):
        gpuserve.deploy(VolumeReader, name="reader")
    assert gpuserve.list_deployments() == []


def test_local_dir_volume(deployments: list[Deployment], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READER_TOKEN", "t")
    (tmp_path / "message.txt").write_text("local dir")
    deployment = gpuserve.deploy(
        VolumeReader, name="reader-dir", volumes={"/data": gpuserve.Volume(local_dir=str(tmp_path))}
    )
    deployments.append(deployment)
    assert deployment.predict()["message"] == "local dir"


def test_missing_local_dir_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READER_TOKEN", "t")
    missing = str(tmp_path / "nope")
    with pytest.raises(gpuserve.ConfigError, match="is not a directory"):
        gpuserve.deploy(VolumeReader, name="reader-dir", volumes={"/data": gpuserve.Volume(local_dir=missing)})
    assert gpuserve.list_deployments() == []


def test_invalid_override_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="Unknown GPU 'A1000'"):
        gpuserve.deploy(Echo, gpu="A1000")
    with pytest.raises(gpuserve.ConfigError, match="idle_timeout"):
        gpuserve.deploy(Echo, idle_timeout=-1)
    with pytest.raises(gpuserve.ConfigError, match="Unknown setting 'idle'"):
        gpuserve.deploy(Echo, idle=5)
    with pytest.raises(gpuserve.ConfigError, match="Unknown backend 'k8s'"):
        gpuserve.deploy(Echo, backend="k8s")
    assert gpuserve.list_deployments() == []


def test_redeploy_replaces(deployments: list[Deployment]) -> None:
    first = gpuserve.deploy(Echo, name="echo-twice")
    first_server = first.status()["server_pid"]
    second = gpuserve.deploy(Echo, name="echo-twice")
    deployments.append(second)
    assert not _alive(first_server)
    assert second.predict(text="b") == "b"
    assert [d.name for d in gpuserve.list_deployments()] == ["echo-twice"]


def test_worker_crash_restarts_on_next_request(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-crash")
    deployments.append(deployment)
    worker_pid = deployment.status()["worker_pid"]
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: deployment.status()["state"] == "scaled_to_zero", timeout=5)
    assert deployment.predict(text="back") == "back"
    assert deployment.status()["cold_starts"] == 2


def test_delete_after_front_door_killed() -> None:
    deployment = gpuserve.deploy(Echo, name="echo-orphan")
    status = deployment.status()
    os.kill(status["server_pid"], signal.SIGKILL)
    # The worker notices its supervisor is gone and exits by itself.
    wait_for(lambda: not _alive(status["worker_pid"]), timeout=5)
    assert deployment.status()["state"] == "stopped"
    deployment.delete()
    assert gpuserve.list_deployments() == []


def test_delete_stops_everything() -> None:
    deployment = gpuserve.deploy(Echo, name="echo-delete")
    status = deployment.status()
    deployment.delete()
    assert not _alive(status["server_pid"])
    assert not _alive(status["worker_pid"])
    with pytest.raises(gpuserve.DeploymentNotFoundError, match="echo-delete"):
        Deployment.get("echo-delete")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{deployment.url}/health")


def test_deployment_outlives_deploying_process(gpuserve_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpuserve", "deploy", "examples/tiny.py:Echo", "--name", "echo-cli"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    deployment = Deployment.get("echo-cli")
    try:
        assert deployment.predict(text="still here") == "still here"
    finally:
        deployment.delete()


def test_async_client_through_front_door(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-async", idle_timeout=1)
    deployments.append(deployment)
    wait_for(lambda: deployment.status()["state"] == "scaled_to_zero", timeout=10)

    async def call_many() -> list[str]:
        async with gpuserve.AsyncClient(deployment.url) as client:
            return list(await asyncio.gather(*(client.predict(text=str(i)) for i in range(10))))

    assert asyncio.run(call_many()) == [str(i) for i in range(10)]
    assert deployment.status()["cold_starts"] == 2


def test_invalid_input_through_cold_start(
    deployments: list[Deployment], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("READER_TOKEN", "t")
    data = tmp_path / "data"
    data.mkdir()
    deployment = gpuserve.deploy(
        VolumeReader, name="reader-gone", idle_timeout=0.5, volumes={"/data": gpuserve.Volume(local_dir=str(data))}
    )
    deployments.append(deployment)
    wait_for(lambda: deployment.status()["state"] == "scaled_to_zero", timeout=10)
    response = httpx.post(f"{deployment.url}/predict", json={"unknown": 1}, timeout=30)
    assert response.status_code == 422


def test_predict_on_stopped_fails_fast() -> None:
    deployment = gpuserve.deploy(Echo, name="echo-stopped")
    status = deployment.status()
    os.kill(status["server_pid"], signal.SIGKILL)
    wait_for(lambda: not _alive(status["worker_pid"]), timeout=5)
    began = time.monotonic()
    with pytest.raises(gpuserve.EndpointUnavailableError, match="is stopped"):
        Deployment.get("echo-stopped").predict(text="x")
    assert time.monotonic() - began < 2
    deployment.delete()
