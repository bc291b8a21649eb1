"""Start the serving runtime: ``python -m gpuserve.runtime module:Class [serve] [--host H] [--port P]``.

The port comes from ``--port``, else ``$PORT`` (Cloud Run, Modal), else 8080. The trailing
``serve`` argument is what SageMaker appends when it starts a container; SageMaker requires
port 8080 unless it sets ``SAGEMAKER_BIND_TO_PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..envvars import PARENT_PID_ENV, SETTINGS_ENV

if TYPE_CHECKING:
    from .host import EndpointHost

logger = logging.getLogger("gpuserve.runtime")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpuserve.runtime", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the endpoint class, as module:Class or path/to/file.py:Class")
    parser.add_argument("command", nargs="?", choices=["serve"], help="SageMaker's start argument")
    parser.add_argument("--host", default=os.environ.get("GPUSERVE_HOST", "0.0.0.0"), help="address to bind")
    parser.add_argument("--port", type=int, default=None, help="port to listen on")
    parser.add_argument("--fd", type=int, default=None, help="listen on this inherited, bound socket instead")
    parser.add_argument(
        "--exit-on-setup-failure",
        action="store_true",
        help="exit with code 1 when import or setup fails, instead of serving the failure on /health",
    )
    return parser.parse_intermixed_args(argv)


def _choose_port(args: argparse.Namespace) -> int:
    if args.port is not None:
        return int(args.port)
    if args.command == "serve":
        return int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    return int(os.environ.get("PORT", "8080"))


def _exit_with_parent(parent_pid: int) -> None:
    """Stop this server when the process that started it is gone, so no worker is orphaned."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        logger.warning("Parent process %d exited; shutting down.", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="gpuserve-parent-watch", daemon=True).start()


def _server_class() -> type[Any]:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """A uvicorn server that drains in-flight requests on SIGTERM or SIGINT, then exits 0.

        On the first signal the host reports ``stopping``: health and new requests get 503 while
        admitted requests finish, for up to the endpoint's ``shutdown_grace`` seconds. A second
        signal stops at once. uvicorn alone would close the port at once, and re-raise the signal
        after shutting down, so the process would end by the signal (exit code 143 for SIGTERM)
        and look crashed to `docker ps` and to supervisors.
        """

        drain_host: EndpointHost | None = None
        #: Set when the grace period ended with requests unfinished.
        abandoned = False
        _draining = False

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.drain_host is None or self._draining:
                super().handle_exit(sig, frame)
                return
            self._draining = True
            threading.Thread(target=self._drain, args=(self.drain_host,), name="gpuserve-drain", daemon=True).start()

        def _drain(self, host: EndpointHost) -> None:
            host.begin_shutdown()
            grace = host.settings.shutdown_grace
            deadline = time.monotonic() + grace
            if host.in_flight:
                logger.info("Shutting down: waiting up to %g s for requests in flight (%d)", grace, host.in_flight)
            while host.in_flight and time.monotonic() < deadline:
                time.sleep(0.02)
            if host.in_flight:
                logger.warning("Shutting down with requests unfinished after %g s (%d)", grace, host.in_flight)
                self.abandoned = True
            self.should_exit = True

    return GracefulServer


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    from ..settings import Settings
    from .app import create_app
    from .host import EndpointHost

    settings_json = os.environ.get(SETTINGS_ENV)
    settings = Settings.from_json(settings_json) if settings_json else None
    if os.environ.get(PARENT_PID_ENV):
        _exit_with_parent(int(os.environ[PARENT_PID_ENV]))

    host = EndpointHost(args.endpoint, settings)
    app = create_app(host)
    options: dict[str, Any] = {"access_log": False, "log_level": "info", "timeout_graceful_shutdown": 2}
    sockets = None
    if args.fd is not None:
        # A supervisor bound the socket and passed it on, so no other process can take the port in between.
        # socket.socket(fileno=...) reads the real family; uvicorn's own fd option labels every inherited
        # socket AF_UNIX, and asyncio then skips TCP_NODELAY, which delays each response by about 40 ms.
        sockets = [socket.socket(fileno=args.fd)]
        config = uvicorn.Config(app, **options)
    else:
        config = uvicorn.Config(app, host=args.host, port=_choose_port(args), **options)
    server = _server_class()(config)
    server.drain_host = host
    if args.exit_on_setup_failure:

        def stop_server() -> None:
            server.should_exit = True

        host.on_failure = stop_server
    server.run(sockets=sockets)
    if args.exit_on_setup_failure and host.report.error is not None:
        sys.exit(1)
    setup_running = host.report.ready_at is None and host.report.error is None
    if server.abandoned or setup_running:
        # A predict thread busy with setup or a call cannot be stopped, and the interpreter would
        # wait for it at exit.
        logging.shutdown()
        os._exit(0)


if __name__ == "__main__":
    main()
