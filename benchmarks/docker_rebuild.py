"""Docker image build times: a first build without cache, a rebuild after a change to the user's code
only, and a rebuild with no change, for the tiny example, in one run on a real engine.

The layer order puts the user's code last, so the second build should redo only the final COPY.
Run: GPUSERVE_CPU_BASE_IMAGE=gpuserve-ci/python:3.11-bookworm python benchmarks/docker_rebuild.py
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import docker

from gpuserve.backends.base import DeploySpec
from gpuserve.backends.docker.builder import BuiltImage, build_image
from gpuserve.backends.docker.engine import connect
from gpuserve.loader import load_endpoint

REPO = Path(__file__).resolve().parent.parent


def _spec(project: Path, name: str) -> DeploySpec:
    endpoint = load_endpoint(str(project / "tiny.py") + ":Echo")
    return DeploySpec(
        name=name,
        endpoint_class=endpoint,
        reference=f"{project / 'tiny.py'}:Echo",
        settings=endpoint.deployment_settings(),
        project_dir=project,
    )


def _build(client: docker.DockerClient, spec: DeploySpec, nocache: bool = False) -> BuiltImage:
    return build_image(client, spec, progress=lambda message: None, nocache=nocache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="code-change rebuilds to time (default: 3)")
    args = parser.parse_args()

    client = connect()
    name = "bench-rebuild"
    with tempfile.TemporaryDirectory(prefix="gpuserve-bench-") as folder:
        project = Path(folder)
        shutil.copy(REPO / "examples" / "tiny.py", project / "tiny.py")
        spec = _spec(project, name)
        try:
            first = _build(client, spec, nocache=True)
            code_changes = []
            for round_number in range(args.rounds):
                with (project / "tiny.py").open("a") as handle:
                    handle.write(f"\n# edit {round_number} at {time.time()}\n")
                code_changes.append(_build(client, spec).seconds)
            unchanged = _build(client, spec).seconds
        finally:
            try:
                client.images.remove(f"gpuserve/{name}:latest", force=True)
            except docker.errors.APIError:
                pass
            client.images.prune(filters={"dangling": True, "label": f"gpuserve.deployment={name}"})

    median_change = sorted(code_changes)[len(code_changes) // 2]
    print(f"base image: {first.base_image}; Python {sys.version.split()[0]}")
    print(f"{'build':<34} {'seconds':>8}")
    print(f"{'first build, no cache':<34} {first.seconds:>8.2f}")
    print(f"{'after a code change (median)':<34} {median_change:>8.2f}")
    print(f"{'no change':<34} {unchanged:>8.2f}")
    print(f"first build / code-change rebuild: {first.seconds / median_change:.1f}x")


if __name__ == "__main__":
    main()
