"""The local backend: each deployment is a front-door process plus a scale-to-zero worker on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ...errors import ConfigError, DeployError, SetupFailedError
from ...settings import Settings
from ...state import DeploymentRecord, deployment_dir, read_json, remove_record, save_record, state_home
from ..base import Backend, DeploySpec, ProgressCallback

logger = logging.getLogger(__name__)

_FRONT_DOOR_MODULE = "gpuserve.backends.local.frontdoor"
_STOP_GRACE = 15.0


def _pid_alive(pid: int, marker: str) -> bool:
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


def _volume_paths(settings: Settings) -> dict[str, str]:
    """Map each mount path to a host directory: the given local_dir, or a folder per named volume."""
    paths = {}
    for mount, volume in settings.volumes.items():
        if volume.local_dir is not None:
            directory = Path(volume.local_dir).expanduser().resolve()
            if not directory.is_dir():
                raise ConfigError(
                    f"Volume {mount}: local_dir {volume.local_dir!r} is not a directory; create it or fix the path."
                )
        else:
            assert volume.name is not None
            directory = state_home() / "volumes" / volume.name
            directory.mkdir(parents=True, exist_ok=True)
        paths[mount] = str(directory)
    return paths


def _user_pythonpath() -> list[str]:
    """Return sys.path entries outside the interpreter's own folders, so the worker imports what we import."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    entries = []
    for entry in sys.path:
        real = os.path.realpath(entry or ".")
        if os.path.isdir(real) and not any(real.startswith(prefix + os.sep) or real == prefix for prefix in prefixes):
            entries.append(real)
    return list(dict.fromkeys(entries))


def _tail(text: str, lines: int | None) -> str:
    if lines is None:
        return text
    return "\n".join(text.splitlines()[-lines:]) + ("\n" if text else "")


class LocalBackend(Backend):
    """Runs endpoints on this machine, with cold starts and scale to zero like the clouds."""

    name = "local"

    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        missing = [name for name in spec.settings.secrets if name not in os.environ]
        if missing:
            raise ConfigError(
                f"Secret {missing[0]} is not set; the local backend reads secrets from the environment, "
                f"so export {missing[0]}=... before deploying."
            )
        if spec.settings.gpu is not None:
            logger.info("The local backend ignores gpu=%s; the endpoint sees this machine's devices", spec.settings.gpu)
        if spec.settings.scaling.max_instances > 1:
            logger.info(
                "The local backend runs one instance; max_instances=%d applies on other backends",
                spec.settings.scaling.max_instances,
            )

        existing = deployment_dir(spec.name) / "deployment.json"
        if existing.exists():
            progress(f"Replacing the existing deployment {spec.name!r}")
            self.delete(DeploymentRecord(**read_json(existing)))

        record = DeploymentRecord(
            name=spec.name,
            backend=self.name,
            reference=spec.reference,
            url="",  # known once the front door has bound a free port

            settings_json=spec.settings.to_json(),
            created_at=time.time(),
            extra={
                "python": sys.executable,
                "project_dir": str(spec.project_dir),
                "pythonpath": _user_pythonpath(),
                "volume_paths": _volume_paths(spec.settings),
            },
        )
        save_record(record)
        front_door = None
        try:
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
                [sys.executable, "-m", _FRONT_DOOR_MODULE, str(record.directory)],
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
                    f"The local server of {record.name!r} exited during the deploy:\n{self.logs(record, 20)}"
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
        alive = bool(record.extra.get("pid")) and _pid_alive(record.extra["pid"], _FRONT_DOOR_MODULE)
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
        }

    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        try:
            text = (record.directory / "logs.txt").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return _tail(text, tail)

    def delete(self, record: DeploymentRecord) -> None:
        pid = record.extra.get("pid")
        if pid and _pid_alive(pid, _FRONT_DOOR_MODULE):
            os.kill(pid, signal.SIGTERM)
            self._wait_exit(pid, _FRONT_DOOR_MODULE)
        # The worker stops with its front door; this covers a front door that was killed outright.
        state_path = record.directory / "state.json"
        worker_pid = read_json(state_path).get("worker_pid") if state_path.exists() else None
        if worker_pid and _pid_alive(worker_pid, "gpuserve.runtime"):
            os.kill(worker_pid, signal.SIGTERM)
            self._wait_exit(worker_pid, "gpuserve.runtime")
        remove_record(record.name)

    @staticmethod
    def _wait_exit(pid: int, marker: str) -> None:
        deadline = time.monotonic() + _STOP_GRACE
        while time.monotonic() < deadline:
            if not _pid_alive(pid, marker):
                return
            time.sleep(0.05)
        logger.warning("Process %d did not stop within %.0f s; killing it", pid, _STOP_GRACE)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
