"""The local backend: each deployment is a front-door process plus a scale-to-zero worker on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ...errors import ConfigError
from ...settings import Settings
from ...state import DeploymentRecord, state_home
from ..base import DeploySpec, ProgressCallback
from .supervised import SupervisedBackend

logger = logging.getLogger(__name__)


def _volume_paths(settings: Settings) -> dict[str, str]:
    """Map each mount path to a host directory: the given local_dir, or a folder per named volume."""
    paths = {}
    for mount, volume in settings.volumes.items():
        if volume.local_dir is not None:
            directory = Path(volume.local_dir).expanduser().resolve()
            if not directory.is_dir():
                raise ConfigError(
                    f"Volume {mount}: local_dir {volume.local_dir!r} is not a directory; create it or fix the path."
                )
        else:
            assert volume.name is not None
            directory = state_home() / "volumes" / volume.name
            directory.mkdir(parents=True, exist_ok=True)
        paths[mount] = str(directory)
    return paths


def _user_pythonpath() -> list[str]:
    """Return sys.path entries outside the interpreter's own folders, so the worker imports what we import."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    entries = []
    for entry in sys.path:
        real = os.path.realpath(entry or ".")
        if os.path.isdir(real) and not any(real.startswith(prefix + os.sep) or real == prefix for prefix in prefixes):
            entries.append(real)
    return list(dict.fromkeys(entries))


class LocalBackend(SupervisedBackend):
    """Runs endpoints on this machine, with cold starts and scale to zero like the clouds."""

    name = "local"
    # Like `gpuserve serve`, a local deployment listens on 127.0.0.1 only; deploy(auth=True) adds a token.
    auth_by_default = False

    def _prepare(self, spec: DeploySpec, record: DeploymentRecord, progress: ProgressCallback) -> None:
        if spec.settings.gpu is not None:
            logger.info("The local backend ignores gpu=%s; the endpoint sees this machine's devices", spec.settings.gpu)
        if spec.settings.scaling.max_instances > 1:
            logger.info(
                "The local backend runs one instance; max_instances=%d applies on other backends",
                spec.settings.scaling.max_instances,
            )
        record.extra["python"] = sys.executable
        record.extra["pythonpath"] = _user_pythonpath()
        record.extra["volume_paths"] = _volume_paths(spec.settings)
