"""The Cloud Run service request, configuration and error translation, without Docker or a server."""

from __future__ import annotations

import json
from typing import Any

import google.api_core.exceptions
import pytest
from google.cloud import run_v2
from google.protobuf import json_format

import gpuserve
from gpuserve.backends import get_backend
from gpuserve.backends.cloudrun import gcp
from gpuserve.backends.cloudrun.backend import CloudRunBackend, _warn_if_setup_too_long
from gpuserve.backends.cloudrun.service import ServiceOptions, accelerator, build_service, check_settings
from gpuserve.gpus import GPU
from gpuserve.settings import Settings, Volume, build_settings
from gpuserve.state import DeploymentRecord


def _wire(settings: Settings, **options: Any) -> dict[str, Any]:
    """The service as the REST client sends it: proto3 JSON without default values."""
    service = build_service(settings, ServiceOptions(image_uri="example/image:1", **options))
    result: dict[str, Any] = json.loads(json_format.MessageToJson(run_v2.Service.pb(service)))
    return result


def test_accelerator_names() -> None:
    assert accelerator(GPU("L4")) == "nvidia-l4"
    assert accelerator(GPU("RTX PRO 6000")) == "nvidia-rtx-pro-6000"
    assert accelerator(None) is None


def test_unknown_gpu_lists_offers() -> None:
    with pytest.raises(gpuserve.ConfigError, match=r"Unknown GPU 'H100' for Cloud Run; it offers L4 and RTX-PRO-6000"):
        accelerator(GPU("H100"))


def test_two_gpus_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="one GPU"):
        accelerator(GPU("L4", 2))


def test_volumes_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="cannot mount volumes"):
        check_settings(build_settings({"volumes": {"/models": Volume(name="weights")}}))


def test_timeout_over_an_hour_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="at most 3600 s"):
        check_settings(build_settings({"timeout": 3601}))


def test_rtx_pro_resources() -> None:
    template = _wire(build_settings({"gpu": "RTX-PRO-6000"}))["template"]
    assert template["containers"][0]["resources"] == {"limits": {"cpu": "20", "memory": "80Gi", "nvidia.com/gpu": "1"}}
    assert template["nodeSelector"] == {"accelerator": "nvidia-rtx-pro-6000"}


@pytest.mark.parametrize(
    ("gpu", "setup_timeout", "threshold"),
    [("L4", 600, 60), ("L4", 5000, 180), (None, 5000, 60), ("L4", 5, 1), (None, 95, 10)],
)
def test_probe_fits_cloud_run_limits(gpu: str | None, setup_timeout: float, threshold: int) -> None:
    probe = _wire(build_settings({"gpu": gpu, "setup_timeout": setup_timeout}))["template"]["containers"][0][
        "startupProbe"
    ]
    assert probe["periodSeconds"] == 10
    assert probe["failureThreshold"] == threshold
    assert "initialDelaySeconds" not in probe


def test_long_setup_warns() -> None:
    messages: list[str] = []
    _warn_if_setup_too_long(build_settings({"gpu": "L4", "setup_timeout": 2000}), messages.append)
    _warn_if_setup_too_long(build_settings({"gpu": "L4", "setup_timeout": 1800}), messages.append)
    assert len(messages) == 1
    assert "1800 s" in messages[0]


def test_zonal_redundancy_sent_either_way() -> None:
    assert _wire(build_settings({"gpu": "L4"}))["template"]["gpuZonalRedundancyDisabled"] is True
    on = _wire(build_settings({"gpu": "L4"}), gpu_zonal_redundancy=True)
    assert on["template"]["gpuZonalRedundancyDisabled"] is False


def test_service_account_set_when_given() -> None:
    assert "serviceAccount" not in _wire(build_settings({}))["template"]
    template = _wire(build_settings({}), service_account="runner@p.iam.gserviceaccount.com")["template"]
    assert template["serviceAccount"] == "runner@p.iam.gserviceaccount.com"


def test_config_needs_project(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (gcp.PROJECT_ENV, "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(gcp.REGION_ENV, "us-central1")
    with pytest.raises(gpuserve.ConfigError, match=gcp.PROJECT_ENV):
        gcp.load_config(None)
    assert gcp.load_config("from-credentials").project == "from-credentials"


def test_config_needs_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gcp.PROJECT_ENV, "p")
    monkeypatch.delenv(gcp.REGION_ENV, raising=False)
    with pytest.raises(gpuserve.ConfigError, match="us-central1"):
        gcp.load_config(None)


def test_config_rejects_bad_redundancy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gcp.PROJECT_ENV, "p")
    monkeypatch.setenv(gcp.REGION_ENV, "europe-west4")
    monkeypatch.setenv(gcp.ZONAL_REDUNDANCY_ENV, "maybe")
    with pytest.raises(gpuserve.ConfigError, match="maybe"):
        gcp.load_config(None)


def test_config_registry_follows_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gcp.PROJECT_ENV, "p")
    monkeypatch.setenv(gcp.REGION_ENV, "europe-west4")
    monkeypatch.delenv(gcp.REGISTRY_ENV, raising=False)
    config = gcp.load_config(None)
    assert config.registry == "europe-west4-docker.pkg.dev"
    assert config.service_name("echo") == "projects/p/locations/europe-west4/services/echo"


@pytest.mark.parametrize(
    ("error", "expected", "fix"),
    [
        (google.api_core.exceptions.Forbidden("denied"), gpuserve.PermissionDeniedError, "roles/run.admin"),
        (google.api_core.exceptions.PermissionDenied("denied"), gpuserve.PermissionDeniedError, "roles/run.admin"),
        (
            google.api_core.exceptions.Forbidden("Cloud Run Admin API has not been used in project 1"),
            gpuserve.PermissionDeniedError,
            "gcloud services enable",
        ),
        (google.api_core.exceptions.TooManyRequests("slow down"), gpuserve.QuotaExceededError, "Quotas"),
        (google.api_core.exceptions.ResourceExhausted("GPU quota"), gpuserve.QuotaExceededError, "max_instances"),
        (google.api_core.exceptions.Unauthorized("expired"), gpuserve.BackendUnavailableError, "gcloud auth"),
        (google.api_core.exceptions.NotFound("gone"), gpuserve.DeploymentNotFoundError, "gone"),
        (google.api_core.exceptions.BadRequest("bad memory"), gpuserve.BackendError, "invalid"),
    ],
)
def test_error_translation(
    error: google.api_core.exceptions.GoogleAPICallError, expected: type[Exception], fix: str
) -> None:
    with pytest.raises(expected, match=fix) as raised:
        with gcp.translated_errors("create the service"):
            raise error
    assert raised.value.__cause__ is error


def test_backend_registered() -> None:
    assert isinstance(get_backend("cloudrun"), CloudRunBackend)


class Tiny(gpuserve.Endpoint):
    def predict(self, text: str) -> str:
        return text


def test_public_must_be_bool() -> None:
    with pytest.raises(gpuserve.ConfigError, match="Invalid public 'yes'"):
        gpuserve.deploy(Tiny, backend="cloudrun", public="yes")


def test_token_fresh_for_private_only(monkeypatch: pytest.MonkeyPatch) -> None:
    audiences: list[str] = []
    monkeypatch.setattr(gcp, "fetch_id_token", lambda audience: audiences.append(audience) or "id-token")
    record = DeploymentRecord("echo", "cloudrun", "m:C", "https://echo-abc.run.app", "{}", 0.0, extra={"public": False})
    assert CloudRunBackend().token(record) == "id-token"
    assert audiences == ["https://echo-abc.run.app"]
    record.extra["public"] = True
    assert CloudRunBackend().token(record) is None
