"""Validation of ``Image``, ``Volume``, ``Scaling`` and ``Settings``, and their JSON form."""

from __future__ import annotations

from typing import Any

import pytest

from gpuserve.errors import ConfigError
from gpuserve.gpus import GPU
from gpuserve.settings import SETTING_NAMES, Image, Scaling, Settings, Volume, build_settings

WEIGHTS = Volume(name="weights")


def test_image_defaults() -> None:
    image = Image()

    assert image.python_packages == ()
    assert image.system_packages == ()
    assert image.base_image is None
    assert image.env == {}


def test_image_lists_become_tuples() -> None:
    image = Image(python_packages=["torch==2.4.1"], system_packages=["ffmpeg"], find_links=["/opt/wheels"])  # type: ignore[arg-type]

    assert image.python_packages == ("torch==2.4.1",)
    assert image.system_packages == ("ffmpeg",)
    assert image.find_links == ("/opt/wheels",)


@pytest.mark.parametrize(
    ("options", "value", "fix"),
    [
        ({"python_packages": "torch"}, "'torch'", "use a list of strings"),
        ({"python_packages": ["torch", ""]}, "''", "use non-empty strings"),
        ({"python_packages": [3]}, "3", "use non-empty strings"),
        ({"python_packages": ["-e ."]}, "'-e .'", "use find_links"),
        ({"python_packages": ["--index-url=http://127.0.0.1"]}, "'--index-url=http://127.0.0.1'", "use find_links"),
        ({"system_packages": ["FFmpeg"]}, "'FFmpeg'", "use a Debian package name"),
        ({"system_packages": ["ffmpeg; rm -rf /"]}, "'ffmpeg; rm -rf /'", "use a Debian package name"),
        ({"system_packages": ["x"]}, "'x'", "use a Debian package name"),
        ({"base_image": ""}, "''", "use an image reference"),
        ({"base_image": 3}, "3", "use an image reference"),
        ({"env": ["HF_HOME"]}, "['HF_HOME']", "use a dict"),
        ({"env": {"1BAD": "x"}}, "'1BAD'", "use letters, digits and underscores"),
        ({"env": {"HF-HOME": "x"}}, "'HF-HOME'", "use letters, digits and underscores"),
        ({"env": {"WORKERS": 4}}, "4", "values must be strings"),
        ({"find_links": "/opt/wheels"}, "'/opt/wheels'", "use a list of strings"),
    ],
)
def test_image_invalid_value(options: dict[str, Any], value: str, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Image(**options)

    assert value in str(caught.value)
    assert fix in str(caught.value)


def test_image_accepts_pinned_debian_package() -> None:
    assert Image(system_packages=["libgl1=1.7.0-1+b1"]).system_packages == ("libgl1=1.7.0-1+b1",)  # type: ignore[arg-type]


def test_image_copies_env() -> None:
    env = {"HF_HOME": "/models"}
    image = Image(env=env)
    env["HF_HOME"] = "/elsewhere"

    assert image.env == {"HF_HOME": "/models"}


def test_volume_by_name() -> None:
    assert Volume(name="model-weights").name == "model-weights"


def test_volume_by_local_dir() -> None:
    assert Volume(local_dir="./weights").local_dir == "./weights"


@pytest.mark.parametrize("options", [{}, {"name": "w", "local_dir": "./w"}])
def test_volume_needs_one_source(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="exactly one of name or local_dir"):
        Volume(**options)


@pytest.mark.parametrize("name", ["my weights", "-weights", "w" * 64, "a/b", ""])
def test_volume_invalid_name(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Volume(name=name)

    assert f"Invalid volume name {name!r}" in str(caught.value)
    assert "'model-weights'" in str(caught.value)


@pytest.mark.parametrize("local_dir", ["", "   "])
def test_volume_invalid_local_dir(local_dir: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Volume(local_dir=local_dir)

    assert f"Invalid local_dir {local_dir!r}" in str(caught.value)
    assert "'./weights'" in str(caught.value)


def test_scaling_defaults() -> None:
    scaling = Scaling()

    assert scaling.min_instances == 0
    assert scaling.max_instances == 1
    assert scaling.idle_timeout == 60.0
    assert scaling.max_concurrency == 1


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("min_instances", -1, "at least 0"),
        ("min_instances", 1.5, "at least 0"),
        ("max_instances", 0, "at least 1"),
        ("max_instances", True, "at least 1"),
        ("max_instances", "2", "at least 1"),
        ("max_concurrency", 0, "at least 1"),
        ("idle_timeout", 0, "a positive number of seconds"),
        ("idle_timeout", -5, "a positive number of seconds"),
        ("idle_timeout", float("inf"), "a positive number of seconds"),
        ("idle_timeout", float("nan"), "a positive number of seconds"),
        ("idle_timeout", True, "a positive number of seconds"),
        ("idle_timeout", "60", "a positive number of seconds"),
    ],
)
def test_scaling_invalid_value(field: str, value: object, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Scaling(**{field: value})  # type: ignore[arg-type]

    assert f"Invalid {field} {value!r}" in str(caught.value)
    assert fix in str(caught.value)


def test_scaling_min_above_max() -> None:
    with pytest.raises(ConfigError) as caught:
        Scaling(min_instances=3, max_instances=2)

    assert "min_instances (3)" in str(caught.value)
    assert "max_instances (2)" in str(caught.value)
    assert "raise max_instances" in str(caught.value)


def test_build_defaults() -> None:
    assert build_settings({}) == Settings()


def test_build_parses_gpu() -> None:
    assert build_settings({"gpu": "h100:2"}).gpu == GPU("H100", 2)


def test_build_unknown_gpu() -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({"gpu": "A1000"})

    assert "'A1000'" in str(caught.value)
    assert "L4" in str(caught.value)


def test_build_unknown_setting_lists_names() -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({"gpus": "L4"})

    message = str(caught.value)
    assert "Unknown setting 'gpus'" in message
    for name in [*SETTING_NAMES, "idle_timeout", "max_instances"]:
        assert name in message


def test_build_scaling_override() -> None:
    settings = build_settings({"scaling": Scaling(max_instances=3, idle_timeout=120), "idle_timeout": 5})

    assert settings.scaling.idle_timeout == 5
    assert settings.scaling.max_instances == 3


def test_build_invalid_scaling_override() -> None:
    with pytest.raises(ConfigError, match="Invalid idle_timeout 0"):
        build_settings({"idle_timeout": 0})


def test_build_override_min_above_max() -> None:
    with pytest.raises(ConfigError, match=r"min_instances \(2\)"):
        build_settings({"min_instances": 2})


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("scaling", {"idle_timeout": 5}, "use Scaling("),
        ("image", {"python_packages": ["torch"]}, "use Image("),
        ("secrets", "HF_TOKEN", "use a list of strings"),
        ("timeout", 0, "a positive number of seconds"),
        ("timeout", "300", "a positive number of seconds"),
        ("setup_timeout", -1, "a positive number of seconds"),
        ("volumes", ["/models"], "use a dict of mount path to Volume"),
    ],
)
def test_build_invalid_value(name: str, value: object, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({name: value})

    assert repr(value) in str(caught.value)
    assert fix in str(caught.value)


@pytest.mark.parametrize("secret", ["hf-token", "1TOKEN", ""])
def test_build_invalid_secret_name(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({"secrets": [secret]})

    assert repr(secret) in str(caught.value)


def test_build_timeouts_become_float() -> None:
    settings = build_settings({"timeout": 30, "setup_timeout": 90})

    assert settings.timeout == 30.0
    assert isinstance(settings.timeout, float)
    assert settings.setup_timeout == 90.0


@pytest.mark.parametrize("path", ["models", "/", "//", "/models/..", 3])
def test_build_invalid_mount_path(path: object) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({"volumes": {path: WEIGHTS}})

    assert f"Invalid mount path {path!r}" in str(caught.value)
    assert "'/models'" in str(caught.value)


def test_build_volume_not_volume() -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({"volumes": {"/models": "weights"}})

    assert "'/models'" in str(caught.value)
    assert "'weights'" in str(caught.value)
    assert "Volume(name=...)" in str(caught.value)


def test_build_normalises_mount_path() -> None:
    settings = build_settings({"volumes": {"/models/": WEIGHTS}})

    assert list(settings.volumes) == ["/models"]


def test_build_nested_mount_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings({"volumes": {"/models": WEIGHTS, "/models/cache": Volume(name="cache")}})

    assert "'/models'" in str(caught.value)
    assert "'/models/cache'" in str(caught.value)
    assert "overlap" in str(caught.value)


def test_build_sibling_mount_paths() -> None:
    settings = build_settings({"volumes": {"/models": WEIGHTS, "/models-cache": Volume(name="cache")}})

    assert sorted(settings.volumes) == ["/models", "/models-cache"]


def test_build_nested_paths_not_adjacent() -> None:
    volumes = {"/models": WEIGHTS, "/models-v2": Volume(name="v2"), "/models/cache": Volume(name="cache")}

    with pytest.raises(ConfigError, match="overlap"):
        build_settings({"volumes": volumes})


def test_build_same_mount_path_twice() -> None:
    volumes = {"/models": WEIGHTS, "/models/": Volume(name="other")}

    with pytest.raises(ConfigError, match="'/models'"):
        build_settings({"volumes": volumes})


def full_settings() -> Settings:
    return build_settings(
        {
            "gpu": "A100-80GB:2",
            "image": Image(
                python_packages=("torch==2.4.1", "transformers"),
                system_packages=("ffmpeg",),
                base_image="python:3.11-slim",
                env={"HF_HOME": "/models"},
                find_links=("/opt/wheels",),
            ),
            "volumes": {"/models": WEIGHTS, "/data": Volume(local_dir="./data", read_only=True)},
            "secrets": ["HF_TOKEN"],
            "scaling": Scaling(min_instances=1, max_instances=3, idle_timeout=120, max_concurrency=4),
            "timeout": 30,
            "setup_timeout": 900,
        }
    )


def test_json_round_trip() -> None:
    settings = full_settings()

    assert Settings.from_json(settings.to_json()) == settings


def test_json_round_trip_defaults() -> None:
    assert Settings.from_json(Settings().to_json()) == Settings()


def test_json_gpu_form() -> None:
    decoded = Settings.from_json(full_settings().to_json())

    assert decoded.gpu == GPU("A100-80GB", 2)
    assert decoded.volumes["/data"].read_only is True
    assert decoded.image.python_packages == ("torch==2.4.1", "transformers")
