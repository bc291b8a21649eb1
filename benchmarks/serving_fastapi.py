"""The FastAPI baseline of ``serving_compare.py``: the MLP of ``serving_mlp.py`` in a plain FastAPI app.

It follows FastAPI's documented pattern for blocking work: ``predict`` is a plain ``def``, so
FastAPI validates the body with a pydantic model and runs the function in its thread pool.
The model is built when the module is imported, before uvicorn opens the port.

Serve it with ``python -m uvicorn serving_fastapi:app --app-dir benchmarks --port 8000``.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from serving_mlp import build_mlp, run_mlp

model = build_mlp()
app = FastAPI()


class Inputs(BaseModel):
    x: list[float]


@app.post("/predict")
def predict(inputs: Inputs) -> dict[str, list[float]]:
    return {"output": run_mlp(model, [inputs.x])[0]}


@app.get("/health")
def health() -> dict[str, str]:
    return {"phase": "ready"}
