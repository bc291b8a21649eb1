"""The tiny example, in-process."""

from __future__ import annotations

import sys

import pytest

import gpuserve
from gpuserve.testing import EndpointTestClient

from ..conftest import REPO

sys.path.insert(0, str(REPO / "examples"))
from tiny import Echo  # noqa: E402


def test_echo_repeats_and_shouts() -> None:
    with EndpointTestClient(Echo) as client:
        assert client.predict(text="hi") == "hi"
        assert client.predict(text="hi", times=3, style="shout") == "HI HI HI"


def test_echo_rejects_times_over_ten() -> None:
    with EndpointTestClient(Echo) as client, pytest.raises(gpuserve.InvalidInputError, match="times"):
        client.predict(text="hi", times=11)
