"""The Docker backend on a real engine: builds, containers over HTTP, scale to zero and failures."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import gpuserve
from gpuserve.deployment import Deployment

from ...conftest import REPO, free_port, wait_for
from ...endpoints.failing_setup import FailingSetup
from ...endpoints.volume_reader import VolumeReader

sys.path.insert(0, str(REPO / "examples"))
from tiny import Echo  # noqa: E402


def _images(client: Any, name: str) -> list[Any]:
    return client.images.list(filters={"label": f"gpuserve.deployment={name}"})


def test_tiny_in_container(deployments: list[Deployment], base_image: str, docker_client: Any) -> None:
    deployment = gpuserve.deploy(Echo, backend="docker", name="dk-echo", project_dir=REPO)
    deployments.append(deployment)
    assert deployment.predict(text="in a box", times=2) == "in a box in a box"
    status = deployment.status()
    assert status["backend"] == "docker"
    assert status["state"] == "ready"
    assert status["image"] == "gpuserve/dk-echo:latest"
    assert status["container_state"] == "running"
    assert status["cold_starts"] == 1
    # Docker deployments require their generated bearer token by default; health stays open.
    assert deployment.token
    headers = {"Authorization": f"Bearer {deployment.token}"}
    invalid = httpx.post(f"{deployment.url}/predict", json={"text": "x", "times": 0}, headers=headers)
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["loc"] == ["times"]
    assert httpx.post(f"{deployment.url}/predict", json={"text": "x"}).status_code == 401
    assert httpx.get(f"{deployment.url}/health").status_code == 200
    assert deployment.token not in deployment.logs()


def test_sagemaker_contract_on_image(deployments: list[Deployment], base_image: str, docker_client: Any) -> None:
    deployment = gpuserve.deploy(Echo, backend="docker", name="dk-sagemaker", project_dir=REPO, keep_image=False)
    deployments.append(deployment)
    image = deployment.status()["image"]
    with socket_free(8080):
        container = docker_client.containers.run(
            image,
            command=["serve"],
            network_mode="host",
            environment={"GPUSERVE_HOST": "127.0.0.1"},
            labels={"gpuserve.deployment": "dk-sagemaker"},
            detach=True,
        )
        try:
            wait_for(lambda: _ping() == 200, timeout=30)
            response = httpx.post("http://127.0.0.1:8080/invocations", json={"text": "sm", "style": "shout"})
            assert response.status_code == 200
            assert response.json() == {"output": "SM"}
        finally:
            container.remove(force=True)


def _ping() -> int:
    try:
        return httpx.get("http://127.0.0.1:8080/ping", timeout=2).status_code
    except httpx.TransportError:
        return 0


class socket_free:
    """Skip the test unless the port is free (SageMaker's contract fixes 8080)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __enter__(self) -> None:
        import socket

        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError:
                pytest.skip(f"port {self.port} is in use on this machine")

    def __exit__(self, *exc_info: object) -> None:
        return None


def test_scale_to_zero_cycle(base_image: str, docker_client: Any) -> None:
    deployment = gpuserve.deploy(Echo, backend="docker", name="dk-idle", project_dir=REPO, idle_timeout=2)
    try:
        assert deployment.predict(text="warm") == "warm"
        wait_for(lambda: deployment.status()["state"] == "scaled_to_zero", timeout=20)
        assert deployment.status()["container_state"] == "exited"
        stopped = docker_client.containers.get(deployment.record.extra["container_id"])
        assert stopped.attrs["State"]["ExitCode"] == 0
        assert deployment.predict(text="cold") == "cold"
        status = deployment.status()
        assert status["cold_starts"] == 2
        assert status["container_state"] == "running"
        assert status["last_cold_start_seconds"] > 0
    finally:
        deployment.delete()
    assert docker_client.containers.list(all=True, filters={"label": "gpuserve.deployment=dk-idle"}) == []
    assert _images(docker_client, "dk-idle") == []


def test_secret_not_in_image(
    deployments: list[Deployment], base_image: str, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "docker-secret-value-987"
    monkeypatch.setenv("READER_TOKEN", secret)
    deployment = gpuserve.deploy(VolumeReader, backend="docker", name="dk-reader", project_dir=REPO)
    deployments.append(deployment)
    volume = docker_client.volumes.get("gpuserve-reader-data")
    try:
        output = deployment.predict()
        assert output["token_length"] == len(secret)
        assert output["path"] == "/data/message.txt"
        image = docker_client.images.get(deployment.status()["image"])
        assert secret not in str(image.attrs["Config"]["Env"])
        assert all(secret not in str(layer) for layer in image.history())
        assert secret not in deployment.logs()
    finally:
        deployment.delete()
        deployments.clear()
        volume.remove(force=True)


def test_local_dir_volume_mounted(
    deployments: list[Deployment], base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READER_TOKEN", "t")
    (tmp_path / "message.txt").write_text("from the host")
    volumes = {"/data": gpuserve.Volume(local_dir=str(tmp_path), read_only=True)}
    deployment = gpuserve.deploy(VolumeReader, backend="docker", name="dk-dir", project_dir=REPO, volumes=volumes)
    deployments.append(deployment)
    assert deployment.predict()["message"] == "from the host"


def test_setup_failure_leaves_nothing(base_image: str, docker_client: Any) -> None:
    with pytest.raises(gpuserve.SetupFailedError, match="weights missing") as info:
        gpuserve.deploy(FailingSetup, backend="docker", name="dk-broken", project_dir=REPO)
    assert info.value.traceback is not None
    assert 'raise RuntimeError("weights missing")' in info.value.traceback
    assert docker_client.containers.list(all=True, filters={"label": "gpuserve.deployment=dk-broken"}) == []
    assert _images(docker_client, "dk-broken") == []
    assert gpuserve.list_deployments() == []


def test_failing_build_step_shows_output(base_image: str, docker_client: Any) -> None:
    image = gpuserve.Image(python_packages=["gpuserve-package-that-does-not-exist==0.0.1"])
    dangling_before = {i.id for i in docker_client.images.list(filters={"dangling": True})}
    with pytest.raises(gpuserve.ImageBuildError) as info:
        gpuserve.deploy(Echo, backend="docker", name="dk-badpkg", project_dir=REPO, image=image)
    message = str(info.value)
    assert "pip install" in message
    assert "gpuserve-package-that-does-not-exist" in info.value.output
    assert gpuserve.list_deployments() == []
    dangling_after = {i.id for i in docker_client.images.list(filters={"dangling": True})}
    assert dangling_after - dangling_before == set()
    assert docker_client.containers.list(all=True, filters={"label": "gpuserve.deployment=dk-badpkg"}) == []


def test_missing_base_image(docker_client: Any) -> None:
    # A registry on a closed loopback port: the pull fails at once and nothing leaves this machine.
    image = gpuserve.Image(base_image=f"127.0.0.1:{free_port()}/gpuserve/missing:1")
    with pytest.raises(gpuserve.ImageBuildError, match="base image 127.0.0.1:.* is not available"):
        gpuserve.deploy(Echo, backend="docker", name="dk-nobase", project_dir=REPO, image=image)
    assert gpuserve.list_deployments() == []


def test_gpu_without_runtime(base_image: str, docker_client: Any) -> None:
    if "nvidia" in docker_client.info().get("Runtimes", {}):
        pytest.skip("this engine has the NVIDIA runtime")
    with pytest.raises(gpuserve.GPUUnavailableError, match="NVIDIA Container Toolkit"):
        gpuserve.deploy(
            Echo,
            backend="docker",
            name="dk-gpu",
            project_dir=REPO,
            gpu="T4",
            image=dataclasses.replace(Echo.image, base_image=base_image),
        )
    assert docker_client.containers.list(all=True, filters={"label": "gpuserve.deployment=dk-gpu"}) == []
    assert _images(docker_client, "dk-gpu") == []
    assert gpuserve.list_deployments() == []


def test_engine_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    began = time.monotonic()
    with pytest.raises(gpuserve.BackendUnavailableError, match="Cannot reach the Docker engine"):
        gpuserve.deploy(Echo, backend="docker", name="dk-down", project_dir=REPO)
    assert time.monotonic() - began < 5
    assert gpuserve.list_deployments() == []


def test_port_in_use(base_image: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(gpuserve.DeployError, match=f"Port {port} on 127.0.0.1 is in use"):
            gpuserve.deploy(Echo, backend="docker", name="dk-port", project_dir=REPO, port=port)
    assert gpuserve.list_deployments() == []


def test_chosen_port(deployments: list[Deployment], base_image: str) -> None:
    port = free_port()
    deployment = gpuserve.deploy(Echo, backend="docker", name="dk-fixed", project_dir=REPO, port=port)
    deployments.append(deployment)
    assert deployment.url == f"http://127.0.0.1:{port}"
    assert deployment.predict(text="p") == "p"


def test_home_directory_rejected(docker_client: Any) -> None:
    with pytest.raises(gpuserve.ConfigError, match="home directory"):
        gpuserve.deploy(Echo, backend="docker", name="dk-home", project_dir=Path.home())
    assert gpuserve.list_deployments() == []


def test_embedding_example_in_container(base_image: str, docker_client: Any) -> None:
    pytest.importorskip("torch", reason="the embedding example needs the examples extra")
    folders = [folder for folder in os.environ.get("PIP_FIND_LINKS", "").split() if folder] + ["/opt/wheels"]
    wheels = next((folder for folder in folders if any(Path(folder).glob("torch-2.13.0*.whl"))), None)
    if wheels is None:
        # Skipped even in CI: without the local CPU wheel, pip would fetch a CUDA build of several GB.
        pytest.skip("no folder in PIP_FIND_LINKS or /opt/wheels holds the CPU torch 2.13.0 wheel")
    from embeddings import Embed

    image = dataclasses.replace(
        Embed.image, python_packages=["torch==2.13.0", "transformers"], find_links=[wheels], base_image=base_image
    )
    deployment = gpuserve.deploy(Embed, backend="docker", name="dk-embed", project_dir=REPO, gpu=None, image=image)
    try:
        vectors = deployment.predict(texts=["A man is playing a guitar.", "Someone plays guitar.", "Stocks fell."])
        assert [len(v) for v in vectors] == [384, 384, 384]
        similar = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
        unrelated = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
        assert similar > unrelated
    finally:
        deployment.delete()
    assert _images(docker_client, "dk-embed") == []


def test_redeploy_reuses_cache(base_image: str, docker_client: Any) -> None:
    first = gpuserve.deploy(Echo, backend="docker", name="dk-twice", project_dir=REPO)
    first_image_id = first.record.extra["image_id"]
    changed = dataclasses.replace(Echo.image, env={"RELEASE": "2"})  # a change in the last layers only
    second = gpuserve.deploy(Echo, backend="docker", name="dk-twice", project_dir=REPO, image=changed)
    try:
        assert second.predict(text="again") == "again"
        assert second.status()["build_seconds"] < 5
        assert second.record.extra["image_id"] != first_image_id
        assert [image.tags for image in _images(docker_client, "dk-twice") if image.tags] == [
            ["gpuserve/dk-twice:latest"]
        ]
        assert first_image_id not in {image.id for image in docker_client.images.list(all=True)}
    finally:
        second.delete()
    assert _images(docker_client, "dk-twice") == []
