"""Bearer tokens on local deployments: off by default, on with auth=True, checked at the front door."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import gpuserve
from gpuserve.deployment import Deployment

from ...conftest import REPO, wait_for

sys.path.insert(0, str(REPO / "examples"))
from tiny import Echo  # noqa: E402


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuserve", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_local_deployments_need_no_token_by_default(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Echo, name="echo-open")
    deployments.append(deployment)
    assert deployment.token is None
    assert httpx.post(f"{deployment.url}/predict", json={"text": "hi"}).json() == {"output": "hi"}
    result = _cli("token", "echo-open")
    assert result.returncode == 1
    assert "needs no token" in result.stderr
    assert "auth:=true" in result.stderr


def test_auth_true_requires_the_generated_token(deployments: list[Deployment]) -> None:
    logged: list[str] = []
    deployment = gpuserve.deploy(Echo, name="echo-auth", auth=True, idle_timeout=1, progress=logged.append)
    deployments.append(deployment)
    token = deployment.token
    assert token and len(token) >= 40

    # The deployment's own client and the CLI send the token.
    assert deployment.predict(text="hi") == "hi"
    result = _cli("predict", "echo-auth", "text=cli", "--compact")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '"cli"'
    assert _cli("token", "echo-auth").stdout.strip() == token

    url = deployment.url
    assert httpx.get(f"{url}/health").status_code in (200, 503)  # health stays open
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        response = httpx.post(f"{url}/predict", json={"text": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    with gpuserve.Client(url) as anonymous, pytest.raises(gpuserve.AuthenticationError):
        anonymous.predict(text="x")

    # The worker behind the front door checks the token too, should its port be found.
    worker_environ = Path(f"/proc/{deployment.status()['worker_pid']}/environ").read_bytes().split(b"\0")
    assert f"GPUSERVE_AUTH_TOKEN={token}".encode() in worker_environ

    # A request without the token never wakes a worker that scaled to zero.
    wait_for(lambda: deployment.status()["state"] == "scaled_to_zero", timeout=10)
    cold_starts = deployment.status()["cold_starts"]
    denied = httpx.post(f"{url}/predict", json={"text": "x"})
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    # At zero, the front door itself responds to health checks, metrics scrapes and unknown paths.
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200
    assert health.json()["phase"] == "scaled_to_zero"
    assert httpx.get(f"{url}/ping").status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}/metrics", headers=bearer).json()["error"]["code"] == "scaled_to_zero"
    assert httpx.get(f"{url}/nope", headers=bearer).status_code == 404
    assert deployment.status()["state"] == "scaled_to_zero"
    assert deployment.status()["cold_starts"] == cold_starts

    assert token not in deployment.logs()
    assert not any(token in line for line in logged)


def test_auth_must_be_a_boolean() -> None:
    with pytest.raises(gpuserve.ConfigError, match="Invalid auth 'yes'; use True, False or None"):
        gpuserve.deploy(Echo, name="echo-bad-auth", auth="yes")  # type: ignore[arg-type]
