"""gpuserve: write one ``Endpoint`` class, deploy it as a scale-to-zero GPU HTTP service anywhere.

Example::

    import gpuserve

    class Echo(gpuserve.Endpoint):
        def predict(self, text: str) -> str:
            return text

    deployment = gpuserve.deploy(Echo)          # the local backend
    print(deployment.predict(text="hello"))

``import gpuserve`` stays light: the client, pydantic, the runtime and every provider SDK are
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .batching import batched
from .endpoint import Endpoint
from .errors import (
    AuthenticationError,
    BackendError,
    BackendNotInstalledError,
    BackendUnavailableError,
    ClientError,
    ConfigError,
    DeadlineExceededError,
    DeployError,
    DeploymentExistsError,
    DeploymentNotFoundError,
    EndpointConnectionError,
    EndpointLoadError,
    EndpointUnavailableError,
    GpuserveError,
    GPUUnavailableError,
    ImageBuildError,
    InputError,
    InvalidInputError,
    OutputEncodingError,
    PermissionDeniedError,
    PredictError,
    QuotaExceededError,
    SetupFailedError,
    StreamError,
)
from .gpus import GPU
from .settings import Image, Scaling, Settings, Volume

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .deployment import Deployment, deploy, list_deployments
    from .planner.api import plan

__version__ = "0.1.0"

_LAZY = {
    "Client": "gpuserve.client",
    "AsyncClient": "gpuserve.client",
    "deploy": "gpuserve.deployment",
    "Deployment": "gpuserve.deployment",
    "list_deployments": "gpuserve.deployment",
    "plan": "gpuserve.planner",
}


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpuserve' has no attribute {name!r}")


__all__ = [
    "GPU",
    "AsyncClient",
    "AuthenticationError",
    "BackendError",
    "BackendNotInstalledError",
    "BackendUnavailableError",
    "Client",
    "ClientError",
    "ConfigError",
    "DeadlineExceededError",
    "DeployError",
    "Deployment",
    "DeploymentExistsError",
    "DeploymentNotFoundError",
    "Endpoint",
    "EndpointConnectionError",
    "EndpointLoadError",
    "EndpointUnavailableError",
    "GPUUnavailableError",
    "GpuserveError",
    "ImageBuildError",
    "Image",
    "InputError",
    "InvalidInputError",
    "OutputEncodingError",
    "PermissionDeniedError",
    "PredictError",
    "QuotaExceededError",
    "Scaling",
    "Settings",
    "SetupFailedError",
    "StreamError",
    "Volume",
    "batched",
    "deploy",
    "list_deployments",
    "plan",
]
