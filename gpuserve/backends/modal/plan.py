"""Translation of gpuserve settings into what Modal receives, as plain data.

Keeping the translation free of modal objects lets tests check every value offline; ``server.py``
turns a plan into a ``modal.App``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError
from ..base import DeploySpec
from ..requirements import gpuserve_requirements

#: gpuserve GPU name -> Modal's GPU string. Source: Modal's GPU guide (modal.com/docs/guide/gpu), 2026.
MODAL_GPUS: dict[str, str] = {
    "T4": "T4",
    "L4": "L4",
    "A10": "A10",
    "A10G": "A10",  # Modal's A10 is the A10G card of AWS
    "L40S": "L40S",
    "A100-40GB": "A100-40GB",
    "A100-80GB": "A100-80GB",
    "RTX-PRO-6000": "RTX-PRO-6000",
    "H100": "H100",
    "H200": "H200",
    "B200": "B200",
}
#: Most GPUs per container by type; 8 for the others. Same source.
MAX_GPUS: dict[str, int] = {"A10": 4}

#: Modal accepts scaledown_window from 2 s to 1 hour.
MIN_SCALEDOWN_WINDOW = 2
MAX_SCALEDOWN_WINDOW = 3600
#: Modal's limit for a function's timeout and startup timeout: 24 hours.
MAX_TIMEOUT = 24 * 3600

REFERENCE_ENV = "GPUSERVE_REFERENCE"


@dataclass(frozen=True)
class ModalPlan:
    """Every value gpuserve hands to Modal for one endpoint."""

    app_name: str
    python_version: str
    base_image: str | None
    system_packages: tuple[str, ...]
    python_packages: tuple[str, ...]
    #: Local wheel folders, copied into the image and searched by pip.
    wheel_folders: tuple[str, ...]
    env: dict[str, str]
    #: Top-level modules added as local Python source, last: gpuserve and the user's module.
    local_modules: tuple[str, ...]
    #: Mount path -> local directory, copied into the image for ``Volume(local_dir=...)``.
    local_dirs: dict[str, str]
    gpu: str | None
    #: Mount path -> (Modal volume name, read_only).
    volumes: dict[str, tuple[str, bool]]
    #: Secret names whose values are read from the deployer's environment.
    secrets_from_environment: tuple[str, ...]
    #: Secret names looked up as Modal secrets of the same name.
    secrets_from_modal: tuple[str, ...]
    min_containers: int
    max_containers: int
    scaledown_window: int
    max_inputs: int
    timeout: int
    startup_timeout: int
    extra: dict[str, str] = field(default_factory=dict)


def modal_gpu(spec: DeploySpec) -> str | None:
    """Return Modal's GPU string for the endpoint, such as "H100:2", or raise ConfigError."""
    gpu = spec.settings.gpu
    if gpu is None:
        return None
    if gpu.name not in MODAL_GPUS:
        raise ConfigError(f"Unknown GPU {gpu.name!r} for Modal; it offers {', '.join(MODAL_GPUS)}.")
    name = MODAL_GPUS[gpu.name]
    limit = MAX_GPUS.get(name, 8)
    if gpu.count > limit:
        raise ConfigError(f"Modal attaches at most {limit} {name} GPUs to a container; {gpu.count} were requested.")
    return name if gpu.count == 1 else f"{name}:{gpu.count}"


def _scaledown_window(idle_timeout: float) -> int:
    window = round(idle_timeout)
    if not MIN_SCALEDOWN_WINDOW <= window <= MAX_SCALEDOWN_WINDOW:
        raise ConfigError(
            f"idle_timeout={idle_timeout:g} s is outside Modal's scaledown window of {MIN_SCALEDOWN_WINDOW} to "
            f"{MAX_SCALEDOWN_WINDOW} s; choose a value in that range, for example idle_timeout=60."
        )
    return window


def _seconds(value: float, name: str) -> int:
    seconds = max(1, round(value))
    if seconds > MAX_TIMEOUT:
        raise ConfigError(f"{name}={value:g} s exceeds Modal's limit of {MAX_TIMEOUT} s (24 hours).")
    return seconds


def _user_module(spec: DeploySpec) -> tuple[str, str]:
    """Return the top-level module to upload and the reference the container imports."""
    target, _, class_path = spec.reference.rpartition(":")
    if target.endswith(".py"):
        module = Path(target).stem
        return module, f"{module}:{class_path}"
    return target.split(".")[0], spec.reference


def make_plan(spec: DeploySpec) -> ModalPlan:
    """Translate a deploy spec into Modal's terms, rejecting what Modal cannot do with the fix."""
    settings = spec.settings
    module, reference = _user_module(spec)
    secrets = settings.secrets
    scaling = settings.scaling
    return ModalPlan(
        app_name=spec.name,
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        base_image=settings.image.base_image,
        system_packages=tuple(settings.image.system_packages),
        python_packages=(*gpuserve_requirements(), *settings.image.python_packages),
        wheel_folders=tuple(str(Path(folder).expanduser().resolve()) for folder in settings.image.find_links),
        env={**settings.image.env, REFERENCE_ENV: reference, "GPUSERVE_SETTINGS": settings.to_json()},
        local_modules=("gpuserve", module) if module != "gpuserve" else ("gpuserve",),
        local_dirs={
            mount: str(Path(volume.local_dir).expanduser().resolve())
            for mount, volume in settings.volumes.items()
            if volume.local_dir is not None
        },
        gpu=modal_gpu(spec),
        volumes={
            mount: (str(volume.name), volume.read_only)
            for mount, volume in settings.volumes.items()
            if volume.name is not None
        },
        secrets_from_environment=tuple(name for name in secrets if name in os.environ),
        secrets_from_modal=tuple(name for name in secrets if name not in os.environ),
        min_containers=scaling.min_instances,
        max_containers=scaling.max_instances,
        scaledown_window=_scaledown_window(scaling.idle_timeout),
        max_inputs=scaling.max_concurrency,
        timeout=_seconds(settings.timeout, "timeout"),
        startup_timeout=_seconds(settings.setup_timeout, "setup_timeout"),
    )
