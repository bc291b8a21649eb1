"""The ``Endpoint`` base class that users subclass."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from .batching import batch_config
from .envvars import VOLUME_PATHS_ENV
from .errors import ConfigError
from .gpus import GPU
from .settings import DEFAULT_MAX_BODY_SIZE, SETTING_NAMES, Image, Scaling, Settings, Volume, build_settings


class Endpoint:
    """A model served over HTTP: subclass it, load weights in ``setup``, compute outputs in ``predict``.

    Example::

        class Echo(gpuserve.Endpoint):
            gpu = "L4"
            scaling = gpuserve.Scaling(idle_timeout=120)

            def setup(self) -> None:
                self.prefix = "echo: "

            def predict(self, text: str, times: int = 1) -> str:
                return self.prefix + text * times

    The inputs of ``predict`` become the JSON fields of a request, validated against its type
    hints. Class attributes declare the deployment settings; ``gpuserve.deploy`` can override each.
    """

    #: GPU per instance: None for CPU only, a name such as "L4", "H100:2", or ``GPU("H100", 2)``.
    gpu: ClassVar[str | GPU | None] = None
    #: Image contents: python and system packages, base image, environment.
    image: ClassVar[Image] = Image()
    #: Mount path -> ``Volume``, for example ``{"/models": Volume(name="weights")}``.
    volumes: ClassVar[Mapping[str, Volume]] = {}
    #: Names of secrets, read from the deployer's environment or the provider's secret store.
    secrets: ClassVar[Sequence[str]] = ()
    #: Instance counts, idle timeout and per-instance concurrency.
    scaling: ClassVar[Scaling] = Scaling()
    #: Seconds one request may run.
    timeout: ClassVar[float] = 300.0
    #: Seconds ``setup`` may take.
    setup_timeout: ClassVar[float] = 600.0
    #: Largest request body in bytes (default 32 MiB); larger requests get 413.
    max_body_size: ClassVar[int] = DEFAULT_MAX_BODY_SIZE
    #: Seconds in-flight requests may take to finish after SIGTERM.
    shutdown_grace: ClassVar[float] = 30.0
    #: Set True when a sync ``predict`` may run in several threads at once (up to max_concurrency).
    #: By default sync calls run one at a time, so per-request state kept on ``self`` never mixes.
    thread_safe: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_setting_names(cls)
        cls.deployment_settings()
        if cls.predict is not Endpoint.predict:
            check_predict_signature(cls)

    def setup(self) -> None:
        """Load weights and other state once per instance, before it serves requests."""

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output of one request. Subclasses declare their inputs as typed parameters."""
        raise NotImplementedError(f"{type(self).__name__} must define predict(self, ...).")

    @classmethod
    def deployment_settings(cls, **overrides: Any) -> Settings:
        """Return the validated settings of this class, with ``overrides`` applied."""
        values = {name: getattr(cls, name) for name in SETTING_NAMES}
        values.update(overrides)
        try:
            return build_settings(values)
        except ConfigError as exc:
            raise ConfigError(f"{cls.__name__}: {exc}") from None

    def volume_path(self, mount_path: str) -> Path:
        """Return where ``mount_path`` (a volume's mount path, or a path below it) is on this instance.

        In containers that is ``mount_path`` itself; the local backend maps volumes to
        directories on the host, so code should open files through this method.
        """
        mapping = getattr(self, "_gpuserve_volume_paths", None)
        if mapping is None:
            mapping = json.loads(os.environ.get(VOLUME_PATHS_ENV, "{}"))
        path = PurePosixPath(mount_path)
        for mount, directory in mapping.items():
            if path == PurePosixPath(mount) or PurePosixPath(mount) in path.parents:
                return Path(directory, path.relative_to(mount))
        return Path(mount_path)


def concurrent_calls(cls: type[Endpoint], max_concurrency: int) -> tuple[int, str]:
    """Return how many ``predict`` calls the runtime runs at once on one instance of ``cls``, and why.

    An ``async def`` predict (or async generator) runs up to ``max_concurrency`` calls on the
    event loop, a sync one on up to ``max_concurrency`` threads when the class sets
    ``thread_safe = True``, and otherwise one call at a time.
    """
    predict = cls.predict
    if inspect.iscoroutinefunction(predict) or inspect.isasyncgenfunction(predict):
        return max_concurrency, "async predict"
    if cls.thread_safe:
        return max_concurrency, "sync predict, thread_safe"
    return 1, "sync predict, not thread_safe"


_SCALING_FIELDS = tuple(field.name for field in dataclasses.fields(Scaling))
_CLASS_SETTINGS = (*SETTING_NAMES, "thread_safe")


def check_setting_names(cls: type[Endpoint]) -> None:
    """Reject scaling fields set as class attributes, and warn about near misses of setting names.

    Without this, ``idle_timeout = 5`` or ``scailing = Scaling(...)`` on the class would be
    ignored without a word.
    """
    for name, value in vars(cls).items():
        if name.startswith("_") or callable(value) or isinstance(value, (classmethod, staticmethod, property)):
            continue
        if name in _SCALING_FIELDS:
            raise ConfigError(
                f"{cls.__name__}.{name} is a scaling setting, so a class attribute of that name is ignored; "
                f"write scaling = gpuserve.Scaling({name}={value!r}) instead."
            )
        if name not in _CLASS_SETTINGS:
            close = difflib.get_close_matches(name, _CLASS_SETTINGS, n=1, cutoff=0.8)
            if close:
                warnings.warn(
                    f"{cls.__name__}.{name} is not a gpuserve setting and is ignored by deploy; "
                    f"did you mean {close[0]}?",
                    stacklevel=3,
                )


def check_predict_signature(cls: type[Endpoint]) -> None:
    """Reject ``predict`` signatures that cannot map to named JSON fields, and bad batch annotations."""
    if batch_config(cls.predict) is not None:
        if inspect.isgeneratorfunction(cls.predict) or inspect.isasyncgenfunction(cls.predict):
            raise ConfigError(
                f"{cls.__name__}.predict cannot both stream and batch; remove @gpuserve.batched or the yield."
            )
        from .schema import build_input_model  # pydantic loads here, for batched classes only

        build_input_model(cls, cls.predict)
    signature = inspect.signature(cls.predict)
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ConfigError(
                f"{cls.__name__}.predict takes {parameter}; declare each input as a named parameter, "
                "for example predict(self, text: str, top_k: int = 5)."
            )
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ConfigError(
                f"{cls.__name__}.predict has the positional-only parameter {parameter.name!r}; "
                "inputs arrive by name, so remove the '/' from the signature."
            )


_NAME_PART = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def default_name(cls: type) -> str:
    """Derive a deployment name from a class name: ``TextEmbed`` becomes ``text-embed``."""
    return _NAME_PART.sub("-", cls.__name__).lower().replace("_", "-")
