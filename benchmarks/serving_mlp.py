"""The model that every server in ``serving_compare.py`` serves: a small seeded MLP on the CPU.

All servers import this module, so they build the same weights and run the same forward pass.
The input is 64 floats and the output 16 floats. Two hidden layers of ``$SERVING_MLP_HIDDEN``
units (default 1024) hold about 1.1 million float32 weights, 4.5 MB. A forward pass of one row
then mostly reads the weights from memory, so a batch of 32 rows costs far less than 32 passes
of one row. ``docs/benchmarks.md`` gives the timings on the benchmark machine.
"""

from __future__ import annotations

import math
import os

import torch

INPUT_SIZE = 64
OUTPUT_SIZE = 16
HIDDEN_SIZE_ENV = "SERVING_MLP_HIDDEN"
DEFAULT_HIDDEN_SIZE = 1024
SEED = 0


def hidden_size() -> int:
    """Return the hidden layer width from ``$SERVING_MLP_HIDDEN``, or the default."""
    return int(os.environ.get(HIDDEN_SIZE_ENV, DEFAULT_HIDDEN_SIZE))


def build_mlp(hidden: int | None = None) -> torch.nn.Module:
    """Build the seeded MLP in eval mode and limit the calling thread to one torch thread.

    One thread per server keeps the comparison fair on a small machine, because no server can
    spread a forward pass over the cores that its other processes and the load generator need.
    Threads other than the caller keep torch's default, so ``serving_compare.py`` also starts
    every server with ``OMP_NUM_THREADS=1`` and ``MKL_NUM_THREADS=1``.
    """
    torch.set_num_threads(1)
    hidden = hidden_size() if hidden is None else hidden
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(SEED)
    try:
        model = torch.nn.Sequential(
            torch.nn.Linear(INPUT_SIZE, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, OUTPUT_SIZE),
        )
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def run_mlp(model: torch.nn.Module, rows: list[list[float]]) -> list[list[float]]:
    """Run ``model`` on a batch of input rows and return one output row per input row."""
    with torch.inference_mode():
        return model(torch.tensor(rows, dtype=torch.float32)).tolist()  # type: ignore[no-any-return]


def example_input() -> list[float]:
    """Return the fixed input row that the benchmark sends in every request."""
    return [round(math.sin(index), 4) for index in range(INPUT_SIZE)]
