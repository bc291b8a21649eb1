"""AWS sessions for the SageMaker backend, and the translation of AWS errors into gpuserve's tree.

Endpoints follow boto3's own configuration: credentials and region from the usual chain, and
``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_<SERVICE>`` for a non-default endpoint.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions

from ...errors import BackendError, BackendUnavailableError, ConfigError, DeployError, DeploymentNotFoundError

_CREDENTIAL_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
}
_CREDENTIALS_FIX = "Configure AWS credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."


def session() -> boto3.Session:
    """Return a boto3 session; a region is required, from AWS_REGION, AWS_DEFAULT_REGION or the profile."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        result = boto3.Session(region_name=region) if region else boto3.Session()
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(f"{exc}; set AWS_PROFILE to a profile in ~/.aws/config, or unset it.") from exc
    if not result.region_name:
        raise ConfigError("No AWS region is set; set AWS_REGION (for example us-east-1) or a region in your profile.")
    return result


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


@contextlib.contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Re-raise botocore errors raised during ``action`` as gpuserve errors, keeping the cause."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise BackendUnavailableError(f"No AWS credentials found while trying to {action}. {_CREDENTIALS_FIX}") from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise BackendUnavailableError(f"Cannot reach AWS to {action}: {exc}") from exc
    except botocore.exceptions.ClientError as exc:
        raise _translate(exc, action) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise BackendError(f"AWS failed to {action}: {exc}") from exc


def _translate(exc: botocore.exceptions.ClientError, action: str) -> Exception:
    code, message = error_code(exc), error_message(exc)
    if code in _CREDENTIAL_CODES:
        return BackendUnavailableError(f"AWS rejected the request to {action} ({code}: {message}). {_CREDENTIALS_FIX}")
    if code == "ResourceLimitExceeded":
        return DeployError(
            f"AWS rejected the request to {action} because of an account quota ({message}). Request an "
            "increase in the Service Quotas console for the instance type's endpoint usage, or choose another GPU."
        )
    if code in ("ResourceNotFound", "ResourceNotFoundException") or message.startswith("Could not find"):
        return DeploymentNotFoundError(f"AWS found nothing to {action}: {message}")
    return BackendError(f"AWS failed to {action} ({code}: {message})")


def describe_or_none(call: Any, **kwargs: Any) -> dict[str, Any] | None:
    """Call a describe API; return None when the resource does not exist."""
    try:
        result: dict[str, Any] = call(**kwargs)
        return result
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("ResourceNotFound", "ValidationException") and "Could not find" in error_message(exc):
            return None
        raise
