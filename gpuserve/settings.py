"""Deployment settings of an endpoint: image, volumes, secrets, scaling and timeouts.

Settings are declared as class attributes of an ``Endpoint`` subclass, validated when
the class is defined, and can be overridden per deploy with keyword arguments.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError
from .gpus import GPU, parse_gpu

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$")
#: 32 MiB, the request size limit of Cloud Run and the largest of the providers gpuserve supports.
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024


def _as_str_tuple(value: object, setting: str, example: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"Invalid {setting} {value!r}; use a list of strings, for example {example}.")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"Invalid entry {item!r} in {setting}; use non-empty strings, for example {example}.")
    return items


def _check_env_name(name: object, setting: str) -> str:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ConfigError(
            f"Invalid {setting} name {name!r}; use letters, digits and underscores, not starting with a digit, "
            "for example 'HF_TOKEN'."
        )
    return name


@dataclass(frozen=True)
class Image:
    """Contents of an endpoint's container image.

    Example: ``Image(python_packages=["torch==2.4.1", "transformers"], system_packages=["ffmpeg"])``.
    """

    #: Requirement strings given to pip, as in a requirements file.
    python_packages: Sequence[str] = ()
    #: Debian package names installed with apt-get.
    system_packages: Sequence[str] = ()
    #: Base image; None picks a CUDA runtime image with a GPU and a slim Python image without.
    base_image: str | None = None
    #: Environment variables set in the image; use ``secrets`` for credentials.
    env: Mapping[str, str] = field(default_factory=dict)
    #: Local folders of wheels that pip searches before the index, for offline or pinned builds.
    find_links: Sequence[str] = ()

    def __post_init__(self) -> None:
        python_packages = _as_str_tuple(self.python_packages, "python_packages", "['torch', 'numpy<2']")
        for requirement in python_packages:
            if requirement.lstrip().startswith("-"):
                raise ConfigError(
                    f"Invalid python package {requirement!r}; pip options are not accepted here, "
                    "use find_links for wheel folders."
                )
        system_packages = _as_str_tuple(self.system_packages, "system_packages", "['ffmpeg', 'libgl1']")
        for package in system_packages:
            if not _DEBIAN_PACKAGE.match(package):
                raise ConfigError(f"Invalid system package {package!r}; use a Debian package name such as 'ffmpeg'.")
        if self.base_image is not None and (not isinstance(self.base_image, str) or not self.base_image.strip()):
            raise ConfigError(
                f"Invalid base_image {self.base_image!r}; use an image reference such as 'python:3.11-slim'."
            )
        if not isinstance(self.env, Mapping):
            raise ConfigError(f"Invalid image env {self.env!r}; use a dict such as {{'HF_HOME': '/models'}}.")
        for key, value in self.env.items():
            _check_env_name(key, "environment variable")
            if not isinstance(value, str):
                raise ConfigError(f"Invalid value {value!r} for environment variable {key}; values must be strings.")
            if any(ord(character) < 32 or ord(character) == 127 for character in value):
                raise ConfigError(
                    f"Invalid value {value!r} for environment variable {key}: control characters such as tabs and "
                    "newlines cannot pass through image definitions; remove them."
                )
        object.__setattr__(self, "python_packages", python_packages)
        object.__setattr__(self, "system_packages", system_packages)
        object.__setattr__(self, "env", dict(self.env))
        object.__setattr__(self, "find_links", _as_str_tuple(self.find_links, "find_links", "['/opt/wheels']"))


@dataclass(frozen=True)
class Volume:
    """Persistent storage mounted into every instance: a named volume or a local directory.

    Example: ``volumes = {"/models": Volume(name="llama-weights")}`` or
    ``{"/models": Volume(local_dir="~/weights")}``.
    """

    #: Name of a provider volume, created when missing.
    name: str | None = None
    #: Directory on the deploying machine, mounted by the local and Docker backends.
    local_dir: str | None = None
    #: Mount the volume read-only.
    read_only: bool = False

    def __post_init__(self) -> None:
        if (self.name is None) == (self.local_dir is None):
            raise ConfigError(
                "A Volume needs exactly one of name or local_dir, for example Volume(name='weights') "
                "or Volume(local_dir='./weights')."
            )
        if self.name is not None and (not isinstance(self.name, str) or not _VOLUME_NAME.match(self.name)):
            raise ConfigError(
                f"Invalid volume name {self.name!r}; use up to 63 letters, digits, '.', '_' or '-', "
                "for example 'model-weights'."
            )
        if self.local_dir is not None and (not isinstance(self.local_dir, str) or not self.local_dir.strip()):
            raise ConfigError(f"Invalid local_dir {self.local_dir!r}; use a directory path such as './weights'.")


@dataclass(frozen=True)
class Scaling:
    """How many instances run and when they stop.

    Example: ``Scaling(max_instances=3, idle_timeout=120)`` scales from zero to three instances and
    back to zero two minutes after the last request.
    """

    #: Instances kept running with no traffic; 0 scales to zero.
    min_instances: int = 0
    #: Upper bound on running instances.
    max_instances: int = 1
    #: Seconds without requests before an instance is stopped.
    idle_timeout: float = 60.0
    #: Requests one instance serves at the same time.
    max_concurrency: int = 1
    #: Requests one instance keeps waiting for a free slot; more get 503 with Retry-After.
    max_queue: int = 128

    def __post_init__(self) -> None:
        _check_int(self.min_instances, "min_instances", minimum=0)
        _check_int(self.max_instances, "max_instances", minimum=1)
        _check_int(self.max_concurrency, "max_concurrency", minimum=1)
        _check_int(self.max_queue, "max_queue", minimum=0)
        _check_seconds(self.idle_timeout, "idle_timeout")
        if self.min_instances > self.max_instances:
            raise ConfigError(
                f"min_instances ({self.min_instances}) is greater than max_instances ({self.max_instances}); "
                "raise max_instances or lower min_instances."
            )


def _check_int(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"Invalid {name} {value!r}; use a whole number of at least {minimum}.")


def _check_seconds(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(f"Invalid {name} {value!r}; use a positive number of seconds, for example 60.")


@dataclass(frozen=True)
class Settings:
    """The complete, validated deployment settings of an endpoint."""

    gpu: GPU | None = None
    image: Image = field(default_factory=Image)
    volumes: Mapping[str, Volume] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    scaling: Scaling = field(default_factory=Scaling)
    #: Seconds one request may run before it fails.
    timeout: float = 300.0
    #: Seconds ``setup`` may take before a deploy gives up; also sizes provider startup probes.
    setup_timeout: float = 600.0
    #: Largest request body in bytes; larger requests get 413.
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: Seconds in-flight requests may take to finish after SIGTERM before the process exits.
    shutdown_grace: float = 30.0

    def to_json(self) -> str:
        """Encode the settings as JSON, the form the runtime reads from ``GPUSERVE_SETTINGS``."""
        data = asdict(self)
        data["gpu"] = None if self.gpu is None else {"name": self.gpu.name, "count": self.gpu.count}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Decode settings written by ``to_json``."""
        data = json.loads(text)
        return cls(
            gpu=None if data["gpu"] is None else GPU(**data["gpu"]),
            image=Image(**data["image"]),
            volumes={path: Volume(**volume) for path, volume in data["volumes"].items()},
            secrets=tuple(data["secrets"]),
            scaling=Scaling(**data["scaling"]),
            timeout=data["timeout"],
            setup_timeout=data["setup_timeout"],
            max_body_size=data.get("max_body_size", DEFAULT_MAX_BODY_SIZE),
            shutdown_grace=data.get("shutdown_grace", 30.0),
        )


#: Settings that may be overridden at deploy time.
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))
_SCALING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Scaling))


def _check_volumes(volumes: object) -> dict[str, Volume]:
    if not isinstance(volumes, Mapping):
        raise ConfigError(
            f"Invalid volumes {volumes!r}; use a dict of mount path to Volume, e.g. {{'/models': Volume(name='w')}}."
        )
    checked: dict[str, Volume] = {}
    for path, volume in volumes.items():
        if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) in ("/", "//"):
            raise ConfigError(f"Invalid mount path {path!r}; use an absolute path below the root, such as '/models'.")
        if not isinstance(volume, Volume):
            raise ConfigError(
                f"Invalid volume for {path!r}: {volume!r}; use Volume(name=...) or Volume(local_dir=...)."
            )
        normalized = posixpath.normpath(path)
        if normalized in checked:
            raise ConfigError(f"Mount path {path!r} is given twice (as {normalized!r}); mount one volume per path.")
        for other in checked:
            if normalized.startswith(other + "/") or other.startswith(normalized + "/"):
                raise ConfigError(f"Mount paths {other!r} and {path!r} overlap; mount volumes at separate paths.")
        checked[normalized] = volume
    return checked


def build_settings(values: Mapping[str, Any]) -> Settings:
    """Validate raw setting values (class attributes merged with overrides) into ``Settings``."""
    unknown = set(values) - set(SETTING_NAMES) - set(_SCALING_NAMES)
    if unknown:
        raise ConfigError(
            f"Unknown setting {sorted(unknown)[0]!r}; valid settings are {', '.join(SETTING_NAMES + _SCALING_NAMES)}."
        )
    scaling = values.get("scaling", Scaling())
    if not isinstance(scaling, Scaling):
        raise ConfigError(f"Invalid scaling {scaling!r}; use Scaling(min_instances=0, max_instances=2, ...).")
    scaling_overrides = {name: values[name] for name in _SCALING_NAMES if name in values}
    if scaling_overrides:
        scaling = replace(scaling, **scaling_overrides)

    image = values.get("image", Image())
    if not isinstance(image, Image):
        raise ConfigError(f"Invalid image {image!r}; use Image(python_packages=[...], system_packages=[...]).")
    secrets = _as_str_tuple(values.get("secrets", ()), "secrets", "['HF_TOKEN']")
    for secret in secrets:
        _check_env_name(secret, "secret")
    timeout = values.get("timeout", 300.0)
    setup_timeout = values.get("setup_timeout", 600.0)
    _check_seconds(timeout, "timeout")
    _check_seconds(setup_timeout, "setup_timeout")
    max_body_size = values.get("max_body_size", DEFAULT_MAX_BODY_SIZE)
    _check_int(max_body_size, "max_body_size", minimum=1)
    shutdown_grace = values.get("shutdown_grace", 30.0)
    _check_seconds(shutdown_grace, "shutdown_grace")
    return Settings(
        gpu=parse_gpu(values.get("gpu")),
        image=image,
        volumes=_check_volumes(values.get("volumes", {})),
        secrets=secrets,
        scaling=scaling,
        timeout=float(timeout),
        setup_timeout=float(setup_timeout),
        max_body_size=max_body_size,
        shutdown_grace=float(shutdown_grace),
    )
