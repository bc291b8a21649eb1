"""Starting and stopping one runtime worker as a child process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import IO, Any

from ...envvars import AUTH_TOKEN_ENV, PARENT_PID_ENV, SETTINGS_ENV, VOLUME_PATHS_ENV

logger = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessLauncher:
    """Runs ``python -m gpuserve.runtime`` for one endpoint; its output goes to ``log``."""

    def __init__(self, config: dict[str, Any], log: IO[str]) -> None:
        self._config = config
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def exit_code(self) -> int | None:
        """Return the worker's exit code, or None while it runs (or was never started)."""
        return None if self._process is None else self._process.poll()

    async def start(self) -> str:
        """Start a worker and return its base URL, where /health responds as soon as the port opens."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        env = dict(os.environ)
        env[SETTINGS_ENV] = self._config["settings_json"]
        env[PARENT_PID_ENV] = str(os.getpid())
        env[VOLUME_PATHS_ENV] = json.dumps(self._config["volume_paths"])
        env.pop(AUTH_TOKEN_ENV, None)
        if self._config.get("token"):
            env[AUTH_TOKEN_ENV] = self._config["token"]  # the worker checks it too, in case its port is found
        env["PYTHONUNBUFFERED"] = "1"
        pythonpath = [*self._config["pythonpath"], env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in pythonpath if p)
        command = [
            self._config.get("python", sys.executable),
            "-m",
            "gpuserve.runtime",
            self._config["reference"],
            "--fd",
            str(sock.fileno()),
        ]
        with sock:
            self._process = subprocess.Popen(
                command,
                cwd=self._config["project_dir"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
            )
        logger.info("Started worker pid %d on port %d", self._process.pid, port)
        return f"http://127.0.0.1:{port}"

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the worker: SIGTERM, then SIGKILL after ``grace`` seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        process.send_signal(signal.SIGTERM)
        for _ in range(int(grace * 20)):
            if process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            logger.warning("Worker pid %d did not stop within %.0f s; killing it", process.pid, grace)
            process.kill()
            process.wait()
        logger.info("Stopped worker pid %d (exit code %s)", process.pid, process.returncode)
        self._process = None
