"""Inputs of every supported kind, echoed back with their Python types."""

from __future__ import annotations

import enum
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, Field

import gpuserve


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    x: float
    y: float = 0.0


class Typed(gpuserve.Endpoint):
    def predict(
        self,
        text: str,
        count: Annotated[int, Field(ge=0, le=100, description="How many.")] = 3,
        ratio: float = 0.5,
        flag: bool = False,
        tags: list[str] = [],  # noqa: B006 - pydantic copies defaults per call
        weights: dict[str, float] | None = None,
        note: Optional[str] = None,  # noqa: UP045 - the Optional spelling is what this endpoint tests
        mode: Literal["fast", "slow"] = "fast",
        color: Color = Color.RED,
        point: Point | None = None,
    ) -> dict[str, object]:
        return {
            "text": text,
            "count": count,
            "ratio": ratio,
            "flag": flag,
            "tags": tags,
            "weights": weights,
            "note": note,
            "mode": mode,
            "color": color,
            "color_type": type(color).__name__,
            "point": point,
            "point_type": type(point).__name__,
        }
