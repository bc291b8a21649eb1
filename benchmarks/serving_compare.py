"""Compare gpuserve with LitServe and a plain FastAPI app serving the same small CPU torch model.

Every server serves the MLP of ``serving_mlp.py``: a request is ``{"x": [64 floats]}`` and the
response ``{"output": [16 floats]}``. The servers, each a subprocess on 127.0.0.1:

* fastapi: ``serving_fastapi.py`` under uvicorn, a ``def`` route in FastAPI's thread pool.
* litserve: ``serving_litserve.py``, one inference worker process with ``fast_queue=True``.
* gpuserve: ``python -m gpuserve.runtime benchmarks/serving_gpuserve.py:MLP``, which runs one
  ``predict`` at a time, the runtime's default.
* gpuserve-threads: ``serving_gpuserve.py:ThreadedMLP``, marked ``thread_safe`` with one predict
  thread per CPU.
* litserve-batched: ``serving_litserve.py --batch``, batches of up to 32 with a 5 ms timeout.
* gpuserve-batched: ``serving_gpuserve.py:BatchedMLP``, the same batch size and wait.

Only one server runs at a time. In each of ``--rounds`` rounds the script starts each server in
turn, checks that its output matches the model run in this process, and loads it with wrk at
each ``--concurrency`` level: ``--warmup`` untimed seconds, then ``--duration`` timed seconds.
The order of the servers reverses from one round to the next. wrk is a C load generator with
one thread and one keep-alive connection per request in flight, so the client uses little of
the 2 CPUs that the servers need on a small machine.

It prints requests per second and p50 and p99 latency (nearest rank over all rounds) per level
and server. It also prints the CPU time of the server's processes per request and the CPU share
of wrk and of other processes, all read from /proc, so the script runs on Linux only. Then it
prints the throughput ratios of gpuserve and gpuserve-threads to litserve and to fastapi, of
gpuserve-batched to litserve-batched, and of each batched server to its unbatched run.
It exits with status 1 if any timed request failed or returned a status other than 200.

Run: ``python benchmarks/serving_compare.py [--duration 5] [--rounds 2] [--concurrency 1 16 64]``.
Install the comparison packages first with ``pip install -r benchmarks/requirements-compare.txt``
and wrk with the system package manager (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO

import httpx
from runtime_overhead import free_port, process_cpu_seconds
from serving_mlp import INPUT_SIZE, OUTPUT_SIZE, build_mlp, example_input, hidden_size, run_mlp

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"
LOAD_SCRIPT = BENCHMARKS_DIR / "serving_load.lua"
GPUSERVE_ENDPOINTS = BENCHMARKS_DIR / "serving_gpuserve.py"

SERVER_NAMES = ["fastapi", "litserve", "gpuserve", "gpuserve-threads", "litserve-batched", "gpuserve-batched"]
GPUSERVE_CLASSES = {"gpuserve": "MLP", "gpuserve-threads": "ThreadedMLP", "gpuserve-batched": "BatchedMLP"}
READY_TIMEOUT = 120.0  # seconds until a server must return 200 from GET /health
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL to the server's process group
REQUEST_TIMEOUT = "10s"  # wrk counts a request without a response after this as failed
# torch.set_num_threads(1) in build_mlp limits only the thread that calls it. With torch 2.13 a
# forward pass of one row on another thread still runs MKL's matrix-vector product on an OpenMP
# team of one thread per CPU. FastAPI and gpuserve run the model on such a thread, so every
# server gets the thread limit from the environment as well.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
OUTPUT_TOLERANCE = 1e-5  # a batched matrix product may round differently from a single row
# Other people's jobs may share the machine, so each server starts only after one second in which
# the whole machine used under a quarter of a core, or after QUIET_TIMEOUT seconds of waiting.
QUIET_CPU = 0.25  # CPU seconds per second
QUIET_TIMEOUT = 30.0  # seconds


@dataclass
class Server:
    """One server subprocess, leader of its own process group, and the file with its output."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


@dataclass
class LoadResult:
    """Requests, latency histogram, wall and CPU seconds, and failures, summed over rounds."""

    requests: int = 0
    elapsed: float = 0.0
    latency_counts: dict[int, int] = field(default_factory=dict)  # microseconds -> requests
    errors: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cpu: float = 0.0

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.elapsed += other.elapsed
        for latency, count in other.latency_counts.items():
            self.latency_counts[latency] = self.latency_counts.get(latency, 0) + count
        self.errors += other.errors
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        self.other_cpu += other.other_cpu

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def latency_percentile(self, fraction: float) -> float:
        """Return the nearest-rank percentile of the latencies in seconds."""
        ordered = sorted(self.latency_counts.items())
        rank = max(1, math.ceil(fraction * sum(self.latency_counts.values())))
        seen = 0
        for latency, count in ordered:
            seen += count
            if seen >= rank:
                return latency / 1e6
        return math.nan


def server_command(name: str, port: int) -> list[str]:
    """Return the command line that serves the model as server ``name`` on ``port``."""
    address = ["--host", "127.0.0.1", "--port", str(port)]
    if name == "fastapi":
        uvicorn = [sys.executable, "-m", "uvicorn", "serving_fastapi:app", "--app-dir", str(BENCHMARKS_DIR)]
        return [*uvicorn, *address, "--no-access-log", "--log-level", "warning"]
    if name in ("litserve", "litserve-batched"):
        batch = ["--batch"] if name == "litserve-batched" else []
        return [sys.executable, str(BENCHMARKS_DIR / "serving_litserve.py"), *address, *batch]
    return [sys.executable, "-m", "gpuserve.runtime", f"{GPUSERVE_ENDPOINTS}:{GPUSERVE_CLASSES[name]}", *address]


def start_server(name: str) -> Server:
    """Start server ``name`` in a new session, so that stopping it reaches all its processes."""
    port = free_port()
    # The gpuserve runtime exits when this process is gone, so a killed benchmark leaves no server.
    env = {**os.environ, **ONE_THREAD_ENV, "GPUSERVE_PARENT_PID": str(os.getpid())}
    log = tempfile.TemporaryFile(prefix=f"gpuserve-compare-{name}-")  # noqa: SIM115, stop_server closes it
    try:
        process = subprocess.Popen(
            server_command(name, port),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError:
        log.close()
        raise
    return Server(name=name, url=f"http://127.0.0.1:{port}", process=process, log=log)


def stop_server(server: Server) -> None:
    """Send SIGTERM to the server's process group, then SIGKILL after STOP_GRACE seconds."""
    group = server.process.pid  # the leader of a new session also leads its process group
    try:
        os.killpg(group, signal.SIGTERM)
        try:
            server.process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        # LitServe's worker processes may outlive their parent, so the group is killed in any case.
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass  # every process of the group has exited
    server.process.wait()
    server.log.close()


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
            time.sleep(0.1)
    raise RuntimeError(f"The {server.name} server was not ready within {timeout:g} s:\n{log_tail(server)}")


def check_output(server: Server, body: bytes, expected: list[float]) -> None:
    """Raise RuntimeError unless the server returns the model's output for ``body``."""
    response = httpx.post(
        f"{server.url}/predict", content=body, headers={"Content-Type": "application/json"}, timeout=30.0
    )
    output = response.json().get("output") if response.status_code == 200 else None
    if not isinstance(output, list) or len(output) != len(expected):
        raise RuntimeError(
            f"The {server.name} server returned {response.status_code} {response.text[:300]!r}, "
            f"expected 200 and {{'output': [{len(expected)} floats]}}."
        )
    difference = max(abs(got - want) for got, want in zip(output, expected, strict=True))
    if difference > OUTPUT_TOLERANCE:
        raise RuntimeError(
            f"The {server.name} server's output differs from the model's by up to {difference:.3g}, "
            f"more than {OUTPUT_TOLERANCE:g}; it does not serve the same model."
        )


def session_cpu_seconds(session_id: int) -> float:
    """Return the CPU time of every live process in session ``session_id``, read from /proc."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            if int(fields[3]) == session_id:  # field 6 of proc(5), the session ID
                total += process_cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # the process exited while the loop read it
    return total


def busy_cpu_seconds() -> float:
    """Return the user, system and steal CPU time of the whole machine, from /proc/stat.

    Interrupt time is left out because the benchmark's own loopback traffic causes most of it.
    """
    with open("/proc/stat") as handle:
        user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, handle.readline().split()[1:9])
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet_machine(timeout: float = QUIET_TIMEOUT) -> None:
    """Wait until the machine spends under QUIET_CPU of a core for one second, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = busy_cpu_seconds()
        time.sleep(1.0)
        if busy_cpu_seconds() - busy < QUIET_CPU:
            return
    print(f"The machine was still busy after {timeout:g} s; measuring anyway.", file=sys.stderr)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_wrk_result(path: Path) -> LoadResult:
    result = LoadResult()
    for line in path.read_text().splitlines():
        key, *values = line.split()
        if key == "requests":
            result.requests = int(values[0])
        elif key == "duration_us":
            result.elapsed = int(values[0]) / 1e6
        elif key in ("non_200", "socket_errors", "timeouts"):
            result.errors += int(values[0])
        elif key == "latency_us":
            result.latency_counts[int(values[0])] = int(values[1])
    return result


def run_wrk(server: Server, concurrency: int, seconds: float, body_file: Path, work_dir: Path) -> LoadResult:
    """Load the server with wrk and record the CPU time of the server, of wrk and of the rest."""
    result_file = work_dir / "wrk-result.txt"
    result_file.unlink(missing_ok=True)
    command = [
        "wrk", "--threads", "1", "--connections", str(concurrency), "--duration", f"{seconds:g}s",
        "--timeout", REQUEST_TIMEOUT, "--script", str(LOAD_SCRIPT), f"{server.url}/predict",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_RESULT_FILE": str(result_file)}

    server_cpu = session_cpu_seconds(server.process.pid)
    client_cpu = children_cpu_seconds()
    busy_cpu = busy_cpu_seconds()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    server_cpu = session_cpu_seconds(server.process.pid) - server_cpu
    client_cpu = children_cpu_seconds() - client_cpu
    busy_cpu = busy_cpu_seconds() - busy_cpu

    if completed.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"wrk failed with code {completed.returncode}:\n{completed.stderr or completed.stdout}")
    result = read_wrk_result(result_file)
    result.server_cpu = server_cpu
    result.client_cpu = client_cpu
    result.other_cpu = max(0.0, busy_cpu - server_cpu - client_cpu)
    return result


def measure_server(
    name: str, args: argparse.Namespace, body_file: Path, expected: list[float], work_dir: Path
) -> dict[int, LoadResult]:
    """Start one server, load it at every concurrency level and stop it; return a result per level."""
    wait_for_quiet_machine()
    server = start_server(name)
    try:
        wait_ready(server)
        check_output(server, body_file.read_bytes(), expected)
        results = {}
        for concurrency in args.concurrency:
            if args.warmup > 0:
                run_wrk(server, concurrency, args.warmup, body_file, work_dir)
            results[concurrency] = run_wrk(server, concurrency, args.duration, body_file, work_dir)
    finally:
        stop_server(server)
    return results


TABLE_HEADER = (
    f"{'concurrency':>11}  {'server':<16}  {'requests':>8}  {'req/s':>6}  {'p50 ms':>6}  {'p99 ms':>7}"
    f"  {'server CPU us/req':>17}  {'wrk CPU %':>9}  {'other CPU %':>11}  {'errors':>6}"
)


def format_row(concurrency: int, name: str, result: LoadResult) -> str:
    per_request = result.server_cpu / result.requests * 1e6 if result.requests else math.nan
    return (
        f"{concurrency:>11}  {name:<16}  {result.requests:>8}  {result.requests_per_second:>6.0f}"
        f"  {result.latency_percentile(0.50) * 1000:>6.2f}  {result.latency_percentile(0.99) * 1000:>7.2f}"
        f"  {per_request:>17.0f}  {result.client_cpu / result.elapsed * 100:>9.0f}"
        f"  {result.other_cpu / result.elapsed * 100:>11.0f}  {result.errors:>6}"
    )


RATIOS = [
    ("gpuserve", "litserve"),
    ("gpuserve", "fastapi"),
    ("gpuserve-threads", "litserve"),
    ("gpuserve-threads", "fastapi"),
    ("gpuserve-batched", "litserve-batched"),
    ("gpuserve-batched", "gpuserve"),
    ("litserve-batched", "litserve"),
]


def format_ratios(results: dict[str, LoadResult]) -> str:
    """Return the throughput ratios of the server pairs that were both measured, or ""."""
    parts = [
        f"{top}/{bottom} {results[top].requests_per_second / results[bottom].requests_per_second:.2f}"
        for top, bottom in RATIOS
        if top in results and bottom in results and results[bottom].requests_per_second > 0
    ]
    return f"{'':>11}  throughput " + ", ".join(parts) if parts else ""


def time_forward(rows: int, repeats: int = 200) -> float:
    """Return the mean seconds of one forward pass of ``rows`` input rows in this process."""
    model = build_mlp()
    batch = [example_input()] * rows
    run_mlp(model, batch)
    began = time.perf_counter()
    for _ in range(repeats):
        run_mlp(model, batch)
    return (time.perf_counter() - began) / repeats


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def describe_machine() -> list[str]:
    model_name = next(
        (line.partition(":")[2].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown",
    )  # fmt: skip
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0]
    packages = ["gpuserve", "litserve", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "torch"]
    return [
        f"Machine: {os.cpu_count()} CPUs ({model_name}), Python {platform.python_version()}, {wrk_version}",
        "Packages: " + ", ".join(f"{name} {package_version(name)}" for name in packages),
        f"Model: MLP {INPUT_SIZE}-{hidden_size()}-{hidden_size()}-{OUTPUT_SIZE}, float32, 1 torch thread per process; "
        f"forward of 1 row {time_forward(1) * 1e6:.0f} us, of 32 rows {time_forward(32) * 1e6:.0f} us",
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="timed seconds per server, level and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds per server and level, each round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, reversing the server order each round")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16, 64], help="levels: requests in flight at once"
    )
    parser.add_argument(
        "--servers", nargs="+", choices=SERVER_NAMES, default=SERVER_NAMES, help="servers to compare, in this order"
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--duration must be at least 1, --warmup at least 0 and --rounds at least 1")
    if min(args.concurrency) < 1:
        parser.error("--concurrency values must be at least 1")
    if shutil.which("wrk") is None:
        parser.error("wrk not found on PATH; install it, for example with `apt-get install wrk`")
    for package in sorted({name.partition("-")[0] for name in args.servers} & {"litserve", "fastapi"}):
        if importlib.util.find_spec(package) is None:
            parser.error(
                f"{package} is not installed; install the comparison packages with "
                f"`pip install -r benchmarks/requirements-compare.txt`, or leave out its servers with --servers"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("\n".join(describe_machine()))
    print(
        f"Load: wrk, {args.duration:g} s timed and {args.warmup:g} s warm-up per server, level and round, "
        f"{args.rounds} rounds\n"
    )

    totals = {name: {level: LoadResult() for level in args.concurrency} for name in args.servers}
    with tempfile.TemporaryDirectory(prefix="gpuserve-compare-") as work:
        work_dir = Path(work)
        body_file = work_dir / "body.json"
        body_file.write_text(json.dumps({"x": example_input()}))
        expected = run_mlp(build_mlp(), [example_input()])[0]
        for round_index in range(args.rounds):
            order = args.servers if round_index % 2 == 0 else args.servers[::-1]
            for name in order:
                for level, result in measure_server(name, args, body_file, expected, work_dir).items():
                    totals[name][level].add(result)
                print(f"round {round_index + 1}: {name} done", file=sys.stderr)

    print(TABLE_HEADER)
    for level in args.concurrency:
        level_results = {name: totals[name][level] for name in args.servers}
        for name, result in level_results.items():
            print(format_row(level, name, result))
        if ratios := format_ratios(level_results):
            print(ratios)

    errors = sum(result.errors for levels in totals.values() for result in levels.values())
    if errors:
        print(f"\n{errors} requests failed or returned a status other than 200.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
