"""Pushing a built image to a registry, for the backends that run it from one (SageMaker, Cloud Run)."""

from __future__ import annotations

import logging

import docker
import docker.errors

from ...errors import DeployError
from ..base import ProgressCallback

logger = logging.getLogger(__name__)


def push_image(
    client: docker.DockerClient,
    local_tag: str,
    remote: str,
    tag: str,
    auth: dict[str, str],
    progress: ProgressCallback,
) -> str:
    """Push ``local_tag`` as ``remote:tag`` with the registry credentials ``auth`` and return that URI.

    A failed push raises ``DeployError`` with the registry's message. The local image stays.
    """
    uri = f"{remote}:{tag}"
    client.images.get(local_tag).tag(remote, tag)
    progress(f"Pushing {uri}")
    try:
        # The engine reports push failures inside the stream, not as an exception.
        for record in client.api.push(remote, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in record:
                raise DeployError(f"Pushing {uri} failed: {record['error']}")
    except docker.errors.APIError as exc:
        raise DeployError(f"Pushing {uri} failed: {exc.explanation or exc}") from exc
    finally:
        try:
            client.images.remove(uri)  # the remote tag only; the local image stays
        except docker.errors.APIError as exc:
            logger.debug("Could not remove the tag %s: %s", uri, exc)
    return uri
