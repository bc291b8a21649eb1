"""A local fake of the SageMaker control plane and runtime APIs, served by uvicorn on 127.0.0.1.

moto 5.2 does not implement inference components, and its InvokeEndpoint returns canned results
instead of calling a container, so tests point boto3's ``sagemaker`` and ``sagemaker-runtime``
clients at this server (``endpoint_url=fake.url`` or ``AWS_ENDPOINT_URL_SAGEMAKER[_RUNTIME]``).

Control plane: AWS JSON 1.1 as botocore sends it, ``POST /`` with ``X-Amz-Target: SageMaker.<Action>``.
Errors are HTTP 400 ``{"__type": "ValidationException", "message": ...}``.

Runtime: rest-json, ``POST /endpoints/{EndpointName}/invocations``, with the inference component
named in ``X-Amzn-SageMaker-Inference-Component``. The body goes to ``<url>/invocations`` of the
container registered with :meth:`FakeSageMaker.route`. A container status outside 2xx becomes HTTP 424
``ModelError`` with the ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn`` members that
botocore's ModelError shape defines. A component with no copies rejects requests with HTTP 400
``ValidationError``, as AWS does while a component is scaled to zero. Runtime errors carry the code
in the ``x-amzn-ErrorType`` header and in ``__type``, and the text in ``Message``, the member name
of botocore's runtime error shapes.

Example::

    with FakeSageMaker(transition_delay=0.1) as fake:
        sagemaker = boto3.client("sagemaker", endpoint_url=fake.url)
        fake.route("my-component", "http://127.0.0.1:8080")
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .fake_sagemaker_state import (
    ACCOUNT_ID,
    COMPONENT,
    CONTROL_ACTIONS,
    ENDPOINT,
    NO_CAPACITY_MESSAGE,
    REGION,
    AwsError,
    SageMakerState,
    arn,
)

logger = logging.getLogger(__name__)

__all__ = ["ACCOUNT_ID", "ACTIONS", "NO_CAPACITY_MESSAGE", "AwsError", "FakeSageMaker", "RecordedRequest", "arn"]

#: Every action that :meth:`FakeSageMaker.fail_next` accepts.
ACTIONS = CONTROL_ACTIONS | {"InvokeEndpoint"}

_JSON_11 = "application/x-amz-json-1.1"
# botocore's rest-json parser takes the error code from this header before the body's __type.
_ERROR_TYPE_HEADER = "x-amzn-ErrorType"
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker/"
# Headers that SageMaker passes between the caller and the container, in both directions.
_FORWARDED_HEADERS = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes")


@dataclass
class RecordedRequest:
    """One request that the fake received: the action and its JSON body.

    For ``InvokeEndpoint`` the body contains ``EndpointName``, ``InferenceComponentName``, ``ContentType``,
    ``Accept`` and the raw ``Body`` bytes.
    """

    action: str
    body: dict[str, Any]


class FakeSageMaker:
    """An in-memory SageMaker control plane and runtime on 127.0.0.1, for boto3 clients in tests.

    Endpoints and inference components go from Creating (or Updating) to InService, and from
    Deleting to gone, once ``transition_delay`` seconds have passed. The fake checks the time when
    a describe, list or invoke call reads them. ``wake_delay``, when set, gives a component at zero
    copies one copy that many seconds after a request found no capacity, the way the
    ``NoCapacityInvocationFailures`` alarm and a step-scaling policy do on AWS.
    """

    def __init__(
        self, transition_delay: float = 0.5, wake_delay: float | None = None, invoke_timeout: float = 60.0
    ) -> None:
        self.wake_delay = wake_delay
        #: Seconds to wait for a container's response. AWS allows a container 60 s.
        self.invoke_timeout = invoke_timeout
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self._state = SageMakerState(transition_delay)
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}
        self._failures: defaultdict[str, deque[AwsError]] = defaultdict(deque)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def transition_delay(self) -> float:
        """Seconds from Creating, Updating or Deleting to the next status, which tests may change."""
        return self._state.transition_delay

    @transition_delay.setter
    def transition_delay(self, seconds: float) -> None:
        self._state.transition_delay = seconds

    # Lifecycle

    def start(self) -> FakeSageMaker:
        """Serve on a free port of 127.0.0.1 from a background thread, and set ``url``."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        config.timeout_graceful_shutdown = 5
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="fake-sagemaker", daemon=True
        )
        self._thread.start()

        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("The fake SageMaker server did not start within 10 s")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                raise RuntimeError("The fake SageMaker server thread did not stop within 15 s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> FakeSageMaker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self._control_plane, methods=["POST"]),
                Route("/endpoints/{endpoint_name}/invocations", self._invoke, methods=["POST"]),
            ]
        )

    # Test controls

    def route(self, name: str, url: str) -> None:
        """Send invocations of endpoint or inference component ``name`` to ``url + "/invocations"``.

        A component's route wins over its endpoint's route.
        """
        with self._lock:
            self._routes[name] = url.rstrip("/")

    def fail_next(self, action: str, code: str, message: str, status: int = 400) -> None:
        """Make the next call of ``action`` fail with error ``code``. Each call queues one failure.

        botocore retries some errors (HTTP 500 and 503, ``ThrottlingException``), so a single
        injected failure of that kind is invisible to a client with retries enabled.
        """
        if action not in ACTIONS:
            raise ValueError(f"Unknown action {action!r}. The fake implements {', '.join(sorted(ACTIONS))}.")
        with self._lock:
            self._failures[action].append(AwsError(code, message, status))

    def fail_endpoint(self, name: str, reason: str) -> None:
        """Make endpoint ``name`` go to Failed with ``reason`` as its FailureReason.

        A Creating or Updating endpoint fails at its next transition, an endpoint in another
        state fails now, and an endpoint that does not exist yet fails when it is created.
        """
        with self._lock:
            self._state.fail(ENDPOINT, name, reason)

    def fail_inference_component(self, name: str, reason: str) -> None:
        """Make inference component ``name`` go to Failed with ``reason``, as ``fail_endpoint`` does."""
        with self._lock:
            self._state.fail(COMPONENT, name, reason)

    def set_copy_count(self, component: str, count: int) -> None:
        """Set the current and desired copy count of an inference component now, as autoscaling would."""
        with self._lock:
            self._state.set_copy_count(component, count)

    def bodies(self, action: str) -> list[dict[str, Any]]:
        """Return the bodies of the recorded requests of ``action``, oldest first."""
        return [request.body for request in self.requests if request.action == action]

    # Control plane

    async def _control_plane(self, request: Request) -> Response:
        service, _, action = request.headers.get("x-amz-target", "").partition(".")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(RecordedRequest(action, body if isinstance(body, dict) else {}))
            try:
                result = self._dispatch(service, action, body)
            except AwsError as exc:
                logger.debug("Fake SageMaker %s failed: %s", action, exc)
                return JSONResponse(
                    {"__type": exc.code, "message": exc.message},
                    status_code=exc.status,
                    headers=_request_id(),
                    media_type=_JSON_11,
                )
        return JSONResponse(result, headers=_request_id(), media_type=_JSON_11)

    def _dispatch(self, service: str, action: str, body: Any) -> dict[str, Any]:
        if service != "SageMaker" or action not in self._state.handlers:
            raise AwsError("UnknownOperationException", f"The fake SageMaker does not implement {service}.{action}.")
        if not isinstance(body, dict):
            raise AwsError("SerializationException", "The request body is not a JSON object.")
        self._raise_injected(action)
        return self._state.handle(action, body)

    def _raise_injected(self, action: str) -> None:
        if self._failures[action]:
            raise self._failures[action].popleft()

    # Runtime

    async def _invoke(self, request: Request) -> Response:
        endpoint_name = request.path_params["endpoint_name"]
        component_name = request.headers.get("x-amzn-sagemaker-inference-component")
        body = await request.body()
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    "InvokeEndpoint",
                    {
                        "EndpointName": endpoint_name,
                        "InferenceComponentName": component_name,
                        "ContentType": request.headers.get("content-type"),
                        "Accept": request.headers.get("accept"),
                        "Body": body,
                    },
                )
            )
            try:
                self._raise_injected("InvokeEndpoint")
                variant = self._state.serving_variant(endpoint_name, component_name, self.wake_delay)
                url = self._container_url(endpoint_name, component_name)
            except AwsError as exc:
                return _runtime_error(exc)
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        try:
            reply = await self._post_to_container(url, body, headers)
        except AwsError as exc:
            return _runtime_error(exc)
        if not 200 <= reply.status_code < 300:
            return _runtime_error(_model_error(reply.status_code, reply.text, endpoint_name, component_name))

        answer = {name: reply.headers[name] for name in _FORWARDED_HEADERS if name in reply.headers}
        answer.setdefault("content-type", "application/octet-stream")
        answer["x-Amzn-Invoked-Production-Variant"] = variant
        return Response(reply.content, headers={**answer, **_request_id()})

    def _container_url(self, endpoint_name: str, component_name: str | None) -> str:
        url = self._routes.get(component_name or "") or self._routes.get(endpoint_name)
        if url is None:
            target = component_name or endpoint_name
            raise AwsError(
                "FakeRouteMissing", f"No container route for {target}. Call fake.route({target!r}, url) first."
            )
        return url

    async def _post_to_container(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        # trust_env=False: a proxy from the environment must never see these loopback requests.
        async with httpx.AsyncClient(timeout=self.invoke_timeout, trust_env=False) as client:
            try:
                return await client.post(f"{url}/invocations", content=body, headers=headers)
            except httpx.TimeoutException as exc:
                message = (
                    'Received server error (0) from primary with message "Your invocation timed out while waiting '
                    "for a response from container primary. Review the latency metrics for each container in "
                    'Amazon CloudWatch, resolve the issue, and try again."'
                )
                raise AwsError("ModelError", message, status=424) from exc
            except httpx.TransportError as exc:
                # NOTE: AWS's response when the container refuses the connection is a guess.
                message = f'Received server error (0) from primary with message "{exc}".'
                raise AwsError("ModelError", message, status=424) from exc


def _model_error(status: int, text: str, endpoint: str, component: str | None) -> AwsError:
    """Build the 424 ModelError that SageMaker returns when the container returns ``status``."""
    kind = "client" if 400 <= status < 500 else "server"
    # NOTE: "from model" for inference components comes from third-party tests of real responses,
    # and the log group of a component is assumed to follow the endpoint's naming.
    source = "model" if component else "primary"
    group = f"/aws/sagemaker/InferenceComponents/{component}" if component else f"/aws/sagemaker/Endpoints/{endpoint}"
    console = f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:group={group}"
    message = (
        f'Received {kind} error ({status}) from {source} with message "{text}". '
        f"See {console} in account {ACCOUNT_ID} for more information."
    )
    members = {
        "OriginalStatusCode": status,
        "OriginalMessage": text,
        "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}",
    }
    return AwsError("ModelError", message, status=424, members=members)


def _runtime_error(exc: AwsError) -> JSONResponse:
    """Render an error as the runtime API does: the code in a header and __type, and ``Message``."""
    logger.debug("Fake SageMaker InvokeEndpoint failed: %s", exc)
    headers = {_ERROR_TYPE_HEADER: exc.code + _ERROR_TYPE_SUFFIX, **_request_id()}
    body = {"__type": exc.code, "Message": exc.message, **exc.members}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}
