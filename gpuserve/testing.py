"""Test endpoints in-process with pytest, over the same ASGI app the servers run.

Example::

    from gpuserve.testing import EndpointTestClient

    def test_echo() -> None:
        with EndpointTestClient(Echo) as client:
            assert client.predict(text="hi", times=2) == "hi hi"
            assert client.post("/predict", json={}).status_code == 422
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from .client import stream_items, read_output
from .endpoint import Endpoint
from .errors import SetupFailedError
from .runtime.app import create_app
from .runtime.host import FAILED, EndpointHost

__all__ = ["EndpointTestClient"]


def _local_volume_paths(endpoint: type[Endpoint], overrides: dict[str, Any]) -> dict[str, str]:
    """Map volumes with a local_dir to that directory; named volumes stay at their mount path."""
    settings = endpoint.deployment_settings(**overrides)
    return {
        mount: str(Path(volume.local_dir).expanduser().resolve())
        for mount, volume in settings.volumes.items()
        if volume.local_dir is not None
    }


class EndpointTestClient:
    """Runs ``setup`` once, then serves requests to the endpoint without a network or a subprocess.

    ``overrides`` replace class settings as in ``gpuserve.deploy``; ``volume_paths`` maps mount
    paths to directories, defaulting to each volume's ``local_dir``.
    """

    def __init__(
        self, endpoint: type[Endpoint], *, volume_paths: dict[str, str] | None = None, **overrides: Any
    ) -> None:
        if volume_paths is None:
            volume_paths = _local_volume_paths(endpoint, overrides)
        self.host = EndpointHost(endpoint, endpoint.deployment_settings(**overrides), volume_paths=volume_paths)
        self._client: TestClient | None = None

    def __enter__(self) -> EndpointTestClient:
        self.host.start()
        if self.host.phase == FAILED:
            raise SetupFailedError(f"Setup failed: {self.host.report.error}", traceback=self.host.report.traceback)
        self._client = TestClient(create_app(self.host, start_setup=False), raise_server_exceptions=True)
        self._client.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._client is not None:
            self._client.__exit__(*exc_info)
            self._client = None

    @property
    def http(self) -> TestClient:
        """The underlying Starlette test client, for raw requests."""
        if self._client is None:
            raise RuntimeError(
                "Use EndpointTestClient as a context manager: with EndpointTestClient(Cls) as client: ..."
            )
        return self._client

    def predict(self, **inputs: Any) -> Any:
        """Call predict with ``inputs`` and return its output; errors raise like ``gpuserve.Client``."""
        response: Any = self.http.post("/predict", json=inputs)
        return read_output(response)

    def stream(self, **inputs: Any) -> Iterator[Any]:
        """Call a streaming predict and yield its items; an error event raises ``StreamError``."""
        response: Any
        with self.http.stream("POST", "/predict", json=inputs) as response:
            if response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
                yield from stream_items(response.iter_lines(), "the test client")
                return
            response.read()
            yield read_output(response)

    # Starlette's TestClient returns its own httpx-compatible responses, hence Any.
    def post(self, path: str, **kwargs: Any) -> Any:
        return self.http.post(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, **kwargs)
