"""The LitServe side of ``serving_compare.py``: the MLP of ``serving_mlp.py`` as a ``LitAPI``.

It uses LitServe's documented settings for a CPU model under load: ``accelerator="cpu"``, one
inference worker (``workers_per_device=1``) and ``fast_queue=True``, which LitServe recommends
above 100 requests per second. LitServe runs the HTTP server and the inference worker in
separate processes. With ``--batch`` the API batches up to 32 requests and waits at most 5 ms
for a batch to fill (``max_batch_size=32, batch_timeout=0.005``).

Serve it with ``python benchmarks/serving_litserve.py --port 8000 [--batch]``.
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls
import torch
from serving_mlp import build_mlp, run_mlp

MAX_BATCH_SIZE = 32
BATCH_TIMEOUT = 0.005  # seconds


class MLPAPI(ls.LitAPI):
    """Run the benchmark MLP on one input row per request."""

    def setup(self, device: str) -> None:
        self.model: torch.nn.Module = build_mlp()

    # No annotation on ``request``: LitServe reads it to choose how to parse the body, and an
    # unannotated parameter gets the decoded JSON body.
    def decode_request(self, request, **kwargs: Any) -> list[float]:  # type: ignore[no-untyped-def]
        return request["x"]  # type: ignore[no-any-return]

    def predict(self, x: list[float], **kwargs: Any) -> list[float]:
        return run_mlp(self.model, [x])[0]

    def encode_response(self, output: list[float], **kwargs: Any) -> dict[str, list[float]]:
        return {"output": output}


class BatchedMLPAPI(MLPAPI):
    """Run the benchmark MLP on a batch of rows, one row per request.

    LitServe's default ``batch`` leaves a batch of lists as a list, and its default ``unbatch``
    splits the returned list into one output per request.
    """

    def predict(self, x: list[list[float]], **kwargs: Any) -> list[list[float]]:  # type: ignore[override]
        return run_mlp(self.model, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--batch", action="store_true", help="batch up to 32 requests, waiting at most 5 ms")
    args = parser.parse_args()

    if args.batch:
        api: ls.LitAPI = BatchedMLPAPI(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT)
    else:
        api = MLPAPI()
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, fast_queue=True)
    server.run(host=args.host, port=args.port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
