"""The Docker backend: the endpoint's image runs as a container behind the local front door."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from ...envvars import AUTH_TOKEN_ENV, SETTINGS_ENV
from ...settings import Settings
from ...state import DeploymentRecord
from ..base import DeploySpec, ProgressCallback
from ..local.supervised import SupervisedBackend
from .builder import build_image
from .engine import DEPLOYMENT_LABEL, connect, gpu_error, labels, translated_errors

logger = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _device_requests(settings: Settings) -> list[docker.types.DeviceRequest]:
    if settings.gpu is None:
        return []
    return [docker.types.DeviceRequest(count=settings.gpu.count, capabilities=[["gpu"]])]


def _volume_binds(client: docker.DockerClient, settings: Settings, deployment: str) -> dict[str, dict[str, str]]:
    """Map host directories and named Docker volumes (created when missing) to their mount paths."""
    binds: dict[str, dict[str, str]] = {}
    for mount, volume in settings.volumes.items():
        mode = "ro" if volume.read_only else "rw"
        if volume.local_dir is not None:
            directory = Path(volume.local_dir).expanduser().resolve()
            if not directory.is_dir():
                from ...errors import ConfigError

                raise ConfigError(
                    f"Volume {mount}: local_dir {volume.local_dir!r} is not a directory; create it or fix the path."
                )
            binds[str(directory)] = {"bind": mount, "mode": mode}
        else:
            name = f"gpuserve-{volume.name}"
            try:
                client.volumes.get(name)
            except docker.errors.NotFound:
                client.volumes.create(name, labels={"gpuserve.volume": str(volume.name)})
            binds[name] = {"bind": mount, "mode": mode}
    return binds


def prune_dangling(client: docker.DockerClient, deployment: str) -> None:
    """Remove the deployment's untagged images; the engine runs one prune at a time, so wait for others."""
    for attempt in range(20):
        try:
            client.images.prune(filters={"dangling": True, "label": f"{DEPLOYMENT_LABEL}={deployment}"})
            return
        except docker.errors.APIError as exc:
            if "already running" not in str(exc) or attempt == 19:
                raise
            time.sleep(0.5)


class DockerBackend(SupervisedBackend):
    """Builds an image per endpoint and runs it on a Docker engine, scaled to zero by the local front door."""

    name = "docker"

    def __init__(self) -> None:
        self._replaced_image_id: str | None = None

    def _prepare(self, spec: DeploySpec, record: DeploymentRecord, progress: ProgressCallback) -> None:
        client = connect()
        record.extra["keep_image"] = spec.keep_image
        record.extra["engine_reached"] = True
        built = build_image(client, spec, progress)
        if self._replaced_image_id and self._replaced_image_id != built.image_id:
            try:
                client.images.remove(self._replaced_image_id)  # layers the new image shares are kept
            except docker.errors.APIError as exc:
                logger.debug("Kept the replaced image %s: %s", self._replaced_image_id, exc)
        record.extra.update(image=built.tag, image_id=built.image_id, build_seconds=round(built.seconds, 2))
        if spec.settings.gpu is not None:
            progress(f"Checking that the engine can provide {spec.settings.gpu}")
            self._probe_gpu(client, built.tag, spec)

        port = _free_port()
        environment = {
            "PORT": str(port),
            "GPUSERVE_HOST": "127.0.0.1",  # host networking: listen on loopback only, the front door is local
            SETTINGS_ENV: spec.settings.to_json(),
            **({AUTH_TOKEN_ENV: record.token} if record.token else {}),
            # Secrets go into the container's environment at run time, never into the image.
            **{name: os.environ[name] for name in spec.settings.secrets},
        }
        name = f"gpuserve-{spec.name}"
        with translated_errors("create the container"):
            self._remove_containers(client, spec.name)
            container = client.containers.create(
                built.tag,
                name=name,
                environment=environment,
                network_mode="host",
                volumes=_volume_binds(client, spec.settings, spec.name),
                device_requests=_device_requests(spec.settings),
                labels=labels(spec.name),
                init=True,  # forward signals and reap zombies for the runtime
                detach=True,
            )
        record.extra.update(container_id=container.id, container_name=name, container_port=port)

    def _replace(self, previous: DeploymentRecord) -> None:
        if previous.backend == self.name and not previous.extra.get("keep_image"):
            # The old image contains the build cache of the new one, so it is removed only after the new build.
            previous.extra["keep_image"] = True
            self._replaced_image_id = previous.extra.get("image_id")
        super()._replace(previous)

    def _probe_gpu(self, client: docker.DockerClient, tag: str, spec: DeploySpec) -> None:
        """Start a throwaway container with the GPU request, so a refusal fails the deploy with a clear fix."""
        with translated_errors("check GPU access"):
            probe = client.containers.create(
                tag,
                entrypoint=["python3", "-c", "pass"],
                network_mode="host",
                device_requests=_device_requests(spec.settings),
                labels=labels(spec.name),
            )
        try:
            with translated_errors("start a GPU probe container"):
                probe.start()
                result = probe.wait(timeout=60)
            if result.get("StatusCode") != 0:
                raise gpu_error(RuntimeError(f"the probe container exited with code {result.get('StatusCode')}"))
        finally:
            with translated_errors("remove the GPU probe container"):
                probe.remove(force=True)

    @staticmethod
    def _remove_containers(client: docker.DockerClient, deployment: str) -> None:
        for container in client.containers.list(all=True, filters={"label": f"{DEPLOYMENT_LABEL}={deployment}"}):
            container.remove(force=True)

    def _remove_resources(self, record: DeploymentRecord) -> None:
        if not record.extra.get("engine_reached"):
            return  # the deploy stopped before it created anything on the engine
        client = connect()
        with translated_errors("remove the deployment's containers and image"):
            self._remove_containers(client, record.name)
            if record.extra.get("image") and not record.extra.get("keep_image"):
                try:
                    client.images.remove(record.extra["image"], force=True)
                except docker.errors.ImageNotFound:
                    pass
                # The build stage that installs python packages leaves an untagged image with our label.
                prune_dangling(client, record.name)

    def _describe(self, record: DeploymentRecord) -> dict[str, Any]:
        details: dict[str, Any] = {
            "image": record.extra.get("image"),
            "build_seconds": record.extra.get("build_seconds"),
            "container": record.extra.get("container_name"),
            "container_state": None,
        }
        try:
            container = connect().containers.get(record.extra["container_id"])
            details["container_state"] = container.status
        except Exception as exc:  # status must return even when the engine or the container is gone
            details["container_state"] = f"unknown ({type(exc).__name__})"
        return details

    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        front_door = super().logs(record, tail)
        try:
            container = connect().containers.get(record.extra["container_id"])
            container_logs = container.logs(tail=tail if tail is not None else "all").decode(errors="replace")
        except Exception:  # the engine or the container is gone: the front door's log is all there is
            container_logs = ""
        return front_door + (
            f"--- container {record.extra.get('container_name')} ---\n{container_logs}" if container_logs else ""
        )
