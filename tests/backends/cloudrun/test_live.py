"""A real Cloud Run deploy; runs only with a Google Cloud project that the developer names explicitly."""

from __future__ import annotations

import os
import sys

import pytest

import gpuserve

from ...conftest import REPO

pytestmark = pytest.mark.cloud

LIVE_ENV = "GPUSERVE_CLOUDRUN_LIVE"


@pytest.mark.skipif(
    not (os.environ.get(LIVE_ENV) and os.environ.get("GPUSERVE_CLOUDRUN_PROJECT")),
    reason=f"set {LIVE_ENV}=1, Google Cloud credentials, GPUSERVE_CLOUDRUN_PROJECT and GPUSERVE_CLOUDRUN_REGION "
    "to deploy for real",
)
def test_deploy_tiny_for_real() -> None:
    sys.path.insert(0, str(REPO / "examples"))
    from tiny import Echo

    deployment = gpuserve.deploy(Echo, backend="cloudrun", name="gpuserve-live-echo", project_dir=REPO, gpu="L4")
    try:
        assert deployment.predict(text="live", times=2) == "live live"
        assert deployment.status()["state"] == "ready"
    finally:
        deployment.delete()
