"""Publishing an endpoint image to Artifact Registry, where Cloud Run pulls it from.

The image is the one the Docker backend builds on this machine, pushed with the caller's own
credentials. The repository is created through the Artifact Registry REST API when missing.
"""

from __future__ import annotations

import time
from typing import Any

import docker
from google.auth.credentials import Credentials

from ...errors import DeployError
from ..base import ProgressCallback
from ..docker import registry
from .gcp import ARTIFACT_REGISTRY_ENDPOINT_ENV, CloudConfig, access_token, api_root, raise_for_response, rest_session

_DEFAULT_ROOT = "https://artifactregistry.googleapis.com"
#: Seconds to wait for Artifact Registry's long-running operations (creating a repository, deleting images).
_OPERATION_SECONDS = 120.0


def _repository_url(config: CloudConfig) -> str:
    root = api_root(ARTIFACT_REGISTRY_ENDPOINT_ENV, _DEFAULT_ROOT)
    return f"{root}/v1/{config.parent}/repositories/{config.repository}"


def _wait_for_operation(session: Any, operation: dict[str, Any], action: str) -> None:
    root = api_root(ARTIFACT_REGISTRY_ENDPOINT_ENV, _DEFAULT_ROOT)
    deadline = time.monotonic() + _OPERATION_SECONDS
    while not operation.get("done"):
        if time.monotonic() > deadline:
            raise DeployError(
                f"Artifact Registry did not finish the request to {action} within {_OPERATION_SECONDS:g} s."
            )
        time.sleep(1.0)
        response = session.get(f"{root}/v1/{operation['name']}")
        raise_for_response(response, action)
        operation = response.json()
    if "error" in operation:
        raise DeployError(
            f"Artifact Registry failed to {action}: {operation['error'].get('message', operation['error'])}"
        )


def ensure_repository(credentials: Credentials, config: CloudConfig, progress: ProgressCallback) -> None:
    """Create the Docker repository ``config.repository`` in the region unless it exists."""
    session = rest_session(credentials)
    action = f"create the Artifact Registry repository {config.repository}"
    url = _repository_url(config)
    response = session.get(url)
    if response.status_code == 200:
        return
    if response.status_code != 404:
        raise_for_response(response, f"read the Artifact Registry repository {config.repository}")
    progress(f"Creating the Artifact Registry repository {config.repository} in {config.region}")
    response = session.post(
        url.rsplit("/", 1)[0],
        params={"repositoryId": config.repository},
        json={"format": "DOCKER", "labels": {"gpuserve": "true"}},
    )
    if response.status_code == 409:  # created by a concurrent deploy
        return
    raise_for_response(response, action)
    _wait_for_operation(session, response.json(), action)


def image_path(config: CloudConfig, deployment: str) -> str:
    """Return the image's path without a tag: REGISTRY/PROJECT/REPOSITORY/DEPLOYMENT."""
    return f"{config.registry}/{config.project}/{config.repository}/{deployment}"


def push_image(
    client: docker.DockerClient,
    credentials: Credentials,
    config: CloudConfig,
    local_tag: str,
    deployment: str,
    progress: ProgressCallback,
) -> str:
    """Push ``local_tag`` and return its URI, tagged with the image id so that each build gets its own tag."""
    tag = client.images.get(local_tag).id.removeprefix("sha256:")[:12]
    # Artifact Registry accepts an OAuth access token as the password of the user "oauth2accesstoken".
    auth = {"username": "oauth2accesstoken", "password": access_token(credentials)}
    return registry.push_image(client, local_tag, image_path(config, deployment), tag, auth, progress)


def delete_images(credentials: Credentials, config: CloudConfig, deployment: str) -> None:
    """Delete every pushed image of ``deployment`` (its Artifact Registry package); a missing one is fine."""
    session = rest_session(credentials)
    action = f"delete the images of {deployment} from Artifact Registry"
    response = session.delete(f"{_repository_url(config)}/packages/{deployment}")
    if response.status_code == 404:
        return
    raise_for_response(response, action)
    _wait_for_operation(session, response.json(), action)
