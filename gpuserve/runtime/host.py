"""The endpoint host: loads the endpoint class, runs ``setup`` and dispatches ``predict``."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pydantic

from ..endpoint import Endpoint
from ..loader import load_endpoint
from ..schema import build_input_model
from ..settings import Settings

logger = logging.getLogger(__name__)

STARTING = "starting"
READY = "ready"
FAILED = "failed"
STOPPING = "stopping"


class NotReadyError(Exception):
    """Raised by ``EndpointHost.predict`` while the endpoint is starting, failed or stopping."""


@dataclass
class StartupReport:
    """Outcome and timings of the host's start, for health and cold-start figures."""

    phase: str = STARTING
    step: str = "import"
    error: str | None = None
    traceback: str | None = None
    import_seconds: float | None = None
    setup_seconds: float | None = None
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None


class EndpointHost:
    """One endpoint instance inside a server process.

    The class is given directly, or as a reference (``"module:Class"``) imported in the
    background so that the server can listen before slow imports such as torch finish.
    """

    def __init__(
        self,
        endpoint: type[Endpoint] | str,
        settings: Settings | None = None,
        volume_paths: dict[str, str] | None = None,
    ) -> None:
        self._reference = endpoint if isinstance(endpoint, str) else None
        self.endpoint_class: type[Endpoint] | None = None if isinstance(endpoint, str) else endpoint
        self._settings_override = settings
        self._volume_paths = volume_paths
        self.settings: Settings = settings or Settings()
        self.report = StartupReport()
        self.input_model: type[pydantic.BaseModel] | None = None
        self._instance: Endpoint | None = None
        self._predict: Callable[..., Any] | None = None
        self._is_async = False
        # Sync predicts run one at a time on a dedicated thread, so per-request state kept on
        # ``self`` never mixes. Async predicts run on the event loop up to max_concurrency.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpuserve-predict")
        self._semaphore: asyncio.Semaphore | None = None
        self._ready_event = threading.Event()
        #: Called on the setup thread after a failed setup; the development server uses it to exit.
        self.on_failure: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        if self.endpoint_class is not None:
            return self.endpoint_class.__name__
        return (self._reference or "endpoint").rpartition(":")[2]

    @property
    def phase(self) -> str:
        return self.report.phase

    def start_background(self) -> threading.Thread:
        """Import the class and run ``setup`` on a daemon thread; return the thread."""
        thread = threading.Thread(target=self.start, name="gpuserve-setup", daemon=True)
        thread.start()
        return thread

    def start(self) -> None:
        """Import the class and run ``setup`` in this thread, recording the outcome in ``report``."""
        try:
            self._load_class()
            self.report.step = "setup"
            began = time.perf_counter()
            instance = self._create_instance()
            self.report.setup_seconds = time.perf_counter() - began
        except BaseException as exc:  # setup may raise anything, SystemExit included
            self.report.error = f"{type(exc).__name__}: {exc}"
            self.report.traceback = traceback.format_exc()
            self.report.phase = FAILED
            logger.error("Setup of %s failed: %s\n%s", self.name, self.report.error, self.report.traceback)
            self._ready_event.set()
            if self.on_failure is not None:
                self.on_failure()
            return

        self._instance = instance
        self._predict = instance.predict
        self._is_async = inspect.iscoroutinefunction(instance.predict)
        self.report.phase = READY
        self.report.step = "ready"
        self.report.ready_at = time.time()
        logger.info(
            "%s is ready: import took %.2f s, setup took %.2f s",
            self.name,
            self.report.import_seconds or 0.0,
            self.report.setup_seconds,
        )
        self._ready_event.set()

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block until setup succeeded or failed; return False on timeout."""
        return self._ready_event.wait(timeout)

    def _load_class(self) -> None:
        began = time.perf_counter()
        if self.endpoint_class is None:
            assert self._reference is not None
            self.endpoint_class = load_endpoint(self._reference)
        if self._settings_override is None:
            self.settings = self.endpoint_class.deployment_settings()
        self.input_model = build_input_model(self.endpoint_class, self.endpoint_class.predict)
        self.report.import_seconds = time.perf_counter() - began

    def _create_instance(self) -> Endpoint:
        assert self.endpoint_class is not None
        instance = self.endpoint_class()
        if self._volume_paths is not None:
            instance._gpuserve_volume_paths = self._volume_paths  # type: ignore[attr-defined]
        setup: Callable[[], Any] = instance.setup  # an async def setup returns a coroutine
        result = setup()
        if inspect.isawaitable(result):
            asyncio.run(_await(result))  # async setup runs on its own loop in this setup thread
        return instance

    def validate(self, payload: Any) -> dict[str, Any]:
        """Validate a decoded JSON request body; raise ``pydantic.ValidationError`` on bad input."""
        assert self.input_model is not None
        model = self.input_model.model_validate(payload)
        return {name: getattr(model, name) for name in type(model).model_fields}

    def check_ready(self) -> None:
        if self.report.phase != READY:
            raise NotReadyError(self.report.phase)

    async def predict(self, inputs: dict[str, Any]) -> Any:
        """Run ``predict`` with validated inputs, within the request timeout."""
        assert self._predict is not None
        timeout = self.settings.timeout
        if self._is_async:
            if self._semaphore is None:
                self._semaphore = asyncio.Semaphore(self.settings.scaling.max_concurrency)
            async with self._semaphore:
                return await asyncio.wait_for(self._predict(**inputs), timeout)
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._executor, lambda: self._predict(**inputs))  # type: ignore[misc]
        return await asyncio.wait_for(call, timeout)

    def shutdown(self) -> None:
        self.report.phase = STOPPING
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _await(awaitable: Any) -> Any:
    return await awaitable
