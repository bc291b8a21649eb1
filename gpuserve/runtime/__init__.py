"""The HTTP server that runs inside every backend's container.

Start it with ``python -m gpuserve.runtime module:Class``; it listens on ``$PORT`` (8080 by default).
"""

from __future__ import annotations

from .app import create_app
from .host import EndpointHost

__all__ = ["EndpointHost", "create_app"]
