"""An async setup and predict."""

from __future__ import annotations

import asyncio

import gpuserve


class AsyncPredict(gpuserve.Endpoint):
    scaling = gpuserve.Scaling(max_concurrency=8)

    async def setup(self) -> None:
        await asyncio.sleep(0.01)
        self.factor = 2

    async def predict(self, x: int) -> int:
        await asyncio.sleep(0.01)
        return x * self.factor
