"""Modal fixtures: the tiny example as a deploy spec, and a guard that keeps the SDK off the network.

Only the live test (marked ``cloud``) may open a connection to Modal. In every other test an attempt
fails at once, where the SDK would otherwise retry against Modal's servers for about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

modal = pytest.importorskip("modal", reason="the modal extra is not installed")

from modal._utils.async_utils import synchronizer  # noqa: E402

from gpuserve.backends.base import DeploySpec  # noqa: E402
from gpuserve.backends.modal.server import GpuserveServer  # noqa: E402
from gpuserve.endpoint import Endpoint  # noqa: E402
from gpuserve.loader import load_endpoint  # noqa: E402

from ...conftest import REPO  # noqa: E402

#: The example as a file reference, the form ``gpuserve deploy examples/tiny.py:Echo`` passes on.
ECHO_REFERENCE = "examples/tiny.py:Echo"
FAILING_REFERENCE = "tests.endpoints.failing_setup:FailingSetup"


def load_echo() -> type[Endpoint]:
    """Import examples/tiny.py:Echo as the CLI does, which also makes ``tiny`` importable."""
    return load_endpoint(f"{REPO / 'examples' / 'tiny.py'}:Echo")


def make_spec(reference: str = ECHO_REFERENCE, name: str = "echo", **overrides: Any) -> DeploySpec:
    """Build the deploy spec of ``reference`` with setting overrides, as ``gpuserve.deploy`` does."""
    endpoint = load_echo() if reference.endswith("tiny.py:Echo") else load_endpoint(reference)
    return DeploySpec(
        name=name,
        endpoint_class=endpoint,
        reference=reference,
        settings=endpoint.deployment_settings(**overrides),
        project_dir=Path(REPO),
    )


def raw_object(wrapped: Any) -> Any:
    """Return the object inside a modal wrapper, such as the ``_Function`` of a ``modal.Function``."""
    return synchronizer._translate_in(wrapped)  # type: ignore[no-untyped-call]


def start_container(server: GpuserveServer) -> Any:
    """Run the server's enter method, then its ASGI method, as Modal does in a container; return the ASGI app."""
    enter: Any = GpuserveServer.load
    web: Any = GpuserveServer.web
    enter._get_raw_f()(server)
    return web._get_raw_f()(server)


@pytest.fixture(autouse=True)
def offline_modal(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make any connection the modal SDK opens fail at once, except in tests marked ``cloud``."""
    if request.node.get_closest_marker("cloud") is None:

        async def reject_connection(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a test tried to connect to Modal's servers")

        monkeypatch.setattr(modal.client._Client, "_open", reject_connection)
    yield
