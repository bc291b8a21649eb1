"""gpuserve's own runtime dependencies, which every image that runs the runtime must install."""

from __future__ import annotations

import importlib.metadata

from ..errors import ConfigError


def gpuserve_requirements() -> list[str]:
    """gpuserve's own runtime dependencies, from its installed metadata."""
    try:
        requirements = importlib.metadata.requires("gpuserve") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConfigError(
            "gpuserve is imported from a folder that pip did not install, so its dependencies are unknown; "
            "install it with pip install -e . (or a wheel) before building images."
        ) from exc
    return [requirement for requirement in requirements if "extra ==" not in requirement]
