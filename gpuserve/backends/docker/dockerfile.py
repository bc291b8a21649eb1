"""Rendering the Dockerfile of an endpoint image.

Layers go from what changes least to what changes most: the base, system packages, a virtual
environment with gpuserve's dependencies, then the user's python packages, gpuserve's own source,
and the user's code last, so that editing the code alone rebuilds one small layer. Python packages
are installed in a separate build stage so that wheel folders copied in for offline installs do
not end up in the final image.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from ...settings import Settings

#: Environment variables that replace the default base images on this machine, e.g. for offline builds.
CPU_BASE_ENV = "GPUSERVE_CPU_BASE_IMAGE"
GPU_BASE_ENV = "GPUSERVE_GPU_BASE_IMAGE"
DEFAULT_GPU_BASE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"

VENV = "/opt/gpuserve/venv"
SOURCE = "/opt/gpuserve/src"
APP = "/app"


def default_cpu_base() -> str:
    """A slim Python image of the deploying interpreter's version, so the code runs on the Python it was written for."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def choose_base_image(settings: Settings) -> str:
    if settings.image.base_image:
        return settings.image.base_image
    if settings.gpu is not None:
        return os.environ.get(GPU_BASE_ENV) or DEFAULT_GPU_BASE
    return os.environ.get(CPU_BASE_ENV) or default_cpu_base()


@dataclass(frozen=True)
class ImagePlan:
    """Facts the Dockerfile needs beyond the settings."""

    deployment: str
    base_image: str
    reference: str
    pythonpath: tuple[str, ...]
    wheel_folders: int
    has_user_packages: bool


def _quote_env(value: str) -> str:
    # Docker expands $VAR inside ENV values, so a literal dollar needs a backslash. Docker does not
    # decode JSON's \uXXXX escapes, so non-ASCII text stays as it is (Image rejects control characters).
    return json.dumps(value, ensure_ascii=False).replace("$", "\\$")


def render_dockerfile(plan: ImagePlan, settings: Settings) -> str:
    find_links = " ".join(f"--find-links /tmp/gpuserve/wheels/{i}" for i in range(plan.wheel_folders))
    label = f"LABEL gpuserve.deployment={json.dumps(plan.deployment)}"
    # The deployment label goes at the end of each stage, so that the layers before it are a build
    # cache shared by every deployment with the same base and packages.
    lines = [
        f"FROM {plan.base_image} AS base",
        "ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1",
        # CUDA and other non-Python bases get a Python with venv support from their package manager.
        'RUN python3 -c "import venv, ensurepip" 2>/dev/null || (apt-get update'
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
        " python3 python3-venv python3-pip ca-certificates && rm -rf /var/lib/apt/lists/*)",
    ]
    if settings.image.system_packages:
        packages = " ".join(settings.image.system_packages)
        lines.append(
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
            f"{packages} && rm -rf /var/lib/apt/lists/*"
        )

    lines += [
        "",
        "FROM base AS python-packages",
    ]
    if plan.wheel_folders:
        lines.append("COPY wheels /tmp/gpuserve/wheels")
    lines += [
        "COPY gpuserve-requirements.txt /tmp/gpuserve/",
        f"RUN python3 -m venv {VENV} && {VENV}/bin/pip install {find_links} -r /tmp/gpuserve/gpuserve-requirements.txt",
    ]
    if plan.has_user_packages:
        lines += [
            "COPY requirements.txt /tmp/gpuserve/",
            f"RUN {VENV}/bin/pip install {find_links} -r /tmp/gpuserve/requirements.txt",
        ]

    pythonpath = ":".join([SOURCE, *plan.pythonpath])
    lines += [
        label,
        "",
        "FROM base",
        f"COPY --from=python-packages {VENV} {VENV}",
        f"ENV PATH={VENV}/bin:$PATH PORT=8080",
        f"ENV PYTHONPATH={_quote_env(pythonpath)}",
    ]
    for key, value in settings.image.env.items():
        lines.append(f"ENV {key}={_quote_env(value)}")
    lines += [
        f"COPY gpuserve-src {SOURCE}",
        f"WORKDIR {APP}",
        f"COPY project {APP}",
        "EXPOSE 8080",
        label,
        # SageMaker appends `serve` to the entrypoint; the runtime accepts it and listens on 8080.
        f'ENTRYPOINT ["python3", "-m", "gpuserve.runtime", {json.dumps(plan.reference)}]',
        "",
    ]
    return "\n".join(lines)
