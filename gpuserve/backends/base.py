"""The contract every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..endpoint import Endpoint
from ..settings import Settings
from ..state import DeploymentRecord

#: Receives one-line progress messages during a deploy ("building image", "waiting for setup").
ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class DeploySpec:
    """Everything a backend needs to deploy one endpoint."""

    name: str
    endpoint_class: type[Endpoint]
    #: ``module:Class`` or ``/path/file.py:Class``, importable in the server process.
    reference: str
    settings: Settings
    #: The user's project directory: the working directory of the server and the build context.
    project_dir: Path
    #: Port on 127.0.0.1 for backends that serve locally; None picks a free one.
    port: int | None = None
    #: Keep the built image when the deployment is deleted (image-building backends).
    keep_image: bool = False
    #: Require a bearer token on every request but health checks; None takes the backend's default.
    auth: bool | None = None


class Backend(ABC):
    """A place endpoints run: the local machine, a Docker engine or a cloud provider.

    Backends translate their provider's errors into gpuserve's exception tree at this boundary.
    """

    #: Name used in ``deploy(..., backend=NAME)`` and the CLI's ``--backend``.
    name: str = ""
    #: Whether deployments require a bearer token when ``deploy`` gets ``auth=None``.
    auth_by_default: bool = True

    @abstractmethod
    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        """Deploy ``spec`` and return its record once the endpoint is ready; roll back on failure."""

    @abstractmethod
    def status(self, record: DeploymentRecord) -> dict[str, Any]:
        """Return the deployment's state: at least ``state``, ``url`` and ``instances``."""

    @abstractmethod
    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        """Return the deployment's recent log lines, the last ``tail`` of them when given."""

    @abstractmethod
    def delete(self, record: DeploymentRecord) -> None:
        """Stop and remove everything the deployment created."""

    def invoke(self, record: DeploymentRecord, inputs: dict[str, Any], deadline: float) -> Any:
        """Call the endpoint's predict through the provider's API, for providers without a plain HTTPS URL.

        Backends whose endpoints serve HTTP at ``record.url`` leave this alone, and ``Deployment`` then
        uses ``gpuserve.Client``.
        """
        raise NotImplementedError(f"The {self.name} backend is called over HTTP at the deployment's URL.")

    def ensure_serving(self, record: DeploymentRecord) -> None:  # noqa: B027 - optional hook, no-op by default
        """Raise ``EndpointUnavailableError`` when the deployment is known to be stopped.

        Called before the first request, so that a call fails at once instead of waiting for a deadline.
        """

    def wants_auth(self, spec: DeploySpec) -> bool:
        return self.auth_by_default if spec.auth is None else spec.auth

    def token(self, record: DeploymentRecord) -> str | None:
        """Return the bearer token that calls to the deployment carry, or None for no token.

        The default is the token stored in the record. Backends whose provider checks short-lived
        credentials, such as Cloud Run's ID tokens, fetch a fresh one here.
        """
        return record.token

    @classmethod
    def calls_over_http(cls) -> bool:
        return cls.invoke is Backend.invoke
