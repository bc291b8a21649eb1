"""A setup that takes $SLOW_SETUP_SECONDS seconds (10 by default)."""

from __future__ import annotations

import os
import time

import gpuserve


class SlowSetup(gpuserve.Endpoint):
    def setup(self) -> None:
        time.sleep(float(os.environ.get("SLOW_SETUP_SECONDS", "10")))
        self.loaded = True

    def predict(self) -> bool:
        return self.loaded
