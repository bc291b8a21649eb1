"""SageMaker fixtures: moto for the AWS services it fakes well, a local fake SageMaker, and a registry.

Every AWS client these fixtures configure talks to 127.0.0.1: moto serves ECR, IAM, STS,
Application Auto Scaling, CloudWatch and CloudWatch Logs, and ``FakeSageMaker`` serves the
SageMaker control plane and runtime. The registry is Debian's ``docker-registry`` binary; outside
CI its tests skip when the binary is missing, and with CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import httpx
import pytest

from tests.backends.docker.conftest import base_image, docker_client  # noqa: F401  (fixtures for push tests)
from tests.conftest import free_port

from .fake_sagemaker import FakeSageMaker

#: The Application Auto Scaling dimension of an inference component's copy count.
COPY_COUNT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
REGISTRY_BINARY = "/usr/bin/docker-registry"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; .ci/setup-docker should have installed it")
    pytest.skip(reason)


@contextlib.contextmanager
def _copy_count_dimension_allowed() -> Iterator[None]:
    """Make moto's Application Auto Scaling accept the inference-component copy-count dimension.

    AWS accepts ``sagemaker:inference-component:DesiredCopyCount``, but moto 5.2.6 checks scalable
    dimensions against an enum that lacks it and rejects RegisterScalableTarget with a
    ValidationException. The moto server runs in this process, so extending the enum is enough.
    """
    from moto.applicationautoscaling import models, responses

    original = models.ScalableDimensionValueSet
    if any(member.value == COPY_COUNT_DIMENSION for member in original):
        yield
        return
    members = {member.name: member.value for member in original}
    members["SAGEMAKER_INFERENCE_COMPONENT_DESIRED_COPY_COUNT"] = COPY_COUNT_DIMENSION
    extended = Enum(original.__name__, members)  # type: ignore[misc]
    setattr(models, original.__name__, extended)
    setattr(responses, original.__name__, extended)
    try:
        yield
    finally:
        setattr(models, original.__name__, original)
        setattr(responses, original.__name__, original)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start a moto server on 127.0.0.1 for the whole session and return its URL. ``aws_env`` resets its state."""
    pytest.importorskip("moto.server", reason="moto is not installed; install the dev extra")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with _copy_count_dimension_allowed():
            yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def fake_sagemaker() -> Iterator[FakeSageMaker]:
    """A fresh ``FakeSageMaker`` on 127.0.0.1, stopped after the test."""
    with FakeSageMaker() as fake:
        yield fake


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_server: str, fake_sagemaker: FakeSageMaker
) -> dict[str, str]:
    """Point boto3 at moto and at the fake SageMaker through the environment, and return the variables set.

    Every other ``AWS_*`` variable is removed and the shared config files point at a missing path,
    so a developer's profile cannot send a request anywhere else. botocore reads
    ``AWS_ENDPOINT_URL_<SERVICE ID>``, with the service id upper-cased and spaces replaced by
    underscores: ``SageMaker Runtime`` becomes ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
    """
    with httpx.Client(trust_env=False) as client:
        client.post(f"{moto_server}/moto-api/reset").raise_for_status()

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    variables = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ENDPOINT_URL_SAGEMAKER": fake_sagemaker.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_sagemaker.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a Docker registry on 127.0.0.1 without TLS or auth, and return its ``host:port`` for image tags.

    The engine pushes to it without TLS because Docker treats 127.0.0.0/8 as an insecure registry.
    """
    binary = shutil.which("docker-registry") or REGISTRY_BINARY
    if not os.access(binary, os.X_OK):
        _unavailable("docker-registry is not installed (apt-get install docker-registry)")
    directory = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n  secret: gpuserve-tests\n"
    )
    # The registry overrides its config with REGISTRY_* variables, so none may come from outside.
    env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
    log_path = directory / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_registry(address, process, log_path)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_registry(address: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 15
    with httpx.Client(trust_env=False, timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"docker-registry exited with code {process.returncode}:\n{log_path.read_text()}")
            try:
                if client.get(f"http://{address}/v2/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"docker-registry did not respond on {address} within 15 s:\n{log_path.read_text()}")
