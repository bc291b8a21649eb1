"""Per-user records of deployments, so that later commands and processes find them.

The directory is ``$GPUSERVE_HOME`` when set, else ``$XDG_STATE_HOME/gpuserve``, else
``~/.local/state/gpuserve``. Each deployment has a folder ``deployments/NAME`` holding
``deployment.json`` (what was deployed, written once) and any files its backend keeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import BackendError, ConfigError, DeploymentNotFoundError

HOME_ENV = "GPUSERVE_HOME"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def state_home() -> Path:
    """Return the root directory of gpuserve's per-user state."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "gpuserve"


def check_name(name: str) -> str:
    """Validate a deployment name: lowercase letters, digits and '-', starting with a letter."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("-"):
        raise ConfigError(
            f"Invalid deployment name {name!r}; use up to 63 lowercase letters, digits and '-', "
            "starting with a letter, for example 'text-embed'."
        )
    return name


def deployment_dir(name: str) -> Path:
    return state_home() / "deployments" / check_name(name)


@dataclass
class DeploymentRecord:
    """Record of a deployment under a name, enough for any later process to reach and manage it."""

    name: str
    backend: str
    reference: str
    url: str
    settings_json: str
    created_at: float
    token: str | None = None
    #: Backend-specific facts, such as process ids or provider resource names.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return deployment_dir(self.name)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see either the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temp_name, path)


def read_json(path: Path) -> Any:
    with path.open() as handle:
        return json.load(handle)


def save_record(record: DeploymentRecord) -> None:
    directory = record.directory
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # the record may hold the endpoint's access token
    write_json_atomic(directory / "deployment.json", asdict(record))


def load_record(name: str) -> DeploymentRecord:
    """Return the record of deployment ``name``, or raise ``DeploymentNotFoundError``."""
    path = deployment_dir(name) / "deployment.json"
    try:
        return DeploymentRecord(**read_json(path))
    except (ValueError, TypeError) as exc:
        raise BackendError(
            f"The record of deployment {name!r} at {path} is unreadable ({exc}). Stop its processes or "
            f"containers by hand, then remove {path.parent}."
        ) from exc
    except FileNotFoundError:
        known = ", ".join(r.name for r in list_records()) or "none"
        raise DeploymentNotFoundError(
            f"No deployment named {name!r}; known deployments: {known}. Run 'gpuserve list' to see them."
        ) from None


def list_records() -> list[DeploymentRecord]:
    root = state_home() / "deployments"
    records = []
    for path in sorted(root.glob("*/deployment.json")):
        try:
            records.append(DeploymentRecord(**read_json(path)))
        except (OSError, ValueError, TypeError):
            continue  # a folder being written or removed right now
    return records


def remove_record(name: str) -> None:
    shutil.rmtree(deployment_dir(name), ignore_errors=True)
