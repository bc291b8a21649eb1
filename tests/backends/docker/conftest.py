"""Docker fixtures: a reachable engine with the base image, and a check that no container is left.

Outside CI these tests skip, with the reason, when no engine or base image is available; with
CI=true they fail instead, because .ci/run sets both up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

LABEL = "gpuserve.deployment"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; .ci/run should have set it up")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    docker = pytest.importorskip("docker", reason="the docker extra is not installed")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(f"no Docker engine is reachable ({exc})")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The CPU base image for tests: $GPUSERVE_CPU_BASE_IMAGE, which .ci/setup-docker builds."""
    image = os.environ.get("GPUSERVE_CPU_BASE_IMAGE")
    if not image:
        _unavailable("GPUSERVE_CPU_BASE_IMAGE is not set; run .ci/setup-docker and export it")
    import docker.errors

    try:
        docker_client.images.get(image)
    except docker.errors.ImageNotFound:
        _unavailable(f"the base image {image} is not present; run .ci/setup-docker")
    return str(image)


@pytest.fixture(autouse=True)
def no_containers_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that uses the engine, fail it if a gpuserve container is left (and remove it)."""
    yield
    if not {"docker_client", "base_image"} & set(request.fixturenames):
        return
    docker_client = request.getfixturevalue("docker_client")
    left = docker_client.containers.list(all=True, filters={"label": LABEL})
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []
