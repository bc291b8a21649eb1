"""Google Cloud configuration, credentials and clients for the Cloud Run backend, and the translation
of Google API errors into gpuserve's tree.

Credentials come from Application Default Credentials (``gcloud auth application-default login``,
``GOOGLE_APPLICATION_CREDENTIALS`` or an attached service account). The project and region come
from the ``GPUSERVE_CLOUDRUN_*`` variables below, and each Google API endpoint can be replaced,
for example by a private endpoint or a local fake in tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import google.api_core.exceptions
import google.auth
import google.auth.exceptions
import requests
from google.api_core.client_options import ClientOptions
from google.auth.credentials import Credentials
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import run_v2

from ...errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    DeploymentNotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
)

PROJECT_ENV = "GPUSERVE_CLOUDRUN_PROJECT"
REGION_ENV = "GPUSERVE_CLOUDRUN_REGION"
#: Artifact Registry repository the images go to; created when missing.
REPOSITORY_ENV = "GPUSERVE_CLOUDRUN_REPOSITORY"
#: Email of the service account the instances run as; unset uses the project's default.
SERVICE_ACCOUNT_ENV = "GPUSERVE_CLOUDRUN_SERVICE_ACCOUNT"
#: "1" or "true" keeps GPU instances redundant across the region's zones (Cloud Run's default, which costs more).
ZONAL_REDUNDANCY_ENV = "GPUSERVE_CLOUDRUN_GPU_ZONAL_REDUNDANCY"
#: Replacements for Google API endpoints, as ``https://host`` or ``http://127.0.0.1:PORT``.
API_ENDPOINT_ENV = "GPUSERVE_CLOUDRUN_API_ENDPOINT"
ARTIFACT_REGISTRY_ENDPOINT_ENV = "GPUSERVE_CLOUDRUN_ARTIFACT_REGISTRY_ENDPOINT"
LOGGING_ENDPOINT_ENV = "GPUSERVE_CLOUDRUN_LOGGING_ENDPOINT"
#: Replaces the registry host REGION-docker.pkg.dev, both for the push and in the image URI.
REGISTRY_ENV = "GPUSERVE_CLOUDRUN_REGISTRY"

DEFAULT_REPOSITORY = "gpuserve"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_CREDENTIALS_FIX = (
    "Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key."
)


@dataclass(frozen=True)
class CloudConfig:
    """The project, region and repository the backend deploys to, from the environment and the credentials."""

    project: str
    region: str
    repository: str
    service_account: str | None
    gpu_zonal_redundancy: bool

    @classmethod
    def of_record(cls, extra: dict[str, Any]) -> CloudConfig:
        """Return the configuration a deployment was made with, from its record's ``extra``."""
        return cls(
            project=extra["project"],
            region=extra["region"],
            repository=extra.get("repository", DEFAULT_REPOSITORY),
            service_account=None,
            gpu_zonal_redundancy=False,
        )

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def service_name(self, deployment: str) -> str:
        return f"{self.parent}/services/{deployment}"

    @property
    def registry(self) -> str:
        return os.environ.get(REGISTRY_ENV) or f"{self.region}-docker.pkg.dev"


def load_credentials() -> tuple[Credentials, str | None]:
    """Return Application Default Credentials and their project; tests replace this function."""
    try:
        credentials, project = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise BackendUnavailableError(f"No usable Google Cloud credentials ({exc}). {_CREDENTIALS_FIX}") from exc
    return credentials, project


def load_config(default_project: str | None) -> CloudConfig:
    """Read the project, region and repository; raise ``ConfigError`` naming the variable when one is missing."""
    project = os.environ.get(PROJECT_ENV) or os.environ.get("GOOGLE_CLOUD_PROJECT") or default_project
    if not project:
        raise ConfigError(
            f"No Google Cloud project is set; set {PROJECT_ENV} (for example my-project) or GOOGLE_CLOUD_PROJECT."
        )
    region = os.environ.get(REGION_ENV)
    if not region:
        raise ConfigError(f"No Cloud Run region is set; set {REGION_ENV} to a region with GPUs, such as us-central1.")
    redundancy = os.environ.get(ZONAL_REDUNDANCY_ENV, "").strip().lower()
    if redundancy not in ("", "0", "1", "true", "false"):
        raise ConfigError(f"Invalid {ZONAL_REDUNDANCY_ENV}={redundancy!r}; use true or false.")
    return CloudConfig(
        project=project,
        region=region,
        repository=os.environ.get(REPOSITORY_ENV) or DEFAULT_REPOSITORY,
        service_account=os.environ.get(SERVICE_ACCOUNT_ENV) or None,
        gpu_zonal_redundancy=redundancy in ("1", "true"),
    )


def services_client(credentials: Credentials) -> run_v2.ServicesClient:
    """Return a Cloud Run Admin API client over REST, at ``GPUSERVE_CLOUDRUN_API_ENDPOINT`` when set."""
    endpoint = os.environ.get(API_ENDPOINT_ENV)
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return run_v2.ServicesClient(credentials=credentials, transport="rest", client_options=options)


def rest_session(credentials: Credentials) -> AuthorizedSession:
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]


def api_root(variable: str, default: str) -> str:
    return (os.environ.get(variable) or default).rstrip("/")


def access_token(credentials: Credentials) -> str:
    """Return a current OAuth access token of ``credentials``, refreshing it when needed."""
    with translated_errors("refresh the Google Cloud credentials"):
        if not credentials.valid:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]
    return str(credentials.token or "")


def fetch_id_token(audience: str) -> str:
    """Return a Google ID token for ``audience``, which Cloud Run checks on private services.

    Service account credentials mint one for any audience. User credentials from
    ``gcloud auth application-default login`` cannot, so their own ID token is used instead, which
    Cloud Run also accepts. Tests replace this function.
    """
    import google.oauth2.id_token

    try:
        return str(google.oauth2.id_token.fetch_id_token(Request(), audience))  # type: ignore[no-untyped-call]
    except google.auth.exceptions.DefaultCredentialsError:
        pass
    # NOTE: the user-credentials path follows google-auth's documented id_token attribute; no test covers it.
    credentials, _ = load_credentials()
    with translated_errors("get an ID token for the service"):
        credentials.refresh(Request())  # type: ignore[no-untyped-call]
    token = getattr(credentials, "id_token", None)
    if not token:
        raise BackendUnavailableError(
            f"Cannot get an ID token to call {audience}. Use service account credentials "
            "(GOOGLE_APPLICATION_CREDENTIALS), or deploy with public=True to allow calls without credentials."
        )
    return str(token)


@contextlib.contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Re-raise Google API, auth and transport errors raised during ``action`` as gpuserve errors."""
    try:
        yield
    except google.api_core.exceptions.GoogleAPICallError as exc:
        raise translate(exc, action) from exc
    except google.auth.exceptions.RefreshError as exc:
        raise BackendUnavailableError(
            f"Google rejected the credentials while trying to {action}. {_CREDENTIALS_FIX}"
        ) from exc
    except google.auth.exceptions.GoogleAuthError as exc:
        raise BackendUnavailableError(
            f"No usable Google Cloud credentials to {action}: {exc}. {_CREDENTIALS_FIX}"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise BackendUnavailableError(f"Cannot reach Google Cloud to {action}: {exc}") from exc


def translate(exc: google.api_core.exceptions.GoogleAPICallError, action: str) -> Exception:
    """Map one Google API error onto the most specific gpuserve error, with the fix in the message.

    The HTTP classes (``Forbidden``, ``TooManyRequests``) are the bases of the gRPC ones
    (``PermissionDenied``, ``ResourceExhausted``): REST responses raise the former, operation errors the latter.
    """
    message = exc.message or str(exc)
    if isinstance(exc, google.api_core.exceptions.Forbidden):
        if "SERVICE_DISABLED" in str(exc.details) or "has not been used" in message or "is disabled" in message:
            return PermissionDeniedError(
                f"Google Cloud rejected the request to {action} because an API is disabled ({message}). Enable it, "
                "for example `gcloud services enable run.googleapis.com artifactregistry.googleapis.com`."
            )
        return PermissionDeniedError(
            f"Google Cloud denied the permission to {action} ({message}). Grant the caller roles/run.admin, "
            "roles/artifactregistry.admin and roles/iam.serviceAccountUser on the runtime service account, "
            f"or check that {PROJECT_ENV} names the right project."
        )
    if isinstance(exc, google.api_core.exceptions.Unauthorized):
        return BackendUnavailableError(
            f"Google Cloud rejected the credentials to {action} ({message}). {_CREDENTIALS_FIX}"
        )
    if isinstance(exc, google.api_core.exceptions.TooManyRequests) or "quota" in message.lower():
        return QuotaExceededError(
            f"A Google Cloud quota stopped the request to {action} ({message}). Request more in the console under "
            "IAM & Admin > Quotas (for GPUs: 'Total Nvidia L4 GPU allocation, per project per region', with or "
            "without zonal redundancy), lower max_instances, or choose another region."
        )
    if isinstance(exc, google.api_core.exceptions.NotFound):
        return DeploymentNotFoundError(f"Google Cloud found nothing to {action}: {message}")
    if isinstance(exc, google.api_core.exceptions.BadRequest) and not isinstance(
        exc,
        google.api_core.exceptions.FailedPrecondition,  # a revision that failed to start
    ):
        return BackendError(f"Cloud Run rejected the request to {action} as invalid: {message}")
    if isinstance(exc, (google.api_core.exceptions.ServiceUnavailable, google.api_core.exceptions.DeadlineExceeded)):
        return BackendUnavailableError(f"Google Cloud is unavailable to {action} ({message}); retry in a minute.")
    return BackendError(f"Google Cloud failed to {action} ({exc.code}: {message})")


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, google.api_core.exceptions.NotFound) or isinstance(
        exc.__cause__, google.api_core.exceptions.NotFound
    )


def raise_for_response(response: Any, action: str) -> None:
    """Raise the translated error of a failed REST response from an ``AuthorizedSession``."""
    if response.status_code < 400:
        return
    exc = google.api_core.exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
    raise translate(exc, action) from exc
