"""The Cloud Run service of one endpoint, built from its settings as a ``run_v2.Service``.

Limits come from the Cloud Run documentation (cloud.google.com/run/docs), read in 2026:
services with a GPU get one GPU per instance, at least 4 CPU and 16 GiB of memory for an L4, and
CPU always allocated. Startup probes allow at most 240 s of initial delay and 240 s between
checks, and ``failure_threshold * period_seconds`` at most 1800 s with a GPU (600 s without).

Proto3 drops zero and false scalars from the JSON the REST client sends, so each field below is
chosen to keep its meaning when dropped. Cloud Run reads a missing ``cpu_idle`` next to explicit
``resources`` as false (CPU always allocated). A minimum of 0 instances is Cloud Run's default.
``gpu_zonal_redundancy_disabled`` is an ``optional`` field, which is sent even when false.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from google.cloud import run_v2
from google.protobuf import duration_pb2

from ...envvars import SETTINGS_ENV
from ...errors import ConfigError
from ...gpus import GPU
from ...settings import Settings

#: gpuserve GPU name -> Cloud Run accelerator name.
ACCELERATORS: dict[str, str] = {"L4": "nvidia-l4", "RTX-PRO-6000": "nvidia-rtx-pro-6000"}
#: The least CPU and memory a Cloud Run instance with each accelerator may have.
# NOTE: the L4 minimums are the documented 4 CPU and 16 GiB. The RTX PRO 6000 ones (20 CPU, 80 GiB)
# are unconfirmed; Cloud Run rejects a service below its minimums with a message that names them.
GPU_RESOURCES: dict[str, tuple[str, str]] = {"nvidia-l4": ("4", "16Gi"), "nvidia-rtx-pro-6000": ("20", "80Gi")}
#: CPU and memory of an instance without a GPU.
CPU_RESOURCES = ("2", "4Gi")
#: The port the runtime listens on in the image; Cloud Run passes it as $PORT.
CONTAINER_PORT = 8080
#: Cloud Run's longest request timeout for services.
MAX_REQUEST_SECONDS = 3600
#: Startup probe limits for services (see the module docstring).
MAX_PROBE_PERIOD_SECONDS = 240
MAX_PROBE_WINDOW_SECONDS = {True: 1800, False: 600}
PROBE_PERIOD_SECONDS = 10
PROBE_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class ServiceOptions:
    """Choices for a Cloud Run service that are not endpoint settings."""

    image_uri: str
    #: Keep a GPU service on instances in several zones of the region (costs more per GPU second).
    gpu_zonal_redundancy: bool = False
    #: Email of the service account the instances run as; None uses the project's default.
    service_account: str | None = None


def accelerator(gpu: GPU | None) -> str | None:
    """Return Cloud Run's accelerator name for ``gpu``, or raise ``ConfigError`` naming the offered GPUs."""
    if gpu is None:
        return None
    name = ACCELERATORS.get(gpu.name)
    if name is None:
        raise ConfigError(f"Unknown GPU {gpu.name!r} for Cloud Run; it offers {' and '.join(ACCELERATORS)}.")
    if gpu.count != 1:
        raise ConfigError(f"Cloud Run gives each instance one GPU, not {gpu.count}; use gpu={gpu.name!r}.")
    return name


def check_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` for settings that Cloud Run cannot honour."""
    accelerator(settings.gpu)
    if settings.volumes:
        raise ConfigError(
            f"The Cloud Run backend cannot mount volumes ({', '.join(settings.volumes)}); load the files in setup, "
            "for example from Cloud Storage, or add them to the project so they are built into the image."
        )
    if settings.timeout > MAX_REQUEST_SECONDS:
        raise ConfigError(
            f"Invalid timeout {settings.timeout:g} s for Cloud Run; a request may run at most {MAX_REQUEST_SECONDS} s."
        )


def probe_window(settings: Settings) -> int:
    """Return the longest startup Cloud Run allows this service, in seconds."""
    return MAX_PROBE_WINDOW_SECONDS[settings.gpu is not None]


def startup_probe(settings: Settings) -> run_v2.Probe:
    """Probe ``/health`` every 10 s for ``setup_timeout`` seconds, cut to Cloud Run's limit.

    The runtime returns 503 until setup has finished, so the probe passes exactly when the
    endpoint is ready. ``probe_window`` lets callers check whether ``setup_timeout`` was cut.
    """
    seconds = min(settings.setup_timeout, probe_window(settings))
    return run_v2.Probe(
        http_get=run_v2.HTTPGetAction(path="/health", port=CONTAINER_PORT),
        period_seconds=PROBE_PERIOD_SECONDS,
        timeout_seconds=PROBE_TIMEOUT_SECONDS,
        failure_threshold=max(1, math.ceil(seconds / PROBE_PERIOD_SECONDS)),
    )


def _resources(settings: Settings) -> run_v2.ResourceRequirements:
    name = accelerator(settings.gpu)
    if name is None:
        cpu, memory = CPU_RESOURCES
        # Without a GPU, CPU outside requests may be throttled: request-based billing is cheaper.
        return run_v2.ResourceRequirements(limits={"cpu": cpu, "memory": memory}, cpu_idle=True)
    cpu, memory = GPU_RESOURCES[name]
    # cpu_idle=False (CPU always allocated) is required with a GPU. Being false, it is left out of
    # the JSON, and Cloud Run reads a missing cpu_idle next to explicit limits as false.
    return run_v2.ResourceRequirements(limits={"cpu": cpu, "memory": memory, "nvidia.com/gpu": "1"}, cpu_idle=False)


def _environment(settings: Settings) -> list[run_v2.EnvVar]:
    """Return the settings as JSON, and each secret as a reference to the Secret Manager secret of that name."""
    variables = [run_v2.EnvVar(name=SETTINGS_ENV, value=settings.to_json())]
    for name in settings.secrets:
        source = run_v2.SecretKeySelector(secret=name, version="latest")
        variables.append(run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=source)))
    return variables


def build_service(settings: Settings, options: ServiceOptions) -> run_v2.Service:
    """Return the Cloud Run service for an endpoint: image, resources, probe, scaling and environment."""
    container = run_v2.Container(
        image=options.image_uri,
        ports=[run_v2.ContainerPort(container_port=CONTAINER_PORT)],
        env=_environment(settings),
        resources=_resources(settings),
        startup_probe=startup_probe(settings),
    )
    scaling = settings.scaling
    template = run_v2.RevisionTemplate(
        containers=[container],
        scaling=run_v2.RevisionScaling(
            min_instance_count=scaling.min_instances, max_instance_count=scaling.max_instances
        ),
        max_instance_request_concurrency=scaling.max_concurrency,
        timeout=duration_pb2.Duration(seconds=math.ceil(settings.timeout)),
        labels={"gpuserve": "true"},
    )
    if options.service_account:
        template.service_account = options.service_account
    name = accelerator(settings.gpu)
    if name is not None:
        template.node_selector = run_v2.NodeSelector(accelerator=name)
        template.gpu_zonal_redundancy_disabled = not options.gpu_zonal_redundancy
    return run_v2.Service(template=template, labels={"gpuserve": "true"})
