"""Publishing an endpoint image to Amazon ECR so that SageMaker can pull it."""

from __future__ import annotations

import base64
import os
from typing import Any

import docker

from ..base import ProgressCallback
from ..docker.registry import push_image
from .aws import translated_errors

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
    return push_image(client, local_tag, f"{registry}/{repository}", tag, auth, progress)
