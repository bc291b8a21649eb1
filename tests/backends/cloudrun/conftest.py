"""Cloud Run fixtures: the local fake of Google's APIs, a registry on 127.0.0.1, and a guard for containers.

Every Google client the backend makes talks to ``FakeCloudRun`` on 127.0.0.1, because the tests
set the ``GPUSERVE_CLOUDRUN_*_ENDPOINT`` variables. They replace Application Default Credentials
with anonymous ones and the ID token source with the fake's token. ``NO_GCE_CHECK`` keeps
google-auth from probing the metadata server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.backends.docker.conftest import base_image, docker_client  # noqa: F401  (fixtures)
from tests.backends.sagemaker.conftest import registry  # noqa: F401  (fixture)

from .fake_cloudrun import CONTAINER_LABEL, ID_TOKEN, FakeCloudRun

pytest.importorskip("google.cloud.run_v2", reason="the cloudrun extra is not installed")

PROJECT = "gpuserve-test"
REGION = "us-central1"
_GOOGLE_VARIABLES = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG", "GCLOUD_PROJECT")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def fake_cloudrun(docker_client: Any) -> Iterator[FakeCloudRun]:  # noqa: F811
    with FakeCloudRun(docker_client) as fake:
        yield fake


@pytest.fixture
def cloudrun_env(
    fake_cloudrun: FakeCloudRun,
    registry: str,  # noqa: F811
    base_image: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> FakeCloudRun:
    """Point the backend at the fake and the local registry, with anonymous credentials and the fake's ID token."""
    from google.auth.credentials import AnonymousCredentials

    from gpuserve.backends.cloudrun import gcp

    for name in list(os.environ):
        if name.startswith("GPUSERVE_CLOUDRUN_") or name in _GOOGLE_VARIABLES or name in _PROXY_VARIABLES:
            monkeypatch.delenv(name)
    variables = {
        gcp.PROJECT_ENV: PROJECT,
        gcp.REGION_ENV: REGION,
        gcp.API_ENDPOINT_ENV: fake_cloudrun.url,
        gcp.ARTIFACT_REGISTRY_ENDPOINT_ENV: fake_cloudrun.url,
        gcp.LOGGING_ENDPOINT_ENV: fake_cloudrun.url,
        gcp.REGISTRY_ENV: registry,
        # GPU endpoints default to a CUDA base from a public registry; the local base keeps builds offline.
        "GPUSERVE_GPU_BASE_IMAGE": base_image,
        "NO_GCE_CHECK": "True",
        "CLOUDSDK_CONFIG": str(tmp_path / "no-gcloud-config"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(gcp, "load_credentials", lambda: (AnonymousCredentials(), None))
    monkeypatch.setattr(gcp, "fetch_id_token", lambda audience: ID_TOKEN)
    return fake_cloudrun


@pytest.fixture(autouse=True)
def no_fake_containers_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that uses the engine, fail it if a container of the fake is left (and remove it)."""
    yield
    if "docker_client" not in request.fixturenames:
        return
    engine = request.getfixturevalue("docker_client")
    left = engine.containers.list(all=True, filters={"label": CONTAINER_LABEL})
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []
