"""Input and output schemas derived from ``predict``'s signature, with pydantic."""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pydantic

from .batching import batch_config
from .errors import ConfigError

_SEQUENCES = (list, collections.abc.Sequence, collections.abc.MutableSequence)
_ITERATORS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


def item_type(annotation: Any, described: str) -> Any:
    """Return ``T`` of a batch annotation ``list[T]``; raise ``ConfigError`` for anything else."""
    if annotation is Any:
        return Any
    origin = typing.get_origin(annotation)
    if origin in _SEQUENCES:
        args = typing.get_args(annotation)
        return args[0] if args else Any
    raise ConfigError(
        f"{described} is annotated {annotation!r}, but a batched predict receives a list per parameter; "
        "annotate it as list[T], for example text: list[str]."
    )


def _streamed_item_type(annotation: Any) -> Any:
    """Return ``T`` of ``Iterator[T]``, ``Generator[T, ...]`` and their async forms, else ``annotation``."""
    if typing.get_origin(annotation) in _ITERATORS:
        args = typing.get_args(annotation)
        return args[0] if args else Any
    return annotation


class _InputBase(pydantic.BaseModel):
    # Unknown fields are rejected so that a typo in a field name fails loudly instead of
    # silently falling back to the parameter's default.
    model_config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False)


def build_input_model(cls: type, method: Callable[..., Any]) -> type[pydantic.BaseModel]:
    """Build the pydantic model of ``method``'s parameters (``self`` excluded)."""
    try:
        hints = typing.get_type_hints(method, include_extras=True)
    except Exception as exc:  # a NameError or TypeError from the user's annotations
        raise ConfigError(f"Cannot read the type hints of {cls.__name__}.predict: {exc}") from exc

    batched = batch_config(method) is not None
    field_definitions: dict[str, Any] = {}
    for parameter in list(inspect.signature(method).parameters.values())[1:]:
        annotation = hints.get(parameter.name, Any)
        if batched:
            annotation = item_type(annotation, f"{cls.__name__}.predict's parameter {parameter.name!r}")
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        field_definitions[parameter.name] = (annotation, default)
    try:
        return pydantic.create_model(f"{cls.__name__}Input", __base__=_InputBase, **field_definitions)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise ConfigError(
            f"{cls.__name__}.predict has an input type pydantic cannot validate: {exc}. "
            "Use JSON types (str, int, float, bool, list, dict), Literal, Enum or a pydantic model."
        ) from exc


def output_schema(method: Callable[..., Any]) -> dict[str, Any]:
    """Return the JSON Schema of ``method``'s return annotation, or ``{}`` when it has none usable."""
    try:
        annotation = typing.get_type_hints(method, include_extras=True).get("return", Any)
        if batch_config(method) is not None:
            annotation = item_type(annotation, "the return value")
        annotation = _streamed_item_type(annotation)
        if annotation is Any or annotation is None:
            return {}
        return pydantic.TypeAdapter(annotation).json_schema()
    except Exception:  # NOTE: an output type without a JSON Schema (a numpy array) still serves.
        return {}
