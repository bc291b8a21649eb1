"""Shared fixtures: an isolated state directory per test, real runtime servers on 127.0.0.1,
and a check that no test leaves a gpuserve process running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
ENDPOINTS = REPO / "tests" / "endpoints"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _processes_with_env(marker: str) -> list[int]:
    """Return pids of processes whose environment contains ``marker`` (a KEY=VALUE string)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(autouse=True)
def gpuserve_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Give each test its own state directory and fail it if a process started with it survives."""
    home = tmp_path / "gpuserve-home"
    monkeypatch.setenv("GPUSERVE_HOME", str(home))
    yield home
    deadline = time.monotonic() + 5
    while (left := _processes_with_env(f"GPUSERVE_HOME={home}")) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"processes left running after the test: {left}"


class RuntimeServer:
    """A ``python -m gpuserve.runtime`` process serving one endpoint on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def wait_listening(self, timeout: float = 30.0) -> float:
        """Wait until the port accepts connections; return the seconds it took."""
        began = time.monotonic()
        port = int(self.url.rsplit(":", 1)[1])
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with code {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return time.monotonic() - began
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"the server did not listen within {timeout} s:\n{self.log()}")

    def wait_ready(self, timeout: float = 60.0) -> httpx.Response:
        """Wait until /health no longer returns 503 "starting", and return the last health response."""
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = httpx.get(f"{self.url}/health")
            if response.json()["phase"] != "starting":
                return response
            time.sleep(0.05)
        raise AssertionError(f"setup did not finish within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """Send SIGTERM, wait for the exit (SIGKILL after 10 s) and return the exit code."""
        self.process.terminate()
        try:
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class ServeFactory(Protocol):
    def __call__(self, reference: str, *args: str, env: dict[str, str] | None = None) -> RuntimeServer: ...


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """Start runtime servers for endpoint references; stop them after the test."""
    servers: list[RuntimeServer] = []

    def start(reference: str, *args: str, env: dict[str, str] | None = None) -> RuntimeServer:
        server = launch_runtime(reference, tmp_path / f"server-{len(servers)}.log", *args, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def launch_runtime(reference: str, log_path: Path, *args: str, env: dict[str, str] | None = None) -> RuntimeServer:
    """Start ``python -m gpuserve.runtime REFERENCE ARGS`` from the repository root."""
    env = env or {}
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    command = [sys.executable, "-m", "gpuserve.runtime", reference, "--host", "127.0.0.1", *args]
    if "PORT" in env:
        port = int(env["PORT"])
    elif "serve" in args:
        port = 8080
    else:
        port = free_port()
        command += ["--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    return RuntimeServer(process, f"http://127.0.0.1:{port}", log_path)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


@pytest.fixture
def deployments() -> Iterator[list[Any]]:
    """Collects deployments made by a test and deletes them afterwards."""
    made: list[Any] = []
    yield made
    for deployment in made:
        deployment.delete()
