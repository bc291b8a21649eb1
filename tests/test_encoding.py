"""Unit tests of output encoding."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import numpy as np
import pytest

from gpuserve.encoding import encode_json, to_jsonable
from gpuserve.errors import OutputEncodingError


def test_plain_values_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": []}}
    assert json.loads(encode_json(value)) == value


def test_numpy_scalars_become_numbers() -> None:
    assert to_jsonable(np.float32(1.5)) == 1.5
    assert to_jsonable(np.int8(-3)) == -3
    assert to_jsonable(np.uint64(7)) == 7
    assert to_jsonable({"p": np.float64(0.25), "k": np.int64(3)}) == {"p": 0.25, "k": 3}


def test_numpy_arrays_become_lists() -> None:
    assert to_jsonable(np.zeros((2, 0))) == [[], []]
    assert to_jsonable(np.array(3.0)) == 3.0
    assert to_jsonable([np.array([1, 2]), np.array([True])]) == [[1, 2], [True]]


def test_nested_dataclass_with_numpy() -> None:
    @dataclasses.dataclass
    class Inner:
        v: Any

    @dataclasses.dataclass
    class Outer:
        inner: Inner
        when: dt.timedelta

    assert to_jsonable(Outer(Inner(np.float32(2.0)), dt.timedelta(seconds=90))) == {"inner": {"v": 2.0}, "when": 90.0}


def test_unencodable_names_type_and_path() -> None:
    with pytest.raises(OutputEncodingError) as info:
        encode_json({"rows": [{"ok": 1}, {"bad": object()}]})
    assert "$.rows[1].bad" in str(info.value)
    assert "object" in str(info.value)


def test_non_string_key_named() -> None:
    with pytest.raises(OutputEncodingError, match="key of type tuple"):
        encode_json({(1, 2): "v"})


def test_infinity_rejected_with_path() -> None:
    with pytest.raises(OutputEncodingError, match=r"\$\[0\] is inf"):
        encode_json([float("inf")])


def test_numpy_nan_rejected_with_path() -> None:
    with pytest.raises(OutputEncodingError, match=r"\$\.x\[1\] is nan"):
        encode_json({"x": np.array([1.0, np.nan])})


def test_cycle_rejected() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(OutputEncodingError):
        encode_json(cycle)


def test_torch_tensors_encoded() -> None:
    torch = pytest.importorskip("torch", reason="torch is installed by the examples extra")
    assert to_jsonable(torch.tensor([[1.0, 2.0]])) == [[1.0, 2.0]]
    assert to_jsonable(torch.tensor(2.5)) == 2.5
    assert to_jsonable({"ids": torch.arange(3)}) == {"ids": [0, 1, 2]}
