"""Connecting to the Docker engine and translating its errors.

gpuserve talks to the engine through the docker SDK rather than the ``docker`` CLI. The SDK
returns structured build output, one record per step with an ``error`` record for the failing
step. It raises typed errors that map onto gpuserve's tree, and it needs no CLI binary of a
matching version on the machine. The cost is the legacy builder, without BuildKit's cache mounts.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors

from ...errors import BackendError, BackendUnavailableError, DeployError, GPUUnavailableError

logger = logging.getLogger(__name__)

#: Label on every container, image and volume gpuserve creates, with the deployment name as value.
DEPLOYMENT_LABEL = "gpuserve.deployment"


def connect(timeout: float = 600.0) -> docker.DockerClient:
    """Return a client for the engine at ``$DOCKER_HOST`` (default: the local socket), checked with a ping.

    ``timeout`` bounds the wait for each read from the engine. A build step such as unpacking torch can
    print nothing for minutes, so the default is long. The ping itself gives up after 10 s.
    """
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        probe = docker.from_env(timeout=10)
        probe.ping()
        probe.close()
        client = docker.from_env(timeout=int(timeout))
    except docker.errors.DockerException as exc:
        raise BackendUnavailableError(
            f"Cannot reach the Docker engine at {where}: {exc}. Start it (for example `sudo systemctl start docker` "
            "or `sudo dockerd`), or point DOCKER_HOST at a running engine."
        ) from exc
    return client


def is_gpu_request_rejected(exc: docker.errors.APIError) -> bool:
    """True when the engine rejected a GPU device request, as engines without the NVIDIA toolkit do."""
    text = str(exc).lower()
    return "device driver" in text and "gpu" in text or "nvidia-container" in text


def gpu_error(exc: Exception) -> GPUUnavailableError:
    return GPUUnavailableError(
        f"The Docker engine cannot give the container a GPU ({exc}). Install the NVIDIA Container Toolkit and "
        "restart the engine (nvidia-ctk runtime configure --runtime=docker), or deploy with gpu=None."
    )


@contextlib.contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Re-raise docker SDK errors raised during ``action`` as gpuserve errors, keeping the cause."""
    try:
        yield
    except docker.errors.APIError as exc:
        if is_gpu_request_rejected(exc):
            raise gpu_error(exc) from exc
        if exc.is_server_error():
            raise DeployError(f"The Docker engine failed to {action}: {exc.explanation or exc}") from exc
        raise BackendError(f"Docker rejected the request to {action}: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:
        raise BackendUnavailableError(f"Lost the Docker engine while trying to {action}: {exc}") from exc


def labels(deployment: str) -> dict[str, Any]:
    return {DEPLOYMENT_LABEL: deployment}
