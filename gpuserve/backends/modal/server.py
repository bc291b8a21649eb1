"""The Modal server class, and the building of a ``modal.App`` around it from a ``ModalPlan``.

``GpuserveServer`` is defined once, at module level, so that Modal's containers import it by name.
Each deploy decorates it with the endpoint's settings through ``app.cls``. Inside the container it
reads the endpoint reference and settings from the image's environment, loads the endpoint in
``@modal.enter`` and serves the same runtime ASGI app as every other backend.
"""

from __future__ import annotations

import os
from typing import Any

import modal

from ...envvars import AUTH_TOKEN_ENV, SETTINGS_ENV
from .plan import REFERENCE_ENV, ModalPlan

SERVER_CLASS = "GpuserveServer"
_WHEELS = "/gpuserve/wheels"


class GpuserveServer:
    """Loads the endpoint once per container and serves it over HTTP."""

    @modal.enter()
    def load(self) -> None:
        from ...runtime.host import EndpointHost
        from ...settings import Settings

        settings_json = os.environ.get(SETTINGS_ENV)
        self.host = EndpointHost(
            os.environ[REFERENCE_ENV], Settings.from_json(settings_json) if settings_json else None
        )
        # A failed setup is recorded on the host, and the app then returns 503 with the error,
        # as the runtime does on every backend, instead of crashing the container in a loop.
        self.host.start()

    @modal.asgi_app()
    def web(self) -> Any:
        from ...runtime.app import create_app

        return create_app(self.host, start_setup=False, token=os.environ.get(AUTH_TOKEN_ENV))


def build_image(plan: ModalPlan) -> modal.Image:
    """Build the image: base, system and python packages, environment, then local Python source last."""
    if plan.base_image:
        image = modal.Image.from_registry(plan.base_image, add_python=plan.python_version)
    else:
        image = modal.Image.debian_slim(python_version=plan.python_version)
    if plan.system_packages:
        image = image.apt_install(*plan.system_packages)
    find_links = []
    for index, folder in enumerate(plan.wheel_folders):
        image = image.add_local_dir(folder, f"{_WHEELS}/{index}", copy=True)
        find_links.append(f"--find-links {_WHEELS}/{index}")
    image = image.pip_install(*plan.python_packages, extra_options=" ".join(find_links))
    image = image.env(plan.env)
    for mount, directory in plan.local_dirs.items():
        image = image.add_local_dir(directory, mount)
    return image.add_local_python_source(*plan.local_modules)


def build_secrets(plan: ModalPlan, token: str | None) -> list[modal.Secret]:
    """Secrets from the deployer's environment go up as one Modal secret; others are looked up by name."""
    values: dict[str, str | None] = {name: os.environ[name] for name in plan.secrets_from_environment}
    if token:
        values[AUTH_TOKEN_ENV] = token
    secrets = [modal.Secret.from_dict(values)] if values else []
    secrets += [modal.Secret.from_name(name) for name in plan.secrets_from_modal]
    return secrets


def cls_options(plan: ModalPlan, token: str | None) -> dict[str, Any]:
    """Keyword arguments for ``app.cls``."""
    return {
        "image": build_image(plan),
        "gpu": plan.gpu,
        "volumes": {
            mount: modal.Volume.from_name(name, create_if_missing=True).with_mount_options(read_only=True)
            if read_only
            else modal.Volume.from_name(name, create_if_missing=True)
            for mount, (name, read_only) in plan.volumes.items()
        },
        "secrets": build_secrets(plan, token),
        "min_containers": plan.min_containers,
        "max_containers": plan.max_containers,
        "scaledown_window": plan.scaledown_window,
        "timeout": plan.timeout,
        "startup_timeout": plan.startup_timeout,
        # The image already adds gpuserve and the user's module as local source, last.
        "include_source": False,
    }


def build_app(plan: ModalPlan, token: str | None) -> modal.App:
    """Return a ``modal.App`` named after the deployment, with ``GpuserveServer`` decorated for this plan."""
    app = modal.App(plan.app_name)
    concurrent = modal.concurrent(max_inputs=plan.max_inputs)
    app.cls(**cls_options(plan, token))(concurrent(GpuserveServer))
    return app
