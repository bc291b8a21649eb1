"""Measure the per-request overhead of the gpuserve runtime against a bare Starlette app.

Two servers, or three with ``--inherited-socket``, run as uvicorn subprocesses on 127.0.0.1:

* bare: ``benchmarks/bare_echo_app.py``, which parses the JSON body and repeats the text inline.
* gpuserve: ``python -m gpuserve.runtime examples/tiny.py:Echo``, which does the same work behind
  input validation, readiness checks and the single predict thread of the runtime.
* gpuserve-fd, with ``--inherited-socket`` only: the same runtime started with ``--fd`` on a
  socket that this script binds, which is how the local backend's front door starts its worker.

One httpx async load generator in this process sends the same POST /predict body to each. For
each concurrency level it sends ``--warmup`` untimed requests to each server, then ``--requests``
timed requests to each, split into ``--rounds`` rounds. The order of the servers reverses from
one round to the next, so no server always runs on a warmer or cooler machine. It prints
requests per second, p50 and p99 latency per server, and each server's ratios to bare.

It also prints the CPU time each server process spent per request (from /proc, so Linux only)
and the CPU share of the load generator. When the load generator is near 100 %, it limits the
request rate, and server CPU per request is the better measure of the runtime's own cost.

The load generator runs on the same machine as the servers and competes with them for CPU, so
the figures describe this setup, not the runtime's throughput on a dedicated server.

Run: ``python benchmarks/runtime_overhead.py [--requests 3000] [--concurrency 1 16] [--inherited-socket]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"
ECHO_REFERENCE = f"{REPO_ROOT / 'examples' / 'tiny.py'}:Echo"

REQUEST_BODY = json.dumps({"text": "hello", "times": 3}).encode()
EXPECTED_OUTPUT = "hello hello hello"
READY_TIMEOUT = 60.0  # seconds until a server must return 200 from GET /health
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL


@dataclass
class Server:
    """One server subprocess and the log file that receives its output."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


@dataclass
class LoadResult:
    """Latencies, wall time and CPU time in seconds, and failed requests, summed over rounds."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def add(self, other: LoadResult) -> None:
        self.latencies.extend(other.latencies)
        self.elapsed += other.elapsed
        self.errors += other.errors
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    name: str,
    command: list[str],
    port: int,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Server:
    """Start ``command`` with its output in a temporary log file."""
    log = tempfile.TemporaryFile(prefix=f"gpuserve-bench-{name}-")  # noqa: SIM115, stop_server closes it
    try:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
    except OSError:
        log.close()
        raise
    return Server(name=name, url=f"http://127.0.0.1:{port}", process=process, log=log)


def start_bare(port: int) -> Server:
    command = [
        sys.executable, "-m", "uvicorn", "bare_echo_app:app",
        "--app-dir", str(BENCHMARKS_DIR),
        "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return start_server("bare", command, port)


def runtime_env() -> dict[str, str]:
    # The runtime exits when this process is gone, so a killed benchmark leaves no server behind.
    return {**os.environ, "GPUSERVE_PARENT_PID": str(os.getpid())}


def start_gpuserve(port: int) -> Server:
    command = [sys.executable, "-m", "gpuserve.runtime", ECHO_REFERENCE, "--host", "127.0.0.1", "--port", str(port)]
    return start_server("gpuserve", command, port, runtime_env())


def start_gpuserve_on_socket() -> Server:
    """Start the runtime on a socket bound here and passed with ``--fd``, as the local backend starts workers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        command = [sys.executable, "-m", "gpuserve.runtime", ECHO_REFERENCE, "--fd", str(sock.fileno())]
        return start_server("gpuserve-fd", command, port, runtime_env(), pass_fds=(sock.fileno(),))


def log_tail(server: Server, lines: int = 20) -> str:
    server.log.seek(0)
    text = server.log.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(server: Server, timeout: float = READY_TIMEOUT) -> None:
    """Poll GET /health until it returns 200. Raise RuntimeError if the server exits or times out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"The {server.name} server exited with code {server.process.returncode}:\n{log_tail(server)}"
                )
            try:
                if client.get(f"{server.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # the port is not open yet
            time.sleep(0.05)
    raise RuntimeError(f"The {server.name} server was not ready within {timeout:g} s:\n{log_tail(server)}")


def stop_server(server: Server) -> None:
    """Stop the server with SIGTERM, then SIGKILL after STOP_GRACE seconds."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    server.log.close()


def process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of process ``pid``, read from /proc (Linux only)."""
    with open(f"/proc/{pid}/stat") as handle:
        # The command name in field 2 may contain spaces, so split after its closing bracket.
        fields = handle.read().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


async def run_timed_load(client: httpx.AsyncClient, server: Server, requests: int, concurrency: int) -> LoadResult:
    """Run the load and record the CPU time that the server and this process spent on it."""
    server_cpu = process_cpu_seconds(server.process.pid)
    client_cpu = time.process_time()
    result = await run_load(client, f"{server.url}/predict", requests, concurrency)
    result.server_cpu = process_cpu_seconds(server.process.pid) - server_cpu
    result.client_cpu = time.process_time() - client_cpu
    return result


def make_client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=30.0, headers={"Content-Type": "application/json"})


async def run_load(client: httpx.AsyncClient, url: str, requests: int, concurrency: int) -> LoadResult:
    """Send ``requests`` POSTs to ``url`` from ``concurrency`` workers that each wait for their reply."""
    result = LoadResult()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            response = await client.post(url, content=REQUEST_BODY)
            result.latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                result.errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


async def check_output(client: httpx.AsyncClient, server: Server) -> None:
    """Raise RuntimeError unless the server returns Echo's output, so both servers do the same work."""
    response = await client.post(f"{server.url}/predict", content=REQUEST_BODY)
    if response.status_code != 200 or response.json() != {"output": EXPECTED_OUTPUT}:
        raise RuntimeError(
            f"The {server.name} server returned {response.status_code} {response.text!r}, "
            f"expected 200 {{'output': {EXPECTED_OUTPUT!r}}}."
        )


async def measure_level(
    servers: list[Server], requests: int, concurrency: int, warmup: int, rounds: int
) -> dict[str, LoadResult]:
    """Load every server at one concurrency level and return the summed result per server name."""
    clients = {server.name: make_client(concurrency) for server in servers}
    results = {server.name: LoadResult() for server in servers}
    try:
        for server in servers:
            await check_output(clients[server.name], server)
            await run_load(clients[server.name], f"{server.url}/predict", warmup, concurrency)

        for round_index in range(rounds):
            # The last round takes the remainder so that each server gets exactly ``requests``.
            count = requests // rounds + (requests % rounds if round_index == rounds - 1 else 0)
            order = servers if round_index % 2 == 0 else servers[::-1]
            for server in order:
                result = await run_timed_load(clients[server.name], server, count, concurrency)
                results[server.name].add(result)
    finally:
        for client in clients.values():
            await client.aclose()
    return results


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``, ``fraction`` in (0, 1]."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


TABLE_HEADER = (
    f"{'concurrency':>11}  {'server':<11}  {'requests':>8}  {'req/s':>6}  {'p50 ms':>6}  {'p99 ms':>6}"
    f"  {'server CPU us/req':>17}  {'client CPU %':>12}  {'errors':>6}"
)


def format_results(concurrency: int, results: dict[str, LoadResult]) -> list[str]:
    lines = []
    for name, result in results.items():
        count = len(result.latencies)
        lines.append(
            f"{concurrency:>11}  {name:<11}  {count:>8}  {result.requests_per_second:>6.0f}"
            f"  {percentile(result.latencies, 0.50) * 1000:>6.2f}  {percentile(result.latencies, 0.99) * 1000:>6.2f}"
            f"  {result.server_cpu / count * 1e6:>17.0f}  {result.client_cpu / result.elapsed * 100:>12.0f}"
            f"  {result.errors:>6}"
        )
    bare = results["bare"]
    for name, result in results.items():
        if name == "bare":
            continue
        throughput_ratio = result.requests_per_second / bare.requests_per_second
        p50_ratio = percentile(result.latencies, 0.50) / percentile(bare.latencies, 0.50)
        cpu_ratio = result.server_cpu / bare.server_cpu if bare.server_cpu > 0 else math.nan
        lines.append(
            f"{'':>11}  {name}/bare: throughput {throughput_ratio:.2f}, p50 latency {p50_ratio:.2f}, "
            f"server CPU per request {cpu_ratio:.2f}"
        )
    return lines


def describe_machine() -> str:
    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, uvicorn {version('uvicorn')}, "
        f"starlette {version('starlette')}, httpx {version('httpx')}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per server and concurrency level")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 16],
        help="concurrency levels: requests in flight at once",
    )
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per server before each level")
    parser.add_argument(
        "--inherited-socket",
        action="store_true",
        help="also load a gpuserve runtime started with --fd on a socket bound by this script, "
        "the way the local backend starts its worker",
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds per level, reversing the server order each round")
    args = parser.parse_args(argv)
    if args.requests < args.rounds or args.rounds < 1:
        parser.error("--requests must be at least --rounds, and --rounds at least 1")
    if min(args.concurrency) < 1 or args.warmup < 0:
        parser.error("--concurrency values must be at least 1 and --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Machine: {describe_machine()}")
    print(f"Load: {args.requests} timed requests per server and level, {args.warmup} warm-up, {args.rounds} rounds\n")

    servers: list[Server] = []
    try:
        servers.append(start_bare(free_port()))
        servers.append(start_gpuserve(free_port()))
        if args.inherited_socket:
            servers.append(start_gpuserve_on_socket())
        for server in servers:
            wait_ready(server)

        print(TABLE_HEADER)
        errors = 0
        for concurrency in args.concurrency:
            results = asyncio.run(measure_level(servers, args.requests, concurrency, args.warmup, args.rounds))
            print("\n".join(format_results(concurrency, results)))
            errors += sum(result.errors for result in results.values())
    finally:
        for server in servers:
            stop_server(server)

    if errors:
        print(f"\n{errors} requests failed. The figures above include them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
