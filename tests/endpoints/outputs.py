"""Outputs of many Python, numpy and torch types, chosen by name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from pydantic import BaseModel

import gpuserve


class Label(BaseModel):
    name: str
    score: Any


@dataclasses.dataclass
class Box:
    x: int
    scores: Any


class Kind(enum.Enum):
    CAT = "cat"


def _torch_outputs() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {}
    outputs: dict[str, Any] = {
        "torch_matrix": torch.tensor([[1.0, 2.0]]),
        "torch_scalar": torch.tensor(2.5),
        "torch_int": torch.tensor([1, 2], dtype=torch.int64),
        "torch_bfloat16": torch.tensor([0.5, 1.5], dtype=torch.bfloat16),
        "torch_requires_grad": torch.tensor([1.0], requires_grad=True) * 2,
    }
    if torch.cuda.is_available():
        outputs["torch_cuda"] = torch.tensor([[1.0, 2.0]], device="cuda")
    return outputs


OUTPUTS: dict[str, Any] = {
    "np_float32": np.float32(1.5),
    "np_mapping": {"p": np.float64(0.25), "k": np.int64(3)},
    "np_array": np.array([[1, 2], [3, 4]], dtype=np.int32),
    "np_bool": np.bool_(True),
    "np_float16_array": np.array([0.5, 0.25], dtype=np.float16),
    "pydantic": Label(name="cat", score=np.float32(0.5)),
    "dataclass": Box(x=1, scores=np.array([0.5])),
    "datetime": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
    "date": dt.date(2024, 5, 1),
    "enum": Kind.CAT,
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "path": PurePosixPath("/models/a.bin"),
    "tuple_and_set": {"t": (1, 2), "s": {3}},
    "unencodable": {"items": [1, {"bad": object()}]},
    "complex": {"z": complex(1, 2)},
    "nan": {"loss": float("nan")},
    "bytes": b"raw",
    **_torch_outputs(),
}


class Outputs(gpuserve.Endpoint):
    def predict(self, kind: str) -> Any:
        return OUTPUTS[kind]
