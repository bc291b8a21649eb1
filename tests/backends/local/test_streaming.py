"""Streams pass through the local front door item by item, to the client and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import gpuserve
from gpuserve.deployment import Deployment

from ...conftest import REPO, wait_for
from ...endpoints.streaming import Letters, Ticker


def test_front_door_streams_items_as_made(
    deployments: list[Deployment], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_LOG", str(tmp_path / "stream.log"))
    deployment = gpuserve.deploy(Ticker, name="ticker")
    deployments.append(deployment)
    arrivals = []
    began = time.monotonic()
    with deployment.client() as client:
        for item in client.stream(count=4, interval=0.5):
            arrivals.append((item, time.monotonic() - began))
    assert [item for item, _ in arrivals] == [0, 1, 2, 3]
    # The first item arrives long before the last one is made, so nothing buffers the stream.
    assert arrivals[-1][1] - arrivals[0][1] > 1.2, arrivals


def test_cli_prints_one_item_per_line(deployments: list[Deployment]) -> None:
    deployment = gpuserve.deploy(Letters, name="letters")
    deployments.append(deployment)
    result = subprocess.run(
        [sys.executable, "-m", "gpuserve", "predict", "letters", "--stream"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['"a"', "[1, 2]", '"b"']


def test_front_door_disconnect_closes_generator(
    deployments: list[Deployment], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "stream.log"
    monkeypatch.setenv("STREAM_LOG", str(log))
    deployment = gpuserve.deploy(Ticker, name="ticker-gone")
    deployments.append(deployment)
    received = []
    with httpx.stream(
        "POST", f"{deployment.url}/predict", json={"count": 200, "interval": 0.05, "tag": "t"}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(int(line[6:]))
            if len(received) == 3:
                break
    left_at = time.time()
    wait_for(lambda: log.exists() and "closed t" in log.read_text(), timeout=5)
    closed_at = float(next(line for line in log.read_text().splitlines() if line.endswith("closed t")).split()[0])
    assert closed_at - left_at < 1.0
