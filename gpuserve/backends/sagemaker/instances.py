"""SageMaker instance types for gpuserve GPU requests.

Source: the InstanceType values of the SageMaker API reference (RealTimeInferenceRecommendation and
AIRecommendationInstanceDetail). Each GPU maps to one instance family, and the count picks the
smallest size with at least that many GPUs.
"""

from __future__ import annotations

from ...errors import ConfigError
from ...gpus import GPU

#: gpuserve GPU name -> {GPU count: instance type}.
INSTANCE_TYPES: dict[str, dict[int, str]] = {
    "T4": {1: "ml.g4dn.xlarge", 4: "ml.g4dn.12xlarge"},
    "A10G": {1: "ml.g5.xlarge", 4: "ml.g5.12xlarge", 8: "ml.g5.48xlarge"},
    "L4": {1: "ml.g6.xlarge", 4: "ml.g6.12xlarge", 8: "ml.g6.48xlarge"},
    "L40S": {1: "ml.g6e.xlarge", 4: "ml.g6e.12xlarge", 8: "ml.g6e.48xlarge"},
    "A100-40GB": {8: "ml.p4d.24xlarge"},
    "A100-80GB": {8: "ml.p4de.24xlarge"},
    "H100": {8: "ml.p5.48xlarge"},
    "H200": {8: "ml.p5e.48xlarge"},
}
#: Instance type for endpoints without a GPU.
CPU_INSTANCE_TYPE = "ml.m5.xlarge"


def instance_type(gpu: GPU | None) -> str:
    """Return the smallest SageMaker instance type with ``gpu``'s card and at least its count."""
    if gpu is None:
        return CPU_INSTANCE_TYPE
    sizes = INSTANCE_TYPES.get(gpu.name)
    if sizes is None:
        raise ConfigError(f"Unknown GPU {gpu.name!r} for SageMaker; it offers {', '.join(INSTANCE_TYPES)}.")
    for count in sorted(sizes):
        if count >= gpu.count:
            return sizes[count]
    raise ConfigError(
        f"SageMaker has no instance with {gpu.count} {gpu.name} GPUs; the most is {max(sizes)} ({sizes[max(sizes)]})."
    )
