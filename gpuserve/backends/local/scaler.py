"""Scale-to-zero for one worker: start it on demand, hold requests during the cold start,
stop it after ``idle_timeout`` seconds without requests.

The launcher is anything with ``start() -> url``, ``stop()``, ``exit_code()`` and ``pid``: a child
process for the local backend, a container for the Docker backend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from ...settings import Settings
from ...state import write_json_atomic

logger = logging.getLogger(__name__)

SCALED_TO_ZERO = "scaled_to_zero"
STARTING = "starting"
READY = "ready"
FAILED = "failed"

#: After a failed start, requests get the failure for this long before another start is tried.
RETRY_FAILED_AFTER = 10.0
#: Cold starts kept in the state file.
MAX_COLD_STARTS = 50


class Launcher(Protocol):
    @property
    def pid(self) -> int | None: ...

    async def start(self) -> str: ...

    async def stop(self, grace: float = 10.0) -> None: ...

    def exit_code(self) -> int | None: ...


class StartFailedError(Exception):
    """The worker failed to become ready, for the reason in the message."""


class Scaler:
    """Tracks the worker's phase, in-flight requests and idle time; writes them to ``state_path``."""

    def __init__(self, launcher: Launcher, settings: Settings, state_path: Path) -> None:
        self.launcher = launcher
        self.settings = settings
        self.state_path = state_path
        self.phase = SCALED_TO_ZERO
        #: The front door's own URL, which clients call.
        self.url: str | None = None
        self.worker_url: str | None = None
        self.error: str | None = None
        self.cold_starts: list[dict[str, Any]] = []
        self.requests = 0
        self.in_flight = 0
        self._last_activity = time.monotonic()
        self._failed_at = 0.0
        self._start_task: asyncio.Task[None] | None = None
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))

    async def acquire(self) -> str:
        """Count a request in and return the worker's URL, cold-starting the worker if needed."""
        self.in_flight += 1
        self.requests += 1
        self._last_activity = time.monotonic()
        try:
            return await self._ready_url()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._last_activity = time.monotonic()

    def worker_lost(self) -> None:
        """Mark the worker gone after a request found it dead, so the next request starts a new one."""
        if self.phase == READY and self.launcher.exit_code() is not None:
            logger.warning("Worker exited with code %s; the next request starts a new one", self.launcher.exit_code())
            self.phase = SCALED_TO_ZERO
            self.worker_url = None
            self.write_state()

    def begin_start(self) -> asyncio.Task[None]:
        """Start the worker in the background unless a start is already under way."""
        if self._start_task is None or self._start_task.done():
            self._start_task = asyncio.create_task(self._cold_start())
        return self._start_task

    async def _ready_url(self) -> str:
        if self.phase == READY and self.worker_url is not None:
            return self.worker_url
        if self.phase == FAILED and time.monotonic() - self._failed_at < RETRY_FAILED_AFTER:
            raise StartFailedError(self.error or "setup failed")
        await asyncio.shield(self.begin_start())
        if self.phase != READY or self.worker_url is None:
            raise StartFailedError(self.error or "setup failed")
        return self.worker_url

    async def _cold_start(self) -> None:
        began = time.monotonic()
        self.phase = STARTING
        self.error = None
        self.write_state()
        logger.info("Cold start: starting a worker")
        try:
            url = await self.launcher.start()
            health = await self._wait_healthy(url, began)
        except StartFailedError as exc:
            await self.launcher.stop()
            self.phase = FAILED
            self.error = str(exc)
            self._failed_at = time.monotonic()
            logger.error("Cold start failed after %.2f s: %s", time.monotonic() - began, exc)
            self.write_state()
            return
        seconds = time.monotonic() - began
        self.cold_starts.append(
            {
                "at": time.time(),
                "seconds": round(seconds, 3),
                "import_seconds": health.get("import_seconds"),
                "setup_seconds": health.get("setup_seconds"),
            }
        )
        del self.cold_starts[:-MAX_COLD_STARTS]
        self.worker_url = url
        self.phase = READY
        self._last_activity = time.monotonic()
        logger.info("Cold start took %.2f s", seconds)
        self.write_state()

    async def _wait_healthy(self, url: str, began: float) -> dict[str, Any]:
        """Poll the worker's /health until it is ready; raise ``StartFailedError`` when it cannot be."""
        while True:
            exit_code = self.launcher.exit_code()
            if exit_code is not None:
                raise StartFailedError(f"the worker exited with code {exit_code} during startup; see the logs")
            if time.monotonic() - began > self.settings.setup_timeout:
                raise StartFailedError(
                    f"setup did not finish within setup_timeout={self.settings.setup_timeout:g} s; "
                    "raise setup_timeout if loading is expected to take longer"
                )
            try:
                response = await self._http.get(f"{url}/health")
                body = response.json()
            except (httpx.TransportError, ValueError):
                body = None  # the port is not open yet
            if isinstance(body, dict):
                if response.status_code == 200:
                    return body
                if body.get("phase") == "failed":
                    raise StartFailedError(f"setup failed: {body.get('error')}")
            await asyncio.sleep(0.05)

    async def run_idle_loop(self) -> None:
        """Stop the worker after ``idle_timeout`` seconds without requests, unless min_instances keeps it."""
        idle_timeout = self.settings.scaling.idle_timeout
        interval = min(0.25, idle_timeout / 4)
        written_requests = self.requests
        while True:
            await asyncio.sleep(interval)
            if self.requests != written_requests:
                written_requests = self.requests
                self.write_state()
            if self.phase == READY and self.launcher.exit_code() is not None:
                self.worker_lost()
            if self.settings.scaling.min_instances > 0:
                if self.phase == SCALED_TO_ZERO:
                    self.begin_start()
                continue
            idle_for = time.monotonic() - self._last_activity
            if self.phase == READY and self.in_flight == 0 and idle_for >= idle_timeout:
                await self.scale_to_zero(idle_for)

    async def scale_to_zero(self, idle_for: float) -> None:
        self.phase = SCALED_TO_ZERO
        self.worker_url = None
        await self.launcher.stop()
        logger.info("Scaled to zero after %.1f s without requests", idle_for)
        self.write_state()

    async def close(self) -> None:
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
        await self.launcher.stop()
        await self._http.aclose()

    def write_state(self) -> None:
        write_json_atomic(
            self.state_path,
            {
                "phase": self.phase,
                "url": self.url,
                "worker_pid": self.launcher.pid if self.phase in (STARTING, READY) else None,
                "worker_url": self.worker_url,
                "error": self.error,
                "requests": self.requests,
                "cold_starts": self.cold_starts,
                "updated_at": time.time(),
            },
        )
