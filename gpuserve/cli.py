"""The ``gpuserve`` command line: deploy, call, inspect and delete endpoints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .backends import BACKENDS
from .errors import ConfigError, GpuserveError, PredictError
from .planner.command import add_arguments as add_plan_arguments

_INPUT_HELP = (
    "inputs as key=value (a string) or key:=JSON (any JSON value), e.g. text=hello times:=3; "
    "combined with --data, these win"
)


class Progress:
    """A one-line status display on a terminal: a spinner, the current step and the elapsed time."""

    _FRAMES = "|/-\\"

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._message = ""
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self._tty:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._stream.write("\r\033[K")
            self._stream.flush()

    def update(self, message: str) -> None:
        """Show ``message`` as the current step; without a terminal, print it as a line."""
        if self._tty:
            self._stream.write(f"\r\033[K  {message}\n")
        else:
            self._stream.write(f"{message}\n")
        self._message = message
        self._stream.flush()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - self._began
            self._stream.write(f"\r\033[K{self._FRAMES[frame % 4]} {self._message} ({elapsed:.0f} s)")
            self._stream.flush()
            frame += 1


def parse_inputs(data: str | None, pairs: Sequence[str]) -> dict[str, Any]:
    """Merge a JSON object from ``--data`` with ``key=value`` and ``key:=JSON`` arguments."""
    inputs: dict[str, Any] = {}
    if data:
        try:
            decoded = json.loads(data)
        except ValueError as exc:
            raise GpuserveError(
                f'--data is not valid JSON ({exc}); pass an object such as \'{{"text": "hi"}}\'.'
            ) from None
        if not isinstance(decoded, dict):
            raise GpuserveError(
                f'--data must be a JSON object of inputs, got {type(decoded).__name__}; e.g. \'{{"text": "hi"}}\'.'
            )
        inputs.update(decoded)
    for pair in pairs:
        equals = pair.find("=")
        if equals <= 0 or (equals == 1 and pair[0] == ":"):
            raise GpuserveError(f"Invalid input {pair!r}; write key=value or key:=JSON, for example times:=3.")
        # Whichever separator comes first decides, so "text=a:=b" is the string "a:=b".
        if pair[equals - 1] == ":":
            key, value = pair[: equals - 1], pair[equals + 1 :]
            try:
                inputs[key] = json.loads(value)
            except ValueError as exc:
                raise GpuserveError(f"Invalid JSON in {pair!r} ({exc}); use key=value for plain strings.") from None
        else:
            inputs[pair[:equals]] = pair[equals + 1 :]
    return inputs


def _cmd_deploy(args: argparse.Namespace) -> int:
    from .backends import get_backend
    from .deployment import deploy
    from .loader import load_endpoint

    overrides = parse_inputs(None, args.set) if args.set else {}
    endpoint = load_endpoint(args.endpoint)
    get_backend(args.backend)  # an unknown backend fails before any progress line
    try:
        with Progress() as progress:
            progress.update(f"Deploying {endpoint.__name__} on the {args.backend} backend")
            deployment = deploy(endpoint, backend=args.backend, name=args.name, progress=progress.update, **overrides)
    except ConfigError as exc:
        hint = _json_hint(args.set, overrides)
        raise ConfigError(f"{exc} {hint}" if hint else str(exc)) from exc
    print(f"Deployed {deployment.name!r} at {deployment.url}")
    print(f"Call it with: gpuserve predict {deployment.name} --data '{{...}}'")
    return 0


def _json_hint(pairs: Sequence[str], overrides: dict[str, Any]) -> str:
    """Suggest key:=JSON for --set values given as strings that read as JSON numbers, booleans or null."""
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key.endswith(":") or not isinstance(overrides.get(key), str):
            continue
        try:
            json.loads(value)
        except ValueError:
            continue
        return f"--set {key}={value} sends the string {value!r}; write --set {key}:={value} for a JSON value."
    return ""


def _cmd_predict(args: argparse.Namespace) -> int:
    from .backends import get_backend
    from .deployment import Deployment

    inputs = parse_inputs(args.data, args.inputs)
    deployment = Deployment.get(args.name)
    backend = get_backend(deployment.backend)
    backend.ensure_serving(deployment.record)
    if backend.calls_over_http() and args.stream:
        with deployment.client(deadline=args.deadline) as client:
            for item in client.stream(**inputs):
                print(json.dumps(item), flush=True)
        return 0
    if backend.calls_over_http():
        with deployment.client(deadline=args.deadline) as client:
            output = client.predict(**inputs)
    else:
        output = backend.invoke(deployment.record, inputs, deadline=args.deadline)
    print(json.dumps(output, indent=None if args.compact else 2))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .deployment import list_deployments

    deployments = list_deployments()
    if not deployments:
        print("No deployments. Create one with: gpuserve deploy FILE.py:Class")
        return 0
    print(f"{'NAME':<24} {'BACKEND':<10} {'STATE':<16} URL")
    for deployment in deployments:
        try:
            state = deployment.status().get("state", "unknown")
        except GpuserveError as exc:
            state = f"error: {exc}"[:16]
        print(f"{deployment.name:<24} {deployment.backend:<10} {state:<16} {deployment.url}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .deployment import Deployment

    status = Deployment.get(args.name).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    history = status.pop("cold_start_history", None)
    for key, value in status.items():
        print(f"{key + ':':<26} {value}")
    if history:
        recent = ", ".join(f"{entry['seconds']:.2f} s" for entry in history[-5:])
        print(f"{'recent cold starts:':<26} {recent}")
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from .deployment import Deployment

    token = Deployment.get(args.name).token
    if token is None:
        raise GpuserveError(f"Deployment {args.name!r} needs no token. Deploy it with --set auth:=true to require one.")
    print(token)
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    from .deployment import Deployment

    deployment = Deployment.get(args.name)
    if args.tail != 0:
        sys.stdout.write(deployment.logs(tail=args.tail))
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from .deployment import Deployment

    Deployment.get(args.name).delete()
    print(f"Deleted {args.name!r}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .loader import load_endpoint
    from .runtime.__main__ import main as serve

    load_endpoint(args.endpoint)  # a wrong file or class fails here with one line, before the server starts
    serve([args.endpoint, "--host", args.host, "--port", str(args.port), "--exit-on-setup-failure"])
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from .planner.command import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpuserve", description="Deploy and call scale-to-zero model endpoints.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    parser.add_argument("--version", action="version", version=f"gpuserve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    deploy = commands.add_parser("deploy", help="deploy an endpoint class and wait until it is ready")
    deploy.add_argument(
        "endpoint", metavar="MODULE_OR_FILE:CLASS", help="e.g. examples/tiny.py:Echo or myapp.serve:Embed"
    )
    deploy.add_argument("--backend", default="local", help=f"where to deploy: {', '.join(BACKENDS)} (default: local)")
    deploy.add_argument("--name", help="deployment name (default: the class name in kebab case)")
    deploy.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting or deploy option, e.g. --set idle_timeout:=120 --set gpu=L4 --set gpu:=null "
        "(no GPU) --set port:=9000 --set keep_image:=true --set auth:=true --set public:=true",
    )

    deploy.set_defaults(handler=_cmd_deploy)

    predict = commands.add_parser("predict", help="call a deployment's predict and print the output as JSON")
    predict.add_argument("name", help="deployment name")
    predict.add_argument("inputs", nargs="*", metavar="KEY=VALUE", help=_INPUT_HELP)
    predict.add_argument("--data", "-d", help="inputs as one JSON object")
    predict.add_argument(
        "--deadline", type=float, default=600.0, help="seconds to wait through a cold start (default: 600)"
    )
    predict.add_argument("--compact", action="store_true", help="print the JSON on one line")
    predict.add_argument(
        "--stream", action="store_true", help="print each item of a streaming endpoint as it arrives, one per line"
    )
    predict.set_defaults(handler=_cmd_predict)

    listing = commands.add_parser("list", help="list deployments and their state")
    listing.set_defaults(handler=_cmd_list)

    status = commands.add_parser("status", help="show a deployment's state, instances and cold starts")
    status.add_argument("name", help="deployment name")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_cmd_status)

    token = commands.add_parser("token", help="print the bearer token that requests to a deployment must carry")
    token.add_argument("name", help="deployment name")
    token.set_defaults(handler=_cmd_token)

    logs = commands.add_parser("logs", help="print a deployment's logs")
    logs.add_argument("name", help="deployment name")
    logs.add_argument("--tail", type=_count, help="print only the last N lines")
    logs.set_defaults(handler=_cmd_logs)

    delete = commands.add_parser("delete", help="stop a deployment and remove what it created")
    delete.add_argument("name", help="deployment name")
    delete.set_defaults(handler=_cmd_delete)

    serve = commands.add_parser("serve", help="run an endpoint in the foreground, for development")
    serve.add_argument("endpoint", metavar="MODULE_OR_FILE:CLASS")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=int(os.environ.get("PORT", "8080")), help="port (default: $PORT or 8080)"
    )
    serve.set_defaults(handler=_cmd_serve)

    plan = commands.add_parser(
        "plan", help="estimate monthly cost, cold starts, waits and energy of an endpoint on each provider"
    )
    add_plan_arguments(plan)
    plan.set_defaults(handler=_cmd_plan)
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}; use a number from 1 to 65535, or 0 for a free port")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid count {text!r}; use a whole number of 0 or more")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops collecting positional inputs at the first option, so `predict NAME --data {} k=v`
    # leaves k=v over; inputs may come anywhere, like in HTTPie.
    if (
        extra
        and args.command in ("predict", "plan")
        and all("=" in item and not item.startswith("-") for item in extra)
    ):
        args.inputs = [*args.inputs, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
        return code
    except GpuserveError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {first_line}", file=sys.stderr)
        details = getattr(exc, "traceback", None) or getattr(exc, "output", None)
        if details:
            print(details, file=sys.stderr)
        if isinstance(exc, PredictError) and args.command == "predict":
            print(f"The traceback is in the endpoint's log: gpuserve logs {args.name}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout, such as `head`, has exited; stop writing, like other command-line tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
