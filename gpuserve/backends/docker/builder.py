"""Building an endpoint's image with a Docker engine; the cloud backends push what this builds."""

from __future__ import annotations

import logging
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

import gpuserve

from ...errors import ConfigError, ImageBuildError
from ..base import DeploySpec, ProgressCallback
from ..requirements import gpuserve_requirements
from .context import check_project_dir, copy_project, copy_tree
from .dockerfile import ImagePlan, choose_base_image, render_dockerfile
from .engine import labels, translated_errors

logger = logging.getLogger(__name__)

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_OUTPUT_LINES_ON_FAILURE = 40


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    seconds: float
    base_image: str


def image_tag(deployment: str) -> str:
    return f"gpuserve/{deployment}:latest"


def container_reference(spec: DeploySpec) -> tuple[str, tuple[str, ...]]:
    """Translate the endpoint reference into one valid inside the image, plus PYTHONPATH entries under /app."""
    target, _, class_path = spec.reference.rpartition(":")
    project = spec.project_dir.resolve()
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_relative_to(project):
            raise ConfigError(
                f"The endpoint file {path} is outside the project directory {project}; deploy from the project "
                "folder or pass project_dir=..."
            )
        return f"{path.relative_to(project).as_posix()}:{class_path}", ()

    module = sys.modules[target]
    module_file = Path(getattr(module, "__file__", "") or "").resolve()
    # Walk up one folder per dotted part (two for a package's __init__.py) to the sys.path root.
    root = module_file.parent
    for _ in range(target.count(".") + (1 if module_file.name == "__init__.py" else 0)):
        root = root.parent
    if not root.is_relative_to(project):
        raise ConfigError(
            f"The endpoint module {target} ({module_file}) is outside the project directory {project}; "
            "deploy from the project folder or pass project_dir=..."
        )
    relative = root.relative_to(project).as_posix()
    return spec.reference, (() if relative == "." else (f"/app/{relative}",))


def _prepare_context(spec: DeploySpec, context: Path, base_image: str) -> ImagePlan:
    check_project_dir(spec.project_dir)
    reference, pythonpath = container_reference(spec)
    project_bytes = copy_project(spec.project_dir, context / "project")
    logger.info("Build context: %.1f MB of project files", project_bytes / 1e6)

    copy_tree(Path(gpuserve.__file__).parent, context / "gpuserve-src" / "gpuserve")
    (context / "gpuserve-requirements.txt").write_text("\n".join(gpuserve_requirements()) + "\n")
    packages = spec.settings.image.python_packages
    if packages:
        (context / "requirements.txt").write_text("\n".join(packages) + "\n")
    for index, folder in enumerate(spec.settings.image.find_links):
        source = Path(folder).expanduser()
        if not source.is_dir():
            raise ConfigError(f"find_links folder {folder!r} is not a directory; give a folder of wheel files.")
        copy_tree(source, context / "wheels" / str(index))

    plan = ImagePlan(
        deployment=spec.name,
        base_image=base_image,
        reference=reference,
        pythonpath=pythonpath,
        wheel_folders=len(spec.settings.image.find_links),
        has_user_packages=bool(packages),
    )
    (context / "Dockerfile").write_text(render_dockerfile(plan, spec.settings))
    return plan


def build_image(
    client: docker.DockerClient, spec: DeploySpec, progress: ProgressCallback, *, nocache: bool = False
) -> BuiltImage:
    """Build the endpoint's image and return its tag and id; a failing step raises ``ImageBuildError``.

    ``nocache`` rebuilds every layer, as ``docker build --no-cache`` does.
    """
    tag = image_tag(spec.name)
    base_image = choose_base_image(spec.settings)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpuserve-build-") as folder:
        _prepare_context(spec, Path(folder), base_image)
        progress(f"Building image {tag} from {base_image}")
        with translated_errors("build the image"):
            stream = client.api.build(
                path=folder,
                tag=tag,
                rm=True,
                forcerm=True,  # remove intermediate containers of failed steps too
                pull=False,
                nocache=nocache,
                network_mode="host",  # the engine runs without a bridge network
                labels=labels(spec.name),
                decode=True,
            )
            layers: list[str] = []
            try:
                image_id = _follow_build(stream, base_image, progress, layers)
            except ImageBuildError:
                _remove_failed_layers(client, layers)
                raise
    seconds = time.monotonic() - began
    logger.info("Built %s in %.1f s", tag, seconds)
    return BuiltImage(tag=tag, image_id=image_id, seconds=seconds, base_image=base_image)


def _remove_failed_layers(client: docker.DockerClient, layers: list[str]) -> None:
    """Remove the untagged layers a failed build left, unless another image still builds on them."""
    if not layers:
        return
    try:
        client.images.remove(layers[-1])
    except docker.errors.APIError as exc:
        logger.debug("Kept layer %s of the failed build: %s", layers[-1], exc)


def _follow_build(stream: object, base_image: str, progress: ProgressCallback, layers: list[str]) -> str:
    """Read the engine's build records, report each step, and raise with the failing step's output.

    ``layers`` receives the id of each layer the build produced, so a failed build can be cleaned up.
    """
    step = "the first step"
    output: list[str] = []
    image_id = ""
    for record in stream:  # type: ignore[attr-defined]
        if "stream" in record:
            for line in _ANSI.sub("", str(record["stream"])).splitlines():
                layer = _LAYER.match(line.rstrip())
                if layer:
                    layers.append(layer.group(1))
                    continue
                match = _STEP.match(line.strip())
                if match:
                    step = f"step {match.group(1)}/{match.group(2)} ({match.group(3)})"
                    progress(f"Build {step}")
                    output = []
                elif line.strip() and not line.startswith(" ---> Running in "):
                    output.append(line.rstrip())
        elif "aux" in record and "ID" in record["aux"]:
            image_id = record["aux"]["ID"]
        elif "error" in record:
            raise _build_error(step, str(record["error"]).strip(), output, base_image)
    return image_id


def _build_error(step: str, error: str, output: list[str], base_image: str) -> ImageBuildError:
    tail = "\n".join(output[-_OUTPUT_LINES_ON_FAILURE:])
    if "(FROM " in step:
        return ImageBuildError(
            f"The base image {base_image} is not available: {error}. Pull or build it first, or choose another "
            f"with Image(base_image=...) or the GPUSERVE_CPU_BASE_IMAGE / GPUSERVE_GPU_BASE_IMAGE variables.",
            output=tail,
        )
    return ImageBuildError(f"The image build failed at {step}: {error}\n{tail}", output=tail)
