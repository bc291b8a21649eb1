"""The gpuserve side of ``serving_compare.py``: the MLP of ``serving_mlp.py`` as an endpoint.

Serve it with ``python -m gpuserve.runtime benchmarks/serving_gpuserve.py:MLP --port 8000``.
A request is ``{"x": [64 floats]}`` and the response ``{"output": [16 floats]}``, also for
``BatchedMLP``, which the runtime calls with the inputs of up to 32 requests at once.
"""

from __future__ import annotations

import os

import torch
from serving_mlp import build_mlp, run_mlp

import gpuserve


class MLP(gpuserve.Endpoint):
    """Run the benchmark MLP on one input row per request."""

    def setup(self) -> None:
        self.model: torch.nn.Module = build_mlp()

    def predict(self, x: list[float]) -> list[float]:
        return run_mlp(self.model, [x])[0]


class ThreadedMLP(MLP):
    """The same model with one predict thread per CPU, as FastAPI's thread pool runs it.

    Each call is a forward pass in inference mode on one torch thread, which torch allows from
    several threads at once.
    """

    thread_safe = True
    scaling = gpuserve.Scaling(max_concurrency=os.cpu_count() or 1)


class BatchedMLP(MLP):
    """Run the benchmark MLP on up to 32 requests at once, waiting at most 5 ms for a batch to fill."""

    @gpuserve.batched(max_batch_size=32, max_wait_ms=5)
    def predict(self, x: list[list[float]]) -> list[list[float]]:  # type: ignore[override]
        return run_mlp(self.model, x)
