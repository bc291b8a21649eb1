"""An optional text with a None default next to an int default."""

from __future__ import annotations

import gpuserve


class OptionalText(gpuserve.Endpoint):
    def predict(self, text: str | None = None, n: int = 3) -> dict[str, object]:
        return {"text": text, "text_is_none": text is None, "n": n}
