"""The endpoint host: loads the endpoint class, runs ``setup`` and dispatches ``predict``."""

from __future__ import annotations

import asyncio
import functools
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

from ..batching import batch_config
from ..endpoint import Endpoint, concurrent_calls
from ..loader import load_endpoint
from ..schema import build_input_model
from ..settings import Settings
from .batcher import Batcher, PredictTimeoutError
from .gate import Gate, IsGone
from .metrics import Metrics
from .streaming import ItemStream
from .threadqueue import ThreadQueue

logger = logging.getLogger(__name__)

STARTING = "starting"
READY = "ready"
FAILED = "failed"
STOPPING = "stopping"

# Kinds of predict: a plain or async function, or a sync or async generator that streams.
SYNC = "sync"
ASYNC = "async"
SYNC_STREAM = "sync_stream"
ASYNC_STREAM = "async_stream"


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
        self._kind = SYNC
        # Sync predicts run on executor threads: one at a time unless the class is thread_safe, so
        # per-request state kept on ``self`` never mixes. Async predicts run on the event loop.
        self._executor: ThreadPoolExecutor | None = None
        self._gate = Gate(1, self.settings.scaling.max_queue)
        self._batcher: Batcher | None = None
        self._thread_queue: ThreadQueue | None = None
        self.metrics = Metrics()
        self.metrics.load = lambda: (self.queued, self.in_flight)
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
            self._configure()
            self.report.step = "setup"
            began = time.perf_counter()
            if self._executor is None:
                instance = self._create_instance()
            else:
                # setup runs on a predict thread: per-thread state such as torch.set_num_threads, the
                # current CUDA device or thread-local sessions then applies to predict too.
                instance = self._executor.submit(self._create_instance).result()
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

    @property
    def streams(self) -> bool:
        """True when ``predict`` is a generator whose items are sent as server-sent events."""
        return self._kind in (SYNC_STREAM, ASYNC_STREAM)

    @property
    def queued(self) -> int:
        """Requests waiting for a slot or a batch."""
        waiting = self._gate.queued
        if self._batcher is not None:
            waiting += self._batcher.queued
        if self._thread_queue is not None:
            waiting += self._thread_queue.queued
        return waiting

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet responded to, queued ones included."""
        if self._thread_queue is not None:
            return self._thread_queue.admitted
        running = self._gate.active + (self._batcher.running if self._batcher else 0)
        return running + self.queued

    def _configure(self) -> None:
        """Choose how requests reach ``predict``: its kind, threads, concurrency and batching."""
        assert self.endpoint_class is not None
        predict = self.endpoint_class.predict
        if inspect.isasyncgenfunction(predict):
            self._kind = ASYNC_STREAM
        elif inspect.isgeneratorfunction(predict):
            self._kind = SYNC_STREAM
        elif inspect.iscoroutinefunction(predict):
            self._kind = ASYNC
        else:
            self._kind = SYNC

        scaling = self.settings.scaling
        limit, _ = concurrent_calls(self.endpoint_class, scaling.max_concurrency)
        if self._kind not in (ASYNC, ASYNC_STREAM):
            self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="gpuserve-predict")
        if scaling.max_concurrency > 1 and limit == 1:
            logger.info(
                "%s.predict is sync and not marked thread_safe, so it runs one call at a time although "
                "max_concurrency is %d; set thread_safe = True on the class if it may run in parallel.",
                self.name,
                scaling.max_concurrency,
            )

        self._gate = Gate(limit, scaling.max_queue)
        config = batch_config(predict)
        if config is not None:
            self._batcher = Batcher(
                config, self._call_batch, workers=limit, max_queue=scaling.max_queue, metrics=self.metrics
            )
        elif self._kind == SYNC:
            assert self._executor is not None
            self._thread_queue = ThreadQueue(
                self._executor, threads=limit, max_queue=scaling.max_queue, timeout=self.settings.timeout
            )

    async def predict(self, inputs: dict[str, Any], is_gone: IsGone | None = None) -> Any:
        """Run ``predict`` with validated inputs and return its output.

        Raises ``NotReadyError``, ``QueueFullError``, ``ClientGoneError`` (the client left while
        queued), ``PredictTimeoutError`` or whatever ``predict`` raised.
        """
        self.check_ready()
        assert self._predict is not None
        if self._batcher is not None:
            return await self._batcher.submit(inputs, is_gone)
        if self._thread_queue is not None:
            return await self._thread_queue.run(functools.partial(self._predict, **inputs), is_gone)
        await self._gate.acquire(is_gone)
        release = True
        try:
            assert self._predict is not None
            return await self._call(functools.partial(self._predict, **inputs))
        except PredictTimeoutError as exc:
            if exc.pending is not None:  # the slot frees when the uninterruptible sync call ends
                release = False
                exc.pending.add_done_callback(lambda _: self._gate.release())
            raise
        finally:
            if release:
                self._gate.release()

    async def open_stream(self, inputs: dict[str, Any], is_gone: IsGone | None = None) -> ItemStream:
        """Start a generator ``predict`` and return its ``ItemStream``, which keeps a slot until closed."""
        self.check_ready()
        await self._gate.acquire(is_gone)
        try:
            assert self._predict is not None
            generator = self._predict(**inputs)
        except BaseException:
            self._gate.release()
            raise
        return ItemStream(
            generator,
            executor=self._executor if self._kind == SYNC_STREAM else None,
            timeout=self.settings.timeout,
            on_closed=self._gate.release,
        )

    async def _call(self, call: Callable[[], Any]) -> Any:
        """Run one predict call within the request timeout: async on the loop, sync on the executor."""
        timeout = self.settings.timeout
        if self._kind == ASYNC:
            try:
                return await asyncio.wait_for(call(), timeout)
            except asyncio.TimeoutError:
                raise PredictTimeoutError(None) from None
        assert self._executor is not None
        future = asyncio.wrap_future(self._executor.submit(call))
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            future.add_done_callback(_consume)
            raise PredictTimeoutError(future)
        return future.result()

    async def _call_batch(self, columns: dict[str, list[Any]]) -> Any:
        assert self._predict is not None
        return await self._call(functools.partial(self._predict, **columns))

    def begin_shutdown(self) -> None:
        """Stop taking requests: health and new requests report ``stopping``; admitted ones go on."""
        self.report.phase = STOPPING

    def shutdown(self) -> None:
        self.report.phase = STOPPING
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # the caller already got a 504 response; this only marks the result as read


async def _await(awaitable: Any) -> Any:
    return await awaitable
