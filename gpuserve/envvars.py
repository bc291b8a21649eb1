"""Environment variables through which backends configure the runtime process."""

from __future__ import annotations

#: JSON of the deployment's ``Settings``; without it the runtime uses the class attributes.
SETTINGS_ENV = "GPUSERVE_SETTINGS"
#: Process id whose exit stops the runtime, so that a worker never outlives its supervisor.
PARENT_PID_ENV = "GPUSERVE_PARENT_PID"
#: JSON object of mount path -> directory, for backends that cannot mount at the declared path.
VOLUME_PATHS_ENV = "GPUSERVE_VOLUME_PATHS"
#: Bearer token that requests other than health checks must carry; unset means no authentication.
AUTH_TOKEN_ENV = "GPUSERVE_AUTH_TOKEN"
