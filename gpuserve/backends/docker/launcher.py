"""Starting and stopping an endpoint's container for the front door's scale-to-zero."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import docker
import docker.errors

from ..local.scaler import StartFailedError
from .engine import connect, gpu_error, is_gpu_request_rejected

logger = logging.getLogger(__name__)


class DockerLauncher:
    """Starts the deployment's container (created at deploy time) and stops it when idle."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._client: docker.DockerClient | None = None

    @property
    def pid(self) -> int | None:
        return None  # the worker is a container; status reports its state instead

    def _container(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client.containers.get(self._config["container_id"])

    async def start(self) -> str:
        """Start the container and return the URL it listens on (host networking, so on 127.0.0.1)."""
        try:
            await asyncio.to_thread(lambda: self._container().start())
        except docker.errors.APIError as exc:
            if is_gpu_request_rejected(exc):
                raise StartFailedError(str(gpu_error(exc))) from exc
            raise StartFailedError(f"the engine could not start the container: {exc.explanation or exc}") from exc
        except docker.errors.DockerException as exc:
            raise StartFailedError(f"the Docker engine is unavailable: {exc}") from exc
        logger.info("Started container %s", self._config["container_name"])
        return f"http://127.0.0.1:{self._config['container_port']}"

    def exit_code(self) -> int | None:
        """Return the container's exit code once it has stopped, or None while it runs."""
        try:
            container = self._container()
            container.reload()
        except docker.errors.DockerException:
            return -1  # removed or unreachable: as good as exited
        if container.status in ("exited", "dead"):
            return int(container.attrs["State"].get("ExitCode", -1))
        return None

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the container (SIGTERM, then SIGKILL after ``grace`` seconds) and keep it for the next start."""

        def stop_now() -> None:
            container = self._container()
            container.reload()
            if container.status == "running":
                container.stop(timeout=int(grace))

        try:
            await asyncio.to_thread(stop_now)
        except docker.errors.DockerException as exc:
            logger.warning("Could not stop container %s: %s", self._config["container_name"], exc)
            return
        logger.info("Stopped container %s", self._config["container_name"])
