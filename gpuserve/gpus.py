"""GPU names that gpuserve accepts, and their parsing."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

#: gpuserve GPU name -> memory in GiB. Backends map these names to their own offers.
GPU_MEMORY_GIB: dict[str, int] = {
    "T4": 16,
    "L4": 24,
    "A10": 24,
    "A10G": 24,
    "L40S": 48,
    "A100-40GB": 40,
    "A100-80GB": 80,
    "H100": 80,
    "H200": 141,
    "B200": 192,
    "RTX-PRO-6000": 96,
}

# Spellings people use for the same card; each maps to the canonical name above.
_ALIASES: dict[str, str] = {
    "A100": "A100-40GB",
    "A100-40G": "A100-40GB",
    "A100-80G": "A100-80GB",
    "RTX-PRO-6000-BLACKWELL": "RTX-PRO-6000",
    "NVIDIA-L4": "L4",
    "NVIDIA-RTX-PRO-6000": "RTX-PRO-6000",
}

#: The most GPUs one instance may request; no provider offers more on one machine.
MAX_GPU_COUNT = 8


@dataclass(frozen=True)
class GPU:
    """A GPU request: a gpuserve GPU name and how many cards one instance gets.

    Example: ``GPU("A100-80GB", count=2)``, or the string form ``"A100-80GB:2"``.
    """

    name: str
    count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", canonical_gpu_name(self.name))
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ConfigError(f"Invalid GPU count {self.count!r}; use a whole number such as 1 or 2.")
        if not 1 <= self.count <= MAX_GPU_COUNT:
            raise ConfigError(f"Invalid GPU count {self.count} for {self.name}; use 1 to {MAX_GPU_COUNT}.")

    def __str__(self) -> str:
        return self.name if self.count == 1 else f"{self.name}:{self.count}"


def canonical_gpu_name(name: str) -> str:
    """Return the canonical spelling of a GPU name, or raise ``ConfigError`` listing the valid names."""
    if not isinstance(name, str):
        raise ConfigError(f"Invalid GPU {name!r}; use a name such as 'L4' or 'A100-80GB'.")
    key = name.strip().upper().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key not in GPU_MEMORY_GIB:
        choices = ", ".join(GPU_MEMORY_GIB)
        raise ConfigError(f"Unknown GPU {name!r}; valid choices are {choices}.")
    return key


def parse_gpu(value: object) -> GPU | None:
    """Turn a ``gpu`` setting (None, a name, ``"NAME:COUNT"`` or a ``GPU``) into a ``GPU`` or None."""
    if value is None or isinstance(value, GPU):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"Invalid gpu setting {value!r}; use a name such as 'L4', 'H100:2' or GPU('H100', 2).")
    name, sep, count = value.partition(":")
    if not sep:
        return GPU(name)
    if not (count.strip().isascii() and count.strip().isdigit()):
        raise ConfigError(f"Invalid GPU count in {value!r}; write NAME:COUNT, for example 'H100:2'.")
    return GPU(name, int(count))
