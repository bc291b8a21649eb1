"""Publishing an endpoint image to Amazon ECR so that SageMaker can pull it."""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

import docker
import docker.errors

from ...errors import DeployError
from ..base import ProgressCallback
from .aws import translated_errors

logger = logging.getLogger(__name__)

#: Replaces the registry host that ECR reports, for pull-through mirrors and for tests with a local registry.
REGISTRY_ENV = "GPUSERVE_SAGEMAKER_REGISTRY"


def _ensure_repository(ecr: Any, repository: str) -> None:
    with translated_errors(f"create the ECR repository {repository}"):
        try:
            ecr.create_repository(repositoryName=repository, tags=[{"Key": "gpuserve", "Value": "true"}])
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass


def _login(ecr: Any) -> tuple[str, dict[str, str]]:
    """Return the registry host and the docker auth config from ECR's authorization token."""
    with translated_errors("get an ECR authorization token"):
        data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = os.environ.get(REGISTRY_ENV) or data["proxyEndpoint"].removeprefix("https://").removeprefix("http://")
    return registry, {"username": username, "password": password}


def publish_image(
    client: docker.DockerClient, ecr: Any, local_tag: str, repository: str, progress: ProgressCallback
) -> str:
    """Push ``local_tag`` to ECR repository ``repository`` (created when missing) and return the image URI."""
    _ensure_repository(ecr, repository)
    registry, auth = _login(ecr)
    tag = local_tag.rsplit(":", 1)[1]
    remote = f"{registry}/{repository}"
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
