"""HTTP clients for deployed endpoints, sync and async, with retries during cold starts."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx

from .errors import (
    AuthenticationError,
    ClientError,
    ConfigError,
    DeadlineExceededError,
    EndpointConnectionError,
    EndpointUnavailableError,
    InvalidInputError,
    PredictError,
    StreamError,
)

logger = logging.getLogger(__name__)

_FIRST_DELAY = 0.1
_MAX_DELAY = 2.0


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return response.text[:500] or response.reason_phrase


def _is_starting(response: httpx.Response, body: Any) -> bool:
    """Return True for a 502 or 503 worth retrying: any but a failed setup."""
    if response.status_code not in (502, 503):
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return not (isinstance(error, dict) and error.get("code") == "setup_failed")


def _raise_for(response: httpx.Response, body: Any) -> None:
    status = response.status_code
    message = f"{response.request.method} {response.request.url.path} returned {status}: {_message(body, response)}"
    error_class: type[ClientError]
    if status in (401, 403):
        error_class = AuthenticationError
    elif status in (400, 413, 415, 422):
        error_class = InvalidInputError
    elif status in (502, 503):
        error_class = EndpointUnavailableError
    elif status == 504:
        error_class = DeadlineExceededError
    elif status >= 500:
        error_class = PredictError
    else:
        error_class = ClientError
    raise error_class(message, status_code=status, body=body)


_EVENT_STREAM = "text/event-stream"
_STREAM_HEADERS = {"Content-Type": "application/json", "Accept": f"{_EVENT_STREAM}, application/json"}


def _is_event_stream(response: httpx.Response) -> bool:
    return bool(response.headers.get("content-type", "").startswith(_EVENT_STREAM))


class _EventParser:
    """Turns server-sent event lines into items; raises ``StreamError`` on an error event.

    docs/http.md describes the events: ``output`` (one item), ``error`` and ``done``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.done = False
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[Any]:
        """Take one line (without its newline) and yield the item it completes, if any."""
        if line:
            if not line.startswith(":"):
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    self._event = value
                elif field == "data":
                    self._data.append(value)
            return
        event, data = self._event, "\n".join(self._data)
        self._event, self._data = "message", []
        if not data:
            return
        if event == "output":
            yield json.loads(data)
        elif event == "error":
            body = json.loads(data)
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise StreamError(
                f"The stream from {self.url} ended with an error: {error.get('message', data)}", 200, body
            )
        elif event == "done":
            self.done = True

    def finish(self) -> None:
        if not self.done:
            raise StreamError(f"The stream from {self.url} ended before its 'done' event; the connection was lost.")


def stream_items(lines: Iterable[str], url: str) -> Iterator[Any]:
    parser = _EventParser(url)
    for line in lines:
        yield from parser.feed(line)
        if parser.done:
            return
    parser.finish()


def read_output(response: httpx.Response) -> Any:
    """Return the output of a predict response, or raise the ``ClientError`` subclass for its status.

    The output of a streaming endpoint is the list of its items.
    """
    if response.status_code == 200 and _is_event_stream(response):
        return list(stream_items(response.text.splitlines(), str(response.request.url)))
    body = _decode(response)
    if response.status_code != 200:
        _raise_for(response, body)
    if not isinstance(body, dict) or "output" not in body:
        raise ClientError(f"The endpoint returned 200 without an output: {response.text[:200]!r}", 200, body)
    return body["output"]


class _Retry:
    """Backoff state for one call: waits grow from 0.1 s to 2 s and stop at the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline_at = time.monotonic() + deadline
        self.deadline = deadline
        self.delay = _FIRST_DELAY
        self.waited_for: str | None = None

    def next_delay(self, reason: str, retry_after: str | None = None) -> float:
        """Return how long to sleep before the next attempt, or raise when the deadline is near."""
        remaining = self.deadline_at - time.monotonic()
        delay = self.delay
        if retry_after is not None and retry_after.replace(".", "", 1).isdigit():
            delay = max(delay, min(float(retry_after), _MAX_DELAY))
        # The last wait is cut short so that one more attempt happens right at the deadline.
        delay = min(delay, remaining)
        if remaining <= 0:
            raise DeadlineExceededError(
                f"The endpoint was not ready within the deadline of {self.deadline:g} s ({reason}); "
                "raise the client's deadline for slow cold starts."
            )
        if self.waited_for is None:
            logger.info("Endpoint is not ready (%s); retrying for up to %.0f s", reason, remaining)
        self.waited_for = reason
        self.delay = min(self.delay * 1.5, _MAX_DELAY)
        return delay


# Modal returns a 303 to a result URL for a request that runs past 150 s, and the clients follow it
# (modal.com/docs/guide/webhook-timeouts); 20 redirects wait up to about 50 minutes.
class _BaseClient:
    def __init__(
        self, url: str, token: str | None, timeout: float, deadline: float, headers: dict[str, str] | None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"Invalid endpoint URL {url!r}; use an http:// or https:// URL such as http://127.0.0.1:8080."
            )
        self.url = url.rstrip("/")
        self.deadline = deadline
        self._headers = {"Accept": "application/json", **(headers or {})}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))

    def _output(self, response: httpx.Response, retry: _Retry) -> tuple[bool, Any, float]:
        """Interpret a predict response: (done, output, delay before the next attempt)."""
        body = _decode(response)
        if response.status_code != 200 and _is_starting(response, body):
            return False, None, retry.next_delay(f"HTTP {response.status_code}", response.headers.get("Retry-After"))
        return True, read_output(response), 0.0


class Client(_BaseClient):
    """A synchronous client for a gpuserve endpoint.

    Example::

        with gpuserve.Client("http://127.0.0.1:8080") as client:
            vectors = client.predict(texts=["hello"])

    ``predict`` retries while the endpoint is cold-starting (connection refused, 503 "starting")
    until ``deadline`` seconds have passed, then raises ``DeadlineExceededError``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 600.0,
        deadline: float = 600.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, timeout, deadline, headers)
        self._http = httpx.Client(
            headers=self._headers, timeout=self._timeout, transport=transport, follow_redirects=True, max_redirects=20
        )

    def predict(self, **inputs: Any) -> Any:
        """Call ``predict`` with ``inputs`` as JSON fields and return its output."""
        content = json.dumps(inputs).encode()
        retry = _Retry(self.deadline)
        while True:
            try:
                response = self._http.post(
                    f"{self.url}/predict", content=content, headers={"Content-Type": "application/json"}
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                time.sleep(retry.next_delay(f"connection failed: {exc}"))
                continue
            except httpx.TimeoutException as exc:
                raise DeadlineExceededError(f"No response from {self.url} within {self._timeout.read} s.") from exc
            except httpx.TransportError as exc:
                raise EndpointConnectionError(f"Request to {self.url} failed: {exc}") from exc
            done, output, delay = self._output(response, retry)
            if done:
                return output
            time.sleep(delay)

    def stream(self, **inputs: Any) -> Iterator[Any]:
        """Call a streaming ``predict`` and yield its items as they arrive.

        Raises ``StreamError`` when the endpoint sends an error event. Leaving the loop early
        closes the connection, and the endpoint then closes its generator. An endpoint that does
        not stream yields its one output.
        """
        content = json.dumps(inputs).encode()
        retry = _Retry(self.deadline)
        while True:
            delay = 0.0
            try:
                with self._http.stream(
                    "POST", f"{self.url}/predict", content=content, headers=_STREAM_HEADERS
                ) as response:
                    if response.status_code == 200 and _is_event_stream(response):
                        yield from stream_items(response.iter_lines(), self.url)
                        return
                    response.read()
                    done, output, delay = self._output(response, retry)
                    if done:
                        yield output
                        return
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                delay = retry.next_delay(f"connection failed: {exc}")
            except httpx.TimeoutException as exc:
                raise DeadlineExceededError(f"No response from {self.url} within {self._timeout.read} s.") from exc
            except httpx.TransportError as exc:
                raise EndpointConnectionError(f"Request to {self.url} failed: {exc}") from exc
            time.sleep(delay)

    def health(self) -> dict[str, Any]:
        """Return the endpoint's health body, whatever its status code."""
        try:
            response = self._http.get(f"{self.url}/health")
        except httpx.TransportError as exc:
            raise EndpointConnectionError(f"Cannot reach {self.url}: {exc}") from exc
        body = _decode(response)
        if response.status_code not in (200, 503) or not isinstance(body, dict):
            _raise_for(response, body)
        return body  # type: ignore[no-any-return]

    def openapi(self) -> dict[str, Any]:
        """Return the endpoint's OpenAPI document."""
        response = self._http.get(f"{self.url}/openapi.json")
        body = _decode(response)
        if response.status_code != 200:
            _raise_for(response, body)
        return body  # type: ignore[no-any-return]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """An asyncio client for a gpuserve endpoint; the async twin of ``Client``.

    Example::

        async with gpuserve.AsyncClient(url) as client:
            vectors = await client.predict(texts=["hello"])
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 600.0,
        deadline: float = 600.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, timeout, deadline, headers)
        self._http = httpx.AsyncClient(
            headers=self._headers, timeout=self._timeout, transport=transport, follow_redirects=True, max_redirects=20
        )

    async def predict(self, **inputs: Any) -> Any:
        """Call ``predict`` with ``inputs`` as JSON fields and return its output."""
        content = json.dumps(inputs).encode()
        retry = _Retry(self.deadline)
        while True:
            try:
                response = await self._http.post(
                    f"{self.url}/predict", content=content, headers={"Content-Type": "application/json"}
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                await asyncio.sleep(retry.next_delay(f"connection failed: {exc}"))
                continue
            except httpx.TimeoutException as exc:
                raise DeadlineExceededError(f"No response from {self.url} within {self._timeout.read} s.") from exc
            except httpx.TransportError as exc:
                raise EndpointConnectionError(f"Request to {self.url} failed: {exc}") from exc
            done, output, delay = self._output(response, retry)
            if done:
                return output
            await asyncio.sleep(delay)

    async def stream(self, **inputs: Any) -> AsyncIterator[Any]:
        """Call a streaming ``predict`` and yield its items as they arrive; see ``Client.stream``."""
        content = json.dumps(inputs).encode()
        retry = _Retry(self.deadline)
        while True:
            delay = 0.0
            try:
                async with self._http.stream(
                    "POST", f"{self.url}/predict", content=content, headers=_STREAM_HEADERS
                ) as response:
                    if response.status_code == 200 and _is_event_stream(response):
                        parser = _EventParser(self.url)
                        async for line in response.aiter_lines():
                            for item in parser.feed(line):
                                yield item
                            if parser.done:
                                return
                        parser.finish()
                        return
                    await response.aread()
                    done, output, delay = self._output(response, retry)
                    if done:
                        yield output
                        return
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                delay = retry.next_delay(f"connection failed: {exc}")
            except httpx.TimeoutException as exc:
                raise DeadlineExceededError(f"No response from {self.url} within {self._timeout.read} s.") from exc
            except httpx.TransportError as exc:
                raise EndpointConnectionError(f"Request to {self.url} failed: {exc}") from exc
            await asyncio.sleep(delay)

    async def health(self) -> dict[str, Any]:
        """Return the endpoint's health body, whatever its status code."""
        try:
            response = await self._http.get(f"{self.url}/health")
        except httpx.TransportError as exc:
            raise EndpointConnectionError(f"Cannot reach {self.url}: {exc}") from exc
        body = _decode(response)
        if response.status_code not in (200, 503) or not isinstance(body, dict):
            _raise_for(response, body)
        return body  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
