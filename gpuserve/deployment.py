"""``deploy`` and the ``Deployment`` handle it returns."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .backends import get_backend
from .backends.base import DeploySpec, ProgressCallback
from .client import Client
from .endpoint import Endpoint, default_name
from .errors import ConfigError
from .loader import reference_of
from .schema import build_input_model
from .state import DeploymentRecord, check_name, list_records, load_record

logger = logging.getLogger(__name__)


class Deployment:
    """A deployed endpoint: its URL, a client, and its lifecycle.

    Example::

        deployment = gpuserve.deploy(Echo)
        print(deployment.predict(text="hi"))
        deployment.delete()
    """

    def __init__(self, record: DeploymentRecord) -> None:
        self.record = record
        self._client: Client | None = None

    @classmethod
    def get(cls, name: str) -> Deployment:
        """Return the deployment named ``name``, made by this or any earlier process."""
        return cls(load_record(name))

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def backend(self) -> str:
        return self.record.backend

    @property
    def url(self) -> str:
        return self.record.url

    @property
    def token(self) -> str | None:
        """The bearer token requests must carry, or None when the deployment needs none."""
        return self.record.token

    def client(self, **options: Any) -> Client:
        """Return a ``Client`` for this deployment, with its token set."""
        return Client(self.url, token=self.record.token, **options)

    def predict(self, **inputs: Any) -> Any:
        """Call the endpoint's ``predict`` with ``inputs`` and return its output.

        The connection is kept for later calls; ``close`` releases it.
        """
        backend = get_backend(self.backend)
        if not backend.calls_over_http():
            return backend.invoke(self.record, inputs, deadline=600.0)
        if self._client is None:
            backend.ensure_serving(self.record)
            self._client = self.client()
        return self._client.predict(**inputs)

    def close(self) -> None:
        """Close the connection that ``predict`` keeps open."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def status(self) -> dict[str, Any]:
        """Return the backend's view of the deployment: state, URL, instances, cold starts."""
        return get_backend(self.backend).status(self.record)

    def logs(self, tail: int | None = None) -> str:
        """Return the deployment's log lines, the last ``tail`` of them when given."""
        return get_backend(self.backend).logs(self.record, tail)

    def delete(self) -> None:
        """Stop the endpoint and remove everything its deploy created."""
        self.close()
        get_backend(self.backend).delete(self.record)
        logger.info("Deleted deployment %s", self.name)

    def __repr__(self) -> str:
        return f"Deployment(name={self.name!r}, backend={self.backend!r}, url={self.url!r})"


def deploy(
    endpoint: type[Endpoint],
    backend: str = "local",
    name: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    keep_image: bool = False,
    auth: bool | None = None,
    **overrides: Any,
) -> Deployment:
    """Deploy an endpoint class and return once it is ready to serve.

    ``overrides`` replace class settings for this deploy, for example
    ``deploy(Embed, gpu="L4", idle_timeout=120)``. ``project_dir`` (default: the working directory)
    is what image-building backends copy into the image. ``port`` fixes the local URL's port on the
    local and Docker backends, and ``keep_image`` keeps the Docker image after a delete.

    ``auth`` makes every request but health checks carry the deployment's bearer token, which
    ``deploy`` generates and keeps with the deployment (``Deployment.token``); ``Client`` objects
    from ``Deployment.client`` and the CLI send it. None takes the backend's default: on for
    Docker and Modal, off for the local backend, and SageMaker always uses AWS IAM.

    Setup failures raise ``SetupFailedError`` with the setup traceback, and leave nothing running.
    """
    if not (isinstance(endpoint, type) and issubclass(endpoint, Endpoint)):
        raise ConfigError(f"deploy() needs a gpuserve.Endpoint subclass, got {endpoint!r}.")
    if endpoint.predict is Endpoint.predict:
        raise ConfigError(f"{endpoint.__name__} does not define predict(self, ...); add it before deploying.")
    settings = endpoint.deployment_settings(**overrides)
    build_input_model(endpoint, endpoint.predict)  # fail here, not in the container, on bad input types
    name = check_name(name or default_name(endpoint))

    chosen = get_backend(backend)
    spec = DeploySpec(
        name=name,
        endpoint_class=endpoint,
        reference=reference_of(endpoint),
        settings=settings,
        project_dir=Path(project_dir or os.getcwd()).resolve(),
        port=_check_port(port),
        keep_image=keep_image,
        auth=_check_flag(auth, "auth"),
    )
    logger.info("Deploying %s as %r on the %s backend", endpoint.__name__, name, backend)
    record = chosen.deploy(spec, progress or _log_progress)
    logger.info("Deployed %r at %s", name, record.url)
    return Deployment(record)


def _check_port(port: int | None) -> int | None:
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise ConfigError(f"Invalid port {port!r}; use a whole number from 1 to 65535, or None for a free port.")
    return port


def _check_flag(value: bool | None, name: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"Invalid {name} {value!r}; use True, False or None (the backend's default).")
    return value


def list_deployments() -> list[Deployment]:
    """Return every deployment recorded for this user, on all backends."""
    return [Deployment(record) for record in list_records()]


def _log_progress(message: str) -> None:
    logger.info("%s", message)
