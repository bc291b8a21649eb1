"""A real deploy of the tiny example on Modal, which needs a Modal account and takes minutes."""

from __future__ import annotations

import contextlib
import os
import uuid

import modal.exception
import pytest

import gpuserve
from gpuserve.backends.modal.backend import ModalApi
from gpuserve.deployment import Deployment

from .conftest import load_echo

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.skipif(
        not (os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET")),
        reason="MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are not set",
    ),
]


def _remove(name: str) -> None:
    """Delete the deployment, or stop its Modal app when a failed deploy left no record."""
    try:
        deployment = Deployment.get(name)
    except gpuserve.DeploymentNotFoundError:
        with contextlib.suppress(modal.exception.NotFoundError):
            ModalApi().stop(name)
        return
    deployment.delete()


def test_deploy_predict_delete() -> None:
    name = f"gpuserve-live-{uuid.uuid4().hex[:8]}"
    try:
        deployment = gpuserve.deploy(load_echo(), backend="modal", name=name)
        assert deployment.url.startswith("https://")
        assert deployment.predict(text="hi", times=2, style="shout") == "HI HI"
        assert deployment.status()["state"] == "deployed"
    finally:
        _remove(name)
    assert gpuserve.list_deployments() == []
