"""The gpuserve side of ``serving_compare.py``: the MLP of ``serving_mlp.py`` as an endpoint.

Serve it with ``python -m gpuserve.runtime benchmarks/serving_gpuserve.py:MLP --port 8000``.
A request is ``{"x": [64 floats]}`` and the response ``{"output": [16 floats]}``.
"""

from __future__ import annotations

import torch
from serving_mlp import build_mlp, run_mlp

import gpuserve


class MLP(gpuserve.Endpoint):
    """Run the benchmark MLP on one input row per request."""

    def setup(self) -> None:
        self.model: torch.nn.Module = build_mlp()

    def predict(self, x: list[float]) -> list[float]:
        return run_mlp(self.model, [x])[0]
