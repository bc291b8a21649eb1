"""A setup that raises, as when weights are missing."""

from __future__ import annotations

import gpuserve


class FailingSetup(gpuserve.Endpoint):
    def setup(self) -> None:
        raise RuntimeError("weights missing")

    def predict(self) -> str:
        return "unreachable"
