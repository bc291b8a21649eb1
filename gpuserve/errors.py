"""The exception tree of gpuserve.

Every error the library raises on purpose derives from ``GpuserveError``::

    GpuserveError
    ├── ConfigError                 an endpoint class or a deploy setting is invalid
    ├── EndpointLoadError           a ``module:Class`` reference cannot be imported
    ├── OutputEncodingError         a predict output cannot be encoded as JSON
    ├── InputError                  raised by ``predict`` to reject a request's inputs (422)
    ├── BackendError                a backend failed to deploy, inspect or delete
    │   ├── BackendNotInstalledError    the backend's optional dependency is missing
    │   ├── BackendUnavailableError     the backend's engine or API cannot be reached
    │   ├── PermissionDeniedError       the provider rejected the caller's permissions
    │   ├── DeploymentNotFoundError     no deployment has that name
    │   ├── DeploymentExistsError       a deployment with that name already runs
    │   └── DeployError                 a deploy did not reach the ready state
    │       ├── ImageBuildError             a step of the image build failed
    │       ├── GPUUnavailableError         the engine cannot give the container a GPU
    │       ├── QuotaExceededError          a provider quota is too small for the request
    │       └── SetupFailedError            the endpoint's ``setup`` raised
    └── ClientError                 a request to a deployed endpoint failed
        ├── EndpointConnectionError     the endpoint could not be reached
        ├── AuthenticationError         the endpoint rejected the credentials (401/403)
        ├── InvalidInputError           the inputs failed validation (422)
        ├── PredictError                ``predict`` raised (500)
        ├── EndpointUnavailableError    the endpoint is not ready, busy or stopping (503)
        ├── DeadlineExceededError       no response arrived within the client's deadline
        └── StreamError                 a streaming ``predict`` raised after some items

Provider SDK errors are translated at the backend boundary into the most specific
class, with the original kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Any


class GpuserveError(Exception):
    """Base class of every error gpuserve raises on purpose."""


class ConfigError(GpuserveError, ValueError):
    """An endpoint class or a deploy setting is invalid."""


class EndpointLoadError(GpuserveError):
    """A ``module:Class`` reference cannot be imported."""

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        #: The traceback of the exception that the endpoint's module raised while it was imported.
        self.traceback = traceback


class OutputEncodingError(GpuserveError, TypeError):
    """A predict output cannot be encoded as JSON."""


class InputError(GpuserveError, ValueError):
    """Raise in ``predict`` to reject a request's inputs: the caller gets 422 with this message.

    Example: ``raise gpuserve.InputError("text is longer than 512 tokens; shorten it")``. A batched
    ``predict`` can instead return an ``InputError`` at the position of the item it rejects.
    """


class BackendError(GpuserveError):
    """A backend failed to deploy, inspect or delete an endpoint."""


class BackendNotInstalledError(BackendError, ImportError):
    """The optional dependency of a backend is not installed."""


class BackendUnavailableError(BackendError):
    """The backend's engine or API cannot be reached."""


class PermissionDeniedError(BackendError):
    """The provider rejected the request because the caller lacks a permission."""


class DeploymentNotFoundError(BackendError, LookupError):
    """No deployment has the given name."""


class DeploymentExistsError(BackendError):
    """A deployment with the given name already exists."""


class DeployError(BackendError):
    """A deploy did not reach the ready state."""


class ImageBuildError(DeployError):
    """A step of the image build failed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        #: The output of the failing build step.
        self.output = output


class GPUUnavailableError(DeployError):
    """The engine cannot give the container the requested GPU."""


class QuotaExceededError(DeployError):
    """A provider quota is too small for the requested resources."""


class SetupFailedError(DeployError):
    """The endpoint's ``setup`` raised during a deploy."""

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        #: The traceback of the exception raised in ``setup``, when the backend has it.
        self.traceback = traceback


class ClientError(GpuserveError):
    """A request to a deployed endpoint failed."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        #: The HTTP status code of the response, or None when no response arrived.
        self.status_code = status_code
        #: The decoded JSON body of the response, when it had one.
        self.body = body


class EndpointConnectionError(ClientError):
    """The endpoint could not be reached."""


class AuthenticationError(ClientError):
    """The endpoint rejected the request's credentials."""


class InvalidInputError(ClientError):
    """The inputs failed the endpoint's validation."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Field errors as the endpoint returned them: ``loc``, ``msg`` and ``type``."""
        if isinstance(self.body, dict):
            details = self.body.get("error", {}).get("details")
            if isinstance(details, list):
                return details
        return []


class PredictError(ClientError):
    """The endpoint's ``predict`` raised an exception."""


class EndpointUnavailableError(ClientError):
    """The endpoint is not ready, its setup failed, its queue is full, or it is shutting down."""


class DeadlineExceededError(ClientError, TimeoutError):
    """No response arrived within the client's deadline."""


class StreamError(PredictError):
    """A streaming ``predict`` raised after it had sent some items; the stream ended with an error event."""
