"""A local fake of the Google APIs the Cloud Run backend calls, served by uvicorn on 127.0.0.1.

One server speaks three REST APIs, at the paths the real clients use:

- Cloud Run Admin v2 (``run_v2.ServicesClient`` over REST): create, get, update and delete a
  service, ``:getIamPolicy`` and ``:setIamPolicy``, and ``GET .../operations/ID`` for long-running
  operations;
- Artifact Registry v1: get and create a repository, delete a package, and its operations;
- Cloud Logging v2: ``POST /v2/entries:list``, which returns the container's output.

On create or update the fake runs the service's image on the local Docker engine with host
networking, ``PORT`` set to a free loopback port and the service's environment, with Secret
Manager references resolved from :attr:`FakeCloudRun.secrets`. It polls ``/health`` the way the
startup probe would and completes the operation once the container returns 200, or fails it when
the container exits first. The service URI is ``<fake url>/run/SERVICE``: a front door that checks
the caller's ID token against the IAM policy, as Cloud Run does, and forwards to the container.

Every request is recorded with its raw JSON body, and :meth:`FakeCloudRun.fail` makes the next
matching request return a Google API error such as 403 PERMISSION_DENIED or 429 RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: Label on each container the fake starts, with the service id as value.
CONTAINER_LABEL = "gpuserve.fake-cloudrun"
#: The ID token that private services accept.
ID_TOKEN = "fake-google-id-token"
SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"

_SERVICES = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+)/services$")
_SERVICE = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/([^/:]+))(:getIamPolicy|:setIamPolicy)?$")
_OPERATION = re.compile(r"^/v[12]/(projects/[^/]+/locations/[^/]+/operations/[^/]+)$")
_REPOSITORIES = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/repositories(?:/([^/]+))?$")
_PACKAGE = re.compile(r"^/v1/projects/[^/]+/locations/[^/]+/repositories/([^/]+)/packages/([^/]+)$")
_FRONT_DOOR = re.compile(r"^/run/([^/]+)(/.*)?$")
_LOCATION = re.compile(r"projects/[^/]+/locations/[^/]+")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    message: str


class FakeCloudRun:
    """The fake server; ``url`` is set once it serves.

    Example::

        with FakeCloudRun(docker_client) as fake:
            fake.fail("POST", r"/services$", 429, "RESOURCE_EXHAUSTED", "Quota exceeded")
    """

    def __init__(self, docker_client: Any, startup_timeout: float = 90.0) -> None:
        self.docker = docker_client
        self.startup_timeout = startup_timeout
        self.requests: list[RecordedRequest] = []
        self.services: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.repositories: set[str] = set()
        self.deleted_packages: list[str] = []
        #: Secret Manager values by secret id, for ``secretKeyRef`` environment variables.
        self.secrets: dict[str, str] = {}
        #: When set, the next rollout ends with this operation error instead of running a container.
        self.rollout_error: dict[str, Any] | None = None
        self.url = ""
        self._operations: dict[str, dict[str, Any]] = {}
        self._containers: dict[str, Any] = {}
        self._pulled_images: set[str] = set()
        self._container_urls: dict[str, str] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._rollouts: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # ---- test controls -------------------------------------------------------------------------

    def fail(self, method: str, path_pattern: str, status: int, reason: str, message: str) -> None:
        """Return a Google API error for the next ``method`` request whose path matches ``path_pattern``."""
        self._failures.append(_Failure(method, re.compile(path_pattern), status, reason, message))

    def bodies(self, method: str, path_pattern: str) -> list[Any]:
        """Return the JSON bodies of recorded requests, in order, that match ``method`` and ``path_pattern``."""
        pattern = re.compile(path_pattern)
        return [r.body for r in self.requests if r.method == method and pattern.search(r.path)]

    def container_names(self) -> list[str]:
        return list(self._containers)

    # ---- server lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeCloudRun:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PATCH", "DELETE", "PUT"])])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="fake-cloudrun", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("The fake Cloud Run server did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server, wait for rollouts and remove every container the fake started."""
        for thread in self._rollouts:
            thread.join(timeout=self.startup_timeout + 30)
        for service_id in list(self._containers):
            self._remove_container(service_id)
        for image in self._pulled_images:  # copies pulled from the test registry
            try:
                self.docker.images.remove(image, force=True)
            except Exception:  # already gone, or never pulled because the run failed
                pass
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> FakeCloudRun:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ---- dispatch ------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        front_door = _FRONT_DOOR.match(path)
        if front_door:
            return await self._forward(request, front_door.group(1), front_door.group(2) or "/", raw)
        body = json.loads(raw) if raw else None
        self.requests.append(RecordedRequest(request.method, path, dict(request.query_params), body))
        for failure in self._failures:
            if failure.method == request.method and failure.path.search(path):
                self._failures.remove(failure)
                return _error(failure.status, failure.reason, failure.message)
        return self._route(request.method, path, dict(request.query_params), body)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        if match := _SERVICES.match(path):
            if method == "POST":
                return self._create(match.group(1), query["serviceId"], body)
        elif match := _SERVICE.match(path):
            name, service_id, verb = match.groups()
            if verb == ":getIamPolicy":
                return JSONResponse(self.policies.get(name, {"etag": "BwYA"}))
            if verb == ":setIamPolicy":
                self.policies[name] = body["policy"]
                return JSONResponse(body["policy"])
            if name not in self.services:
                return _error(404, "NOT_FOUND", f"Resource '{service_id}' of kind 'SERVICE' does not exist.")
            if method == "GET":
                return JSONResponse(self.services[name])
            if method == "PATCH":
                return self._update(name, service_id, body)
            if method == "DELETE":
                return self._delete(name, service_id)
        elif match := _OPERATION.match(path):
            operation = self._operations.get(match.group(1))
            return JSONResponse(operation) if operation else _error(404, "NOT_FOUND", "No such operation.")
        elif match := _REPOSITORIES.match(path):
            return self._repository(method, match.group(1), match.group(2) or query.get("repositoryId", ""))
        elif match := _PACKAGE.match(path):
            if method == "DELETE":
                self.deleted_packages.append(match.group(2))
                return JSONResponse(self._finished_operation(path, {}))
        elif path == "/v2/entries:list" and method == "POST":
            return JSONResponse(self._log_entries(body))
        return _error(404, "NOT_FOUND", f"The fake does not serve {method} {path}.")

    # ---- Cloud Run services --------------------------------------------------------------------

    def _create(self, parent: str, service_id: str, body: dict[str, Any]) -> Response:
        name = f"{parent}/services/{service_id}"
        if name in self.services:
            return _error(409, "ALREADY_EXISTS", f"Resource '{service_id}' already exists.")
        service = {**body, "name": name, "uid": str(uuid.uuid4()), "generation": "1", "reconciling": True}
        self.services[name] = service
        return JSONResponse(self._start_rollout(parent, service_id, service))

    def _update(self, name: str, service_id: str, body: dict[str, Any]) -> Response:
        generation = int(self.services[name]["generation"]) + 1
        service = {**self.services[name], **body, "generation": str(generation), "reconciling": True}
        self.services[name] = service
        return JSONResponse(self._start_rollout(name.rsplit("/services/", 1)[0], service_id, service))

    def _delete(self, name: str, service_id: str) -> Response:
        service = self.services.pop(name)
        self.policies.pop(name, None)
        self._remove_container(service_id)
        return JSONResponse(self._finished_operation(name, {"@type": SERVICE_TYPE, **service}))

    def _start_rollout(self, parent: str, service_id: str, service: dict[str, Any]) -> dict[str, Any]:
        operation = {"name": f"{parent}/operations/{uuid.uuid4()}", "done": False}
        self._operations[operation["name"]] = operation
        thread = threading.Thread(target=self._roll_out, args=(operation, service_id, service), daemon=True)
        self._rollouts.append(thread)
        thread.start()
        return dict(operation)

    def _roll_out(self, operation: dict[str, Any], service_id: str, service: dict[str, Any]) -> None:
        """Run the revision's container and finish the operation the way Cloud Run does."""
        revision = f"{service_id}-{int(service['generation']):05d}-fak"
        if self.rollout_error is not None:
            error, self.rollout_error = self.rollout_error, None
            operation.update(done=True, error=error)
            return
        try:
            url = self._run_container(service_id, service["template"]["containers"][0])
        except RuntimeError as exc:
            message = f"Revision '{revision}' is not ready and cannot serve traffic. {exc}"
            operation.update(done=True, error={"code": 9, "message": message})
            return
        self._container_urls[service_id] = url
        condition = {"type": "Ready", "state": "CONDITION_SUCCEEDED"}
        service.update(
            uri=f"{self.url}/run/{service_id}",
            reconciling=False,
            latestReadyRevision=f"{service['name']}/revisions/{revision}",
            latestCreatedRevision=f"{service['name']}/revisions/{revision}",
            terminalCondition=condition,
            conditions=[{"type": "RoutesReady", "state": "CONDITION_SUCCEEDED"}],
        )
        operation.update(done=True, response={"@type": SERVICE_TYPE, **service})

    def _run_container(self, service_id: str, container: dict[str, Any]) -> str:
        """Start ``container`` on a free loopback port and wait for /health; raise RuntimeError on failure."""
        environment = {}

        for variable in container.get("env", []):
            if "value" in variable:
                environment[variable["name"]] = variable["value"]
            else:
                secret = variable["valueSource"]["secretKeyRef"]["secret"]
                if secret not in self.secrets:
                    raise RuntimeError(f"Secret projects/fake/secrets/{secret}/versions/latest was not found.")
                environment[variable["name"]] = self.secrets[secret]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        environment.update(PORT=str(port), GPUSERVE_HOST="127.0.0.1", K_SERVICE=service_id)

        previous = self._containers.get(service_id)
        self._pulled_images.add(container["image"])
        started = self.docker.containers.run(
            container["image"],
            network_mode="host",
            environment=environment,
            labels={CONTAINER_LABEL: service_id},
            detach=True,
        )
        self._containers[service_id] = started
        url = f"http://127.0.0.1:{port}"
        if not self._wait_healthy(started, url, _probe_seconds(container.get("startupProbe", {}))):
            raise RuntimeError(
                "The user-provided container failed the configured startup probe checks.\n"
                + started.logs().decode(errors="replace")[-2000:]
            )
        if previous is not None:
            previous.remove(force=True)
        return url

    def _wait_healthy(self, container: Any, url: str, probe_seconds: float) -> bool:
        deadline = time.monotonic() + min(self.startup_timeout, probe_seconds)
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                return False
            try:
                if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def _remove_container(self, service_id: str) -> None:
        container = self._containers.pop(service_id, None)
        self._container_urls.pop(service_id, None)
        if container is not None:
            container.remove(force=True)

    def _finished_operation(self, parent: str, response: dict[str, Any]) -> dict[str, Any]:
        match = _LOCATION.search(parent)
        assert match is not None, parent
        location = match.group(0)
        operation = {"name": f"{location}/operations/{uuid.uuid4()}", "done": True, "response": response}
        self._operations[operation["name"]] = operation
        return operation

    # ---- front door with Cloud Run's IAM check -------------------------------------------------

    async def _forward(self, request: Request, service_id: str, path: str, body: bytes) -> Response:
        name = next((n for n in self.services if n.endswith(f"/services/{service_id}")), None)
        target = self._container_urls.get(service_id)
        if name is None or target is None:
            return Response("Service not found", status_code=404)
        if not self._is_public(name):
            authorization = request.headers.get("authorization", "")
            if not authorization:
                return Response("Your client does not have permission (no token).", status_code=401)
            if authorization != f"Bearer {ID_TOKEN}":
                return Response("Your client does not have permission to get URL.", status_code=403)
        async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
            answer = await client.request(
                request.method,
                f"{target}{path}",
                content=body,
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        return Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))

    def _is_public(self, name: str) -> bool:
        bindings = self.policies.get(name, {}).get("bindings", [])
        return any(b.get("role") == "roles/run.invoker" and "allUsers" in b.get("members", []) for b in bindings)

    # ---- Artifact Registry and Cloud Logging ---------------------------------------------------

    def _repository(self, method: str, parent: str, repository: str) -> Response:
        if method == "GET":
            if repository not in self.repositories:
                return _error(404, "NOT_FOUND", f"Repository {repository} not found.")
            return JSONResponse({"name": f"{parent}/repositories/{repository}", "format": "DOCKER"})
        if repository in self.repositories:
            return _error(409, "ALREADY_EXISTS", f"Repository {repository} already exists.")
        self.repositories.add(repository)
        return JSONResponse(self._finished_operation(parent, {"name": f"{parent}/repositories/{repository}"}))

    def _log_entries(self, body: dict[str, Any]) -> dict[str, Any]:
        match = re.search(r'resource\.labels\.service_name="([^"]+)"', body.get("filter", ""))
        container = self._containers.get(match.group(1)) if match else None
        if container is None:
            return {}
        lines = container.logs().decode(errors="replace").splitlines()
        newest_first = list(reversed(lines))[: int(body.get("pageSize", 50))]
        return {"entries": [{"textPayload": line} for line in newest_first]}


def _probe_seconds(probe: dict[str, Any]) -> float:
    """Return how long a startup probe lets a container start, with Cloud Run's defaults."""
    period = probe.get("periodSeconds", 10)
    return float(probe.get("initialDelaySeconds", 0) + period * probe.get("failureThreshold", 3))


def _error(status: int, reason: str, message: str) -> JSONResponse:
    """A Google API error body, as google.api_core parses it."""
    return JSONResponse({"error": {"code": status, "message": message, "status": reason, "details": []}}, status)
