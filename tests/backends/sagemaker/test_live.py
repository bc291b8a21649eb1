"""A real SageMaker deploy; runs only with an AWS account that the developer names explicitly."""

from __future__ import annotations

import os
import sys

import pytest

import gpuserve

from ...conftest import REPO

pytestmark = pytest.mark.cloud

LIVE_ENV = "GPUSERVE_SAGEMAKER_LIVE"


@pytest.mark.skipif(
    not (os.environ.get(LIVE_ENV) and os.environ.get("GPUSERVE_SAGEMAKER_ROLE_ARN")),
    reason=f"set {LIVE_ENV}=1, AWS credentials, AWS_REGION and GPUSERVE_SAGEMAKER_ROLE_ARN to deploy for real",
)
def test_deploy_tiny_for_real() -> None:
    sys.path.insert(0, str(REPO / "examples"))
    from tiny import Echo

    deployment = gpuserve.deploy(Echo, backend="sagemaker", name="gpuserve-live-echo", project_dir=REPO)
    try:
        assert deployment.predict(text="live", times=2) == "live live"
    finally:
        deployment.delete()
