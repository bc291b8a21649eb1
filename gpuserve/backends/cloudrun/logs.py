"""Reading a service's container logs through the Cloud Logging REST API (``entries.list``)."""

from __future__ import annotations

from typing import Any

from google.auth.credentials import Credentials

from .gcp import LOGGING_ENDPOINT_ENV, api_root, raise_for_response, rest_session

_DEFAULT_ROOT = "https://logging.googleapis.com"
#: Entries returned when no tail is given; entries.list returns at most 1000 per page.
DEFAULT_ENTRIES = 100
MAX_ENTRIES = 1000


def _line(entry: dict[str, Any]) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"]).rstrip("\n")
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict) and "message" in payload:
        return str(payload["message"]).rstrip("\n")
    return str(payload or entry.get("protoPayload", "")).rstrip("\n")


def read_logs(credentials: Credentials, project: str, region: str, service: str, tail: int | None) -> str:
    """Return the newest ``tail`` log lines of the service's containers, oldest first."""
    log_filter = (
        'resource.type="cloud_run_revision" '
        f'AND resource.labels.service_name="{service}" AND resource.labels.location="{region}"'
    )
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": log_filter,
        "orderBy": "timestamp desc",
        "pageSize": min(tail or DEFAULT_ENTRIES, MAX_ENTRIES),
    }
    response = rest_session(credentials).post(
        f"{api_root(LOGGING_ENDPOINT_ENV, _DEFAULT_ROOT)}/v2/entries:list", json=body
    )
    raise_for_response(response, f"read the logs of {service}")
    entries = response.json().get("entries", [])
    return "".join(_line(entry) + "\n" for entry in reversed(entries))
