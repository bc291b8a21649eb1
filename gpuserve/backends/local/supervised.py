"""Backends whose endpoints sit behind a local front door that scales a worker to zero.

The local backend's worker is a child process and the Docker backend's a container. Both share the
deploy, status, logs and delete flow here, and differ in the hooks ``_prepare``, ``_remove_resources``
and ``_describe``.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from ...errors import ConfigError, DeployError, EndpointUnavailableError, SetupFailedError
from ...settings import Settings
from ...state import DeploymentRecord, deployment_dir, read_json, remove_record, save_record
from ..base import Backend, DeploySpec, ProgressCallback

logger = logging.getLogger(__name__)

FRONT_DOOR_MODULE = "gpuserve.backends.local.frontdoor"
_STOP_GRACE = 15.0


def pid_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and, where /proc exists, its command line contains ``marker``.

    The command-line check guards against a pid that the system reused for another process.
    """
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return marker.encode() in handle.read()
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(text: str, lines: int | None) -> str:
    if lines is None:
        return text
    return "\n".join(text.splitlines()[-lines:]) + ("\n" if text else "")


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DeployError(
                f"Port {port} on 127.0.0.1 is in use ({exc.strerror}); choose another port or leave port unset "
                "to get a free one."
            ) from exc


class SupervisedBackend(Backend):
    """A backend whose deployments are a front-door process plus a worker that it starts and stops."""

    def _prepare(self, spec: DeploySpec, record: DeploymentRecord, progress: ProgressCallback) -> None:
        """Create what the worker needs (an image, a container) and store its facts in ``record.extra``."""

    def _remove_resources(self, record: DeploymentRecord) -> None:
        """Remove what ``_prepare`` created; called by delete and after a failed deploy."""

    def _describe(self, record: DeploymentRecord) -> dict[str, Any]:
        """Return backend-specific status fields."""
        return {}

    def _replace(self, previous: DeploymentRecord) -> None:
        """Delete the deployment that a new deploy under the same name replaces."""
        from .. import get_backend

        get_backend(previous.backend).delete(previous)

    def ensure_serving(self, record: DeploymentRecord) -> None:
        pid = record.extra.get("pid")
        if not (pid and pid_alive(pid, FRONT_DOOR_MODULE)):
            raise EndpointUnavailableError(
                f"Deployment {record.name!r} is stopped: its front door process is not running (after a reboot, "
                "a kill or a failed delete). Deploy it again, or delete it with gpuserve delete."
            )

    def _check_secrets(self, spec: DeploySpec) -> None:
        missing = [name for name in spec.settings.secrets if name not in os.environ]
        if missing:
            raise ConfigError(
                f"Secret {missing[0]} is not set; the {self.name} backend reads secrets from the environment, "
                f"so export {missing[0]}=... before deploying."
            )

    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        self._check_secrets(spec)
        existing = deployment_dir(spec.name) / "deployment.json"
        if existing.exists():
            previous = DeploymentRecord(**read_json(existing))
            progress(f"Replacing the existing deployment {spec.name!r} ({previous.backend})")
            self._replace(previous)

        record = DeploymentRecord(
            name=spec.name,
            backend=self.name,
            reference=spec.reference,
            url="",  # known once the front door has bound its port
            settings_json=spec.settings.to_json(),
            created_at=time.time(),
            token=secrets.token_urlsafe(32) if self.wants_auth(spec) else None,
            extra={"project_dir": str(spec.project_dir), "port": spec.port or 0},
        )
        save_record(record)
        front_door = None
        try:
            if spec.port:
                _check_port_free(spec.port)
            self._prepare(spec, record, progress)
            save_record(record)
            front_door = self._start_front_door(record)
            self._wait_ready(record, front_door, spec.settings, progress)
        except BaseException:
            if front_door is not None:
                # Through the Popen handle: right after the start the pid may not show our command line yet.
                front_door.terminate()
                try:
                    front_door.wait(_STOP_GRACE)
                except subprocess.TimeoutExpired:
                    front_door.kill()
                    front_door.wait()
            self.delete(record)
            raise
        return record

    def _start_front_door(self, record: DeploymentRecord) -> subprocess.Popen[bytes]:
        log_path = record.directory / "logs.txt"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", FRONT_DOOR_MODULE, str(record.directory)],
                cwd=record.extra["project_dir"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlive the deploying process and its terminal
            )
        record.extra["pid"] = process.pid
        save_record(record)
        return process

    def _wait_ready(
        self,
        record: DeploymentRecord,
        front_door: subprocess.Popen[bytes],
        settings: Settings,
        progress: ProgressCallback,
    ) -> None:
        deadline = time.monotonic() + settings.setup_timeout + 30
        state_path = record.directory / "state.json"
        last_step = None
        while time.monotonic() < deadline:
            if front_door.poll() is not None:
                raise DeployError(
                    f"The front door of {record.name!r} exited during the deploy:\n{self.logs(record, 20)}"
                )
            state = read_json(state_path) if state_path.exists() else {}
            phase = state.get("phase")
            if state.get("url") and not record.url:
                record.url = state["url"]
                save_record(record)
            if phase == "ready":
                progress(f"Ready at {record.url} (cold start {state['cold_starts'][-1]['seconds']:.2f} s)")
                return
            if phase == "failed":
                raise SetupFailedError(
                    f"{record.name}: {state.get('error')}\n{self._setup_traceback(record)}",
                    traceback=self._setup_traceback(record),
                )
            if phase != last_step:
                progress(
                    "Starting the worker and running setup" if phase == "starting" else "Starting the local server"
                )
                last_step = phase
            time.sleep(0.05)
        raise DeployError(f"{record.name} did not become ready within {settings.setup_timeout + 30:g} s.")

    def _setup_traceback(self, record: DeploymentRecord) -> str:
        """Return the last traceback in the deployment's log, which is the setup failure's."""
        lines = self.logs(record).splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
        if not starts:
            return "\n".join(lines[-30:])
        # A traceback is its header, indented frame lines, and one unindented line naming the exception.
        end = starts[-1] + 1
        while end < len(lines) and lines[end].startswith(" "):
            end += 1
        return "\n".join(lines[starts[-1] : end + 1])

    def status(self, record: DeploymentRecord) -> dict[str, Any]:
        state_path = record.directory / "state.json"
        state: dict[str, Any] = read_json(state_path) if state_path.exists() else {}
        alive = bool(record.extra.get("pid")) and pid_alive(record.extra["pid"], FRONT_DOOR_MODULE)
        phase = state.get("phase", "unknown") if alive else "stopped"
        cold_starts = state.get("cold_starts", [])
        return {
            "name": record.name,
            "backend": self.name,
            "url": record.url,
            "state": phase,
            "instances": 1 if phase in ("starting", "ready") else 0,
            "requests": state.get("requests", 0),
            "error": state.get("error"),
            "cold_starts": len(cold_starts),
            "last_cold_start_seconds": cold_starts[-1]["seconds"] if cold_starts else None,
            "cold_start_history": cold_starts,
            "server_pid": record.extra.get("pid") if alive else None,
            "worker_pid": state.get("worker_pid") if alive else None,
            **self._describe(record),
        }

    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        try:
            text = (record.directory / "logs.txt").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return _tail(text, tail)

    def delete(self, record: DeploymentRecord) -> None:
        pid = record.extra.get("pid")
        if pid and pid_alive(pid, FRONT_DOOR_MODULE):
            os.kill(pid, signal.SIGTERM)
            self._wait_exit(pid, FRONT_DOOR_MODULE)
        # The worker stops with its front door; this covers a front door that was killed outright.
        state_path = record.directory / "state.json"
        worker_pid = read_json(state_path).get("worker_pid") if state_path.exists() else None
        if worker_pid and pid_alive(worker_pid, "gpuserve.runtime"):
            os.kill(worker_pid, signal.SIGTERM)
            self._wait_exit(worker_pid, "gpuserve.runtime")
        self._remove_resources(record)
        remove_record(record.name)

    @staticmethod
    def _wait_exit(pid: int, marker: str) -> None:
        deadline = time.monotonic() + _STOP_GRACE
        while time.monotonic() < deadline:
            if not pid_alive(pid, marker):
                return
            time.sleep(0.05)
        logger.warning("Process %d did not stop within %.0f s; killing it", pid, _STOP_GRACE)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
