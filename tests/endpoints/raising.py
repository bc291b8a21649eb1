"""A predict that raises on request, and a slow one for timeouts."""

from __future__ import annotations

import time

import gpuserve


class Raising(gpuserve.Endpoint):
    timeout = 1.0

    def predict(self, fail: bool = False, sleep: float = 0.0) -> str:
        if fail:
            raise ValueError("bad value for the model")
        time.sleep(sleep)
        return "ok"
