"""Encoding of ``predict`` outputs as JSON.

Outputs may contain numpy and torch numbers and arrays (on the CPU or a GPU), pydantic models,
dataclasses, enums, datetimes, paths and UUIDs besides plain JSON values. The common case
goes through ``json.dumps`` once. Only when that fails is the output walked again, to name the
type and the path of the first value that cannot be encoded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from .errors import OutputEncodingError


class _Unencodable(Exception):
    pass


def _convert(value: Any) -> Any:
    """Convert one non-JSON value into JSON-ready Python values (one level deep)."""
    module = type(value).__module__
    if module == "numpy" or module.startswith("numpy."):
        if hasattr(value, "tolist"):  # ndarray and numpy scalars (np.float32, np.int64, np.bool_)
            return value.tolist()
    elif module == "torch" or module.startswith("torch."):
        if hasattr(value, "detach"):  # tensors, including CUDA and bfloat16 ones
            return value.detach().cpu().tolist()
        if hasattr(value, "tolist"):
            return value.tolist()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):  # pydantic v2 models
        return model_dump(mode="python")
    raise _Unencodable


def encode_json(output: Any) -> bytes:
    """Encode ``output`` as JSON bytes, or raise ``OutputEncodingError`` naming the bad value's path."""
    try:
        return json.dumps(output, default=_convert, allow_nan=False, separators=(",", ":")).encode()
    except (_Unencodable, ValueError, TypeError, RecursionError) as exc:
        raise _describe_failure(output, exc) from None


def to_jsonable(output: Any) -> Any:
    """Return ``output`` as plain JSON values (dict, list, str, int, float, bool, None)."""
    return json.loads(encode_json(output))


def _describe_failure(output: Any, cause: BaseException) -> OutputEncodingError:
    found = _find_unencodable(output, "$", depth=0)
    if found is None:
        return OutputEncodingError(f"The output could not be encoded as JSON: {cause}")
    path, reason = found
    return OutputEncodingError(f"The output at {path} {reason}")


def _find_unencodable(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    """Walk ``value`` the way ``encode_json`` does and return the path and reason of the first failure."""
    if depth > 200:
        return path, "is nested more than 200 levels deep (a reference cycle?)."
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return (
            None if math.isfinite(value) else (path, f"is {value}, which JSON cannot represent; return None instead.")
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return path, f"has a key of type {_type_name(key)}; use str keys."
            found = _find_unencodable(item, f"{path}.{key}", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
        return None
    try:
        converted = _convert(value)
    except _Unencodable:
        return path, (
            f"has type {_type_name(value)}, which gpuserve cannot encode as JSON; return JSON types, numpy or "
            "torch values, dataclasses or pydantic models."
        )
    return _find_unencodable(converted, path, depth + 1)


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
