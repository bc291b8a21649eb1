"""Reads a file from its /data volume and a secret from the environment."""

from __future__ import annotations

import os

import gpuserve


class VolumeReader(gpuserve.Endpoint):
    volumes = {"/data": gpuserve.Volume(name="reader-data")}
    secrets = ["READER_TOKEN"]

    def setup(self) -> None:
        self.path = self.volume_path("/data") / "message.txt"

    def predict(self) -> dict[str, object]:
        return {
            "message": self.path.read_text() if self.path.exists() else None,
            "path": str(self.path),
            "token_length": len(os.environ.get("READER_TOKEN", "")),
        }
