"""Backends, found through a registry of import strings so that ``import gpuserve`` stays light.

A backend's module imports its provider SDK; that import happens only when the backend is used,
and a missing SDK becomes one sentence naming the ``pip install`` to run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import BackendNotInstalledError, ConfigError

if TYPE_CHECKING:
    from .base import Backend

#: Backend name -> "module:Class" of its implementation.
BACKENDS: dict[str, str] = {
    "local": "gpuserve.backends.local.backend:LocalBackend",
    "docker": "gpuserve.backends.docker.backend:DockerBackend",
    "modal": "gpuserve.backends.modal.backend:ModalBackend",
    "sagemaker": "gpuserve.backends.sagemaker.backend:SageMakerBackend",
    "cloudrun": "gpuserve.backends.cloudrun.backend:CloudRunBackend",
}

#: Backend name -> the extra that installs its SDK.
EXTRAS: dict[str, str] = {"docker": "docker", "modal": "modal", "sagemaker": "aws", "cloudrun": "cloudrun"}


def get_backend(name: str) -> Backend:
    """Return an instance of backend ``name``."""
    if name not in BACKENDS:
        raise ConfigError(f"Unknown backend {name!r}; valid choices are {', '.join(BACKENDS)}.")
    module_name, _, class_name = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRAS.get(name, name)
        raise BackendNotInstalledError(
            f"The {name} backend needs {exc.name or 'a missing package'}; install it with "
            f"pip install 'gpuserve[{extra}]'."
        ) from exc
    backend: Backend = getattr(module, class_name)()
    return backend
