"""``import gpuserve`` stays light: no provider SDK, ML framework or server stack."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "modal",
    "boto3",
    "botocore",
    "google",
    "docker",
    "torch",
    "transformers",
    "numpy",
    "uvicorn",
    "starlette",
    "httpx",
    "pydantic",
]


def _imported_modules(statement: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True, check=True
    )
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            modules.add(name.split(".")[0])
    return modules


def test_import_gpuserve_is_light() -> None:
    imported = _imported_modules("import gpuserve")
    assert "gpuserve" in imported
    assert sorted(imported & set(HEAVY)) == []


def test_defining_an_endpoint_is_light() -> None:
    statement = (
        "import gpuserve\n"
        "class Echo(gpuserve.Endpoint):\n"
        "    gpu = 'L4'\n"
        "    def predict(self, text: str) -> str:\n"
        "        return text\n"
    )
    assert sorted(_imported_modules(statement) & set(HEAVY)) == []
