"""A tiny endpoint with no heavy dependencies, for trying gpuserve and for fast tests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

import gpuserve


class Echo(gpuserve.Endpoint):
    """Repeat a text, shouting it on request."""

    scaling = gpuserve.Scaling(idle_timeout=30)

    def setup(self) -> None:
        self.calls = 0

    def predict(
        self,
        text: str,
        times: Annotated[int, Field(ge=1, le=10, description="How many times to repeat the text.")] = 1,
        style: Literal["plain", "shout"] = "plain",
    ) -> str:
        self.calls += 1
        result = " ".join([text] * times)
        return result.upper() if style == "shout" else result
