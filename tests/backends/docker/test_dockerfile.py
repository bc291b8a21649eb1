"""The endpoint image's Dockerfile, base image choice, build context layout and in-image endpoint reference.

These tests render text and copy folders made in ``tmp_path``. They need no Docker engine.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import gpuserve
from gpuserve.backends.base import DeploySpec
from gpuserve.backends.docker.dockerfile import (
    CPU_BASE_ENV,
    GPU_BASE_ENV,
    ImagePlan,
    choose_base_image,
    render_dockerfile,
)
from gpuserve.runtime.__main__ import _choose_port, _parse_args
from gpuserve.settings import Settings, build_settings


class Echo(gpuserve.Endpoint):
    def predict(self, text: str) -> str:
        return text


PLAN = ImagePlan(
    deployment="echo",
    base_image="python:3.11-slim",
    reference="app/serve.py:Echo",
    pythonpath=(),
    wheel_folders=0,
    has_user_packages=False,
)


@pytest.fixture(autouse=True)
def default_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test from the built-in base images; .ci/run exports GPUSERVE_CPU_BASE_IMAGE."""
    monkeypatch.delenv(CPU_BASE_ENV, raising=False)
    monkeypatch.delenv(GPU_BASE_ENV, raising=False)


@pytest.fixture
def builder() -> ModuleType:
    """gpuserve's image builder, which imports the docker SDK."""
    module: ModuleType = pytest.importorskip(
        "gpuserve.backends.docker.builder", reason="the docker extra is not installed"
    )
    return module


def _settings(**values: object) -> Settings:
    return build_settings(values)


def _render(settings: Settings | None = None, **plan_changes: Any) -> str:
    return render_dockerfile(dataclasses.replace(PLAN, **plan_changes), settings or Settings())


def _lines(dockerfile: str) -> list[str]:
    return [line for line in dockerfile.splitlines() if line.strip()]


def _stages(dockerfile: str) -> list[list[str]]:
    """Split the Dockerfile's lines into build stages, each starting with its FROM line."""
    stages: list[list[str]] = []
    for line in _lines(dockerfile):
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def _docker_words(text: str) -> list[str]:
    """Split ENV arguments into words by Docker's quoting rules, with ``<$>`` for an unescaped ``$``.

    Docker would expand an unescaped ``$``, so the marker makes a missing escape visible.

    Inside double quotes a backslash escapes only ``"``, ``$`` and itself; outside quotes it escapes
    any character. Docker 20.10's builder decoded the cases tested here the same way.
    """
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if char == "\\" and quote != "'" and following and (quote == "" or following in '"$\\'):
            word.append(following)
            in_word = True
            i += 2
            continue
        if quote and char == quote:
            quote = ""
        elif char == "$" and quote != "'":
            word.append("<$>")
        elif quote:
            word.append(char)
        elif char in "\"'":
            quote = char
            in_word = True
        elif char.isspace():
            if in_word:
                words.append("".join(word))
            word, in_word = [], False
        else:
            word.append(char)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    return words


def _env(dockerfile: str) -> dict[str, str]:
    """Decode the variables that the ENV lines set."""
    values: dict[str, str] = {}
    for line in _lines(dockerfile):
        if line.startswith("ENV "):
            for word in _docker_words(line[len("ENV ") :]):
                key, _, value = word.partition("=")
                values[key] = value
    return values


def _entrypoint(dockerfile: str) -> list[str]:
    line = next(line for line in _lines(dockerfile) if line.startswith("ENTRYPOINT "))
    words: list[str] = json.loads(line[len("ENTRYPOINT ") :])
    return words


def test_cpu_default_base() -> None:
    expected = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    assert choose_base_image(Settings()) == expected


@pytest.mark.parametrize("gpu", ["T4", "H100:2"])
def test_gpu_default_base(gpu: str) -> None:
    assert choose_base_image(_settings(gpu=gpu)).startswith("nvidia/cuda:")


@pytest.mark.parametrize("gpu", [None, "T4"])
def test_base_image_wins(monkeypatch: pytest.MonkeyPatch, gpu: str | None) -> None:
    monkeypatch.setenv(CPU_BASE_ENV, "mirror.local/python:3.11")
    monkeypatch.setenv(GPU_BASE_ENV, "mirror.local/cuda:12")
    settings = _settings(gpu=gpu, image=gpuserve.Image(base_image="mirror.local/custom:1"))
    assert choose_base_image(settings) == "mirror.local/custom:1"


def test_cpu_env_replaces_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_BASE_ENV, "mirror.local/python:3.11")
    assert choose_base_image(Settings()) == "mirror.local/python:3.11"
    assert choose_base_image(_settings(gpu="T4")).startswith("nvidia/cuda:")


def test_gpu_env_replaces_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GPU_BASE_ENV, "mirror.local/cuda:12")
    assert choose_base_image(_settings(gpu="T4")) == "mirror.local/cuda:12"
    assert choose_base_image(Settings()).startswith("python:")


def test_empty_env_keeps_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_BASE_ENV, "")
    assert choose_base_image(Settings()).startswith("python:")


def test_from_line_uses_base() -> None:
    assert _lines(_render(base_image="mirror.local/custom:1"))[0] == "FROM mirror.local/custom:1 AS base"


def test_system_packages_installed() -> None:
    settings = _settings(image=gpuserve.Image(system_packages=("ffmpeg", "libgl1")))
    base_stage = _stages(_render(settings))[0]
    installs = [line for line in base_stage if line.startswith("RUN apt-get update")]
    assert len(installs) == 1
    assert "apt-get install -y --no-install-recommends ffmpeg libgl1 " in installs[0]


def test_no_system_packages() -> None:
    assert not any(line.startswith("RUN apt-get update") for line in _lines(_render()))


@pytest.mark.parametrize(
    "value",
    ["$HOME", "cost $5 and ${USER}", 'say "hi"', "it's", "two  words ", "a\\b\\", ""],
)
def test_env_value_round_trip(value: str) -> None:
    settings = _settings(image=gpuserve.Image(env={"GREETING": value}))
    assert _env(_render(settings))["GREETING"] == value


def test_env_dollar_escaped() -> None:
    settings = _settings(image=gpuserve.Image(env={"PRICE": "cost $5 and ${USER}"}))
    assert 'ENV PRICE="cost \\$5 and \\${USER}"' in _lines(_render(settings))


@pytest.mark.parametrize("value", ["Zürich café", "東京"])
def test_env_non_ascii_round_trip(value: str) -> None:
    settings = _settings(image=gpuserve.Image(env={"CITY": value}))
    assert _env(_render(settings))["CITY"] == value


def test_env_control_character_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="control characters"):
        gpuserve.Image(env={"FIELD": "tab\there"})


def test_user_env_in_final_stage() -> None:
    settings = _settings(image=gpuserve.Image(env={"HF_HOME": "/models"}))
    assert 'ENV HF_HOME="/models"' in _stages(_render(settings))[-1]


def test_pythonpath_default() -> None:
    assert _env(_render())["PYTHONPATH"] == "/opt/gpuserve/src"


def test_pythonpath_package_root() -> None:
    assert _env(_render(pythonpath=("/app/src",)))["PYTHONPATH"] == "/opt/gpuserve/src:/app/src"


def test_pythonpath_with_space() -> None:
    assert _env(_render(pythonpath=("/app/my src",)))["PYTHONPATH"] == "/opt/gpuserve/src:/app/my src"


def test_venv_first_on_path() -> None:
    assert _env(_render())["PATH"] == "/opt/gpuserve/venv/bin:<$>PATH"


def test_find_links_options() -> None:
    dockerfile = _render(wheel_folders=2, has_user_packages=True)
    pip_lines = [line for line in _lines(dockerfile) if "/bin/pip install" in line]
    options = "--find-links /tmp/gpuserve/wheels/0 --find-links /tmp/gpuserve/wheels/1 "
    assert len(pip_lines) == 2
    assert all(options in line for line in pip_lines)


def test_wheels_only_in_build_stage() -> None:
    stages = _stages(_render(wheel_folders=1, has_user_packages=True))
    assert len(stages) == 3
    assert "COPY wheels /tmp/gpuserve/wheels" in stages[1]
    assert not any("wheels" in line for line in stages[-1])


def test_venv_copied_from_build_stage() -> None:
    stages = _stages(_render(wheel_folders=1))
    assert stages[-1][0] == "FROM base"
    assert "COPY --from=python-packages /opt/gpuserve/venv /opt/gpuserve/venv" in stages[-1]


def test_no_wheels_no_options() -> None:
    dockerfile = _render()
    assert "--find-links" not in dockerfile
    assert "COPY wheels" not in dockerfile


def test_user_packages_after_gpuserve_deps() -> None:
    stage = _stages(_render(has_user_packages=True))[1]
    gpuserve_deps = stage.index("COPY gpuserve-requirements.txt /tmp/gpuserve/")
    user_packages = stage.index("COPY requirements.txt /tmp/gpuserve/")
    assert gpuserve_deps < user_packages


def test_no_user_packages_no_layer() -> None:
    assert "requirements.txt /tmp/gpuserve/\n" not in _render().replace("gpuserve-requirements.txt", "")


def test_project_copied_last() -> None:
    final = _stages(_render(has_user_packages=True))[-1]
    venv = final.index("COPY --from=python-packages /opt/gpuserve/venv /opt/gpuserve/venv")
    source = final.index("COPY gpuserve-src /opt/gpuserve/src")
    project = final.index("COPY project /app")
    assert venv < source < project
    assert [line.split()[0] for line in final[project + 1 :]] == ["EXPOSE", "LABEL", "ENTRYPOINT"]


def test_workdir_app() -> None:
    assert "WORKDIR /app" in _stages(_render())[-1]


def test_deployment_label_per_stage() -> None:
    stages = _stages(_render())
    label = 'LABEL gpuserve.deployment="echo"'
    assert stages[1][-1] == label
    assert label in stages[-1]


def test_entrypoint_runs_runtime() -> None:
    assert _entrypoint(_render()) == ["python3", "-m", "gpuserve.runtime", "app/serve.py:Echo"]


def test_entrypoint_reference_quoted() -> None:
    reference = 'my app/serve "v2".py:Echo'
    assert _entrypoint(_render(reference=reference))[-1] == reference


def test_listens_on_8080() -> None:
    dockerfile = _render()
    assert "EXPOSE 8080" in _lines(dockerfile)
    assert _env(dockerfile)["PORT"] == "8080"


def test_sagemaker_serve_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    monkeypatch.setenv("PORT", "9000")
    arguments = _entrypoint(_render())[3:] + ["serve"]
    parsed = _parse_args(arguments)
    assert parsed.endpoint == "app/serve.py:Echo"
    assert parsed.command == "serve"
    assert _choose_port(parsed) == 8080


def _spec(project: Path, reference: str) -> DeploySpec:
    return DeploySpec(name="echo", endpoint_class=Echo, reference=reference, settings=Settings(), project_dir=project)


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def import_from(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path, str], ModuleType]]:
    """Import a module from a folder put on sys.path, and forget its top-level package afterwards."""
    packages: list[str] = []

    def load(folder: Path, name: str) -> ModuleType:
        monkeypatch.syspath_prepend(str(folder))
        packages.append(name.partition(".")[0])
        return importlib.import_module(name)

    yield load
    for name in list(sys.modules):
        if name.partition(".")[0] in packages:
            del sys.modules[name]


def test_reference_file_in_project(tmp_path: Path, builder: ModuleType) -> None:
    endpoint_file = _write(tmp_path / "project" / "app" / "serve.py")
    spec = _spec(tmp_path / "project", f"{endpoint_file}:Echo")
    assert builder.container_reference(spec) == ("app/serve.py:Echo", ())


def test_reference_nested_class(tmp_path: Path, builder: ModuleType) -> None:
    endpoint_file = _write(tmp_path / "project" / "serve.py")
    spec = _spec(tmp_path / "project", f"{endpoint_file}:Models.Echo")
    assert builder.container_reference(spec) == ("serve.py:Models.Echo", ())


def test_reference_file_outside(tmp_path: Path, builder: ModuleType) -> None:
    (tmp_path / "project").mkdir()
    endpoint_file = _write(tmp_path / "elsewhere" / "serve.py")
    with pytest.raises(gpuserve.ConfigError, match="outside the project directory") as info:
        builder.container_reference(_spec(tmp_path / "project", f"{endpoint_file}:Echo"))
    assert str(endpoint_file) in str(info.value)
    assert str(tmp_path / "project") in str(info.value)


def test_reference_module_subfolder(
    tmp_path: Path, builder: ModuleType, import_from: Callable[[Path, str], ModuleType]
) -> None:
    project = tmp_path / "project"
    _write(project / "src" / "gs_ref_sub" / "__init__.py")
    _write(project / "src" / "gs_ref_sub" / "serve.py")
    import_from(project / "src", "gs_ref_sub.serve")
    spec = _spec(project, "gs_ref_sub.serve:Echo")
    assert builder.container_reference(spec) == ("gs_ref_sub.serve:Echo", ("/app/src",))


def test_reference_package_init(
    tmp_path: Path, builder: ModuleType, import_from: Callable[[Path, str], ModuleType]
) -> None:
    project = tmp_path / "project"
    _write(project / "lib" / "python" / "gs_ref_init" / "__init__.py")
    import_from(project / "lib" / "python", "gs_ref_init")
    spec = _spec(project, "gs_ref_init:Echo")
    assert builder.container_reference(spec) == ("gs_ref_init:Echo", ("/app/lib/python",))


def test_reference_module_at_root(
    tmp_path: Path, builder: ModuleType, import_from: Callable[[Path, str], ModuleType]
) -> None:
    project = tmp_path / "project"
    _write(project / "gs_ref_root.py")
    import_from(project, "gs_ref_root")
    assert builder.container_reference(_spec(project, "gs_ref_root:Echo")) == ("gs_ref_root:Echo", ())


def test_reference_module_outside(
    tmp_path: Path, builder: ModuleType, import_from: Callable[[Path, str], ModuleType]
) -> None:
    (tmp_path / "project").mkdir()
    _write(tmp_path / "shared" / "gs_ref_out" / "__init__.py")
    _write(tmp_path / "shared" / "gs_ref_out" / "serve.py")
    import_from(tmp_path / "shared", "gs_ref_out.serve")
    with pytest.raises(gpuserve.ConfigError, match="gs_ref_out.serve .* is outside the project directory"):
        builder.container_reference(_spec(tmp_path / "project", "gs_ref_out.serve:Echo"))


def test_context_layout(tmp_path: Path, builder: ModuleType) -> None:
    endpoint_file = _write(tmp_path / "project" / "serve.py", "code")
    _write(tmp_path / "project" / ".env", "SECRET=1")
    context = tmp_path / "context"
    context.mkdir()
    spec = _spec(tmp_path / "project", f"{endpoint_file}:Echo")
    builder._prepare_context(spec, context, "python:3.11-slim")
    assert (context / "project" / "serve.py").read_text() == "code"
    assert not (context / "project" / ".env").exists()
    assert (context / "gpuserve-src" / "gpuserve" / "runtime" / "__main__.py").is_file()
    assert not list((context / "gpuserve-src").rglob("__pycache__"))
    assert "pydantic" in (context / "gpuserve-requirements.txt").read_text()
    assert not (context / "requirements.txt").exists()
    assert not (context / "wheels").exists()


def test_context_find_links(tmp_path: Path, builder: ModuleType) -> None:
    endpoint_file = _write(tmp_path / "project" / "serve.py")
    _write(tmp_path / "wheels-a" / "alpha-1.0-py3-none-any.whl", "a")
    _write(tmp_path / "wheels-b" / "beta-2.0-py3-none-any.whl", "b")
    image = gpuserve.Image(
        python_packages=("alpha==1.0", "beta"), find_links=(str(tmp_path / "wheels-a"), str(tmp_path / "wheels-b"))
    )
    spec = dataclasses.replace(_spec(tmp_path / "project", f"{endpoint_file}:Echo"), settings=_settings(image=image))
    context = tmp_path / "context"
    context.mkdir()
    builder._prepare_context(spec, context, "python:3.11-slim")
    dockerfile = (context / "Dockerfile").read_text()
    assert (context / "wheels" / "0" / "alpha-1.0-py3-none-any.whl").read_text() == "a"
    assert (context / "wheels" / "1" / "beta-2.0-py3-none-any.whl").read_text() == "b"
    assert "--find-links /tmp/gpuserve/wheels/0 --find-links /tmp/gpuserve/wheels/1 -r" in dockerfile
    assert (context / "requirements.txt").read_text() == "alpha==1.0\nbeta\n"


def test_context_find_links_missing(tmp_path: Path, builder: ModuleType) -> None:
    endpoint_file = _write(tmp_path / "project" / "serve.py")
    missing = str(tmp_path / "no-wheels")
    image = gpuserve.Image(find_links=(missing,))
    spec = dataclasses.replace(_spec(tmp_path / "project", f"{endpoint_file}:Echo"), settings=_settings(image=image))
    context = tmp_path / "context"
    context.mkdir()
    with pytest.raises(gpuserve.ConfigError, match="is not a directory") as info:
        builder._prepare_context(spec, context, "python:3.11-slim")
    assert missing in str(info.value)
