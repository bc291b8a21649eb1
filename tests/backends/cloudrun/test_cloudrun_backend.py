"""The Cloud Run backend end to end on 127.0.0.1.

The image is really built and pushed to a local registry, and the real ``run_v2`` REST client
talks to ``FakeCloudRun``. The pushed image runs as a real container behind the fake's IAM front door.

Assertions on the service read the JSON body as it crossed the wire, so that a value proto3
would drop (a zero, a false) is checked as Cloud Run receives it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import pytest

import gpuserve
from gpuserve.cli import main
from gpuserve.deployment import Deployment

from ...conftest import REPO
from .conftest import PROJECT, REGION
from .fake_cloudrun import FakeCloudRun

sys.path.insert(0, str(REPO / "examples"))
from tiny import Echo  # noqa: E402

NAME = "cr-echo"
SERVICES = rf"/v2/projects/{PROJECT}/locations/{REGION}/services"
SERVICE = rf"{SERVICES}/{NAME}$"


def _deploy(**overrides: Any) -> Deployment:
    return gpuserve.deploy(Echo, backend="cloudrun", name=NAME, project_dir=REPO, **overrides)


def _container(fake: FakeCloudRun, method: str = "POST", path: str = rf"{SERVICES}$") -> dict[str, Any]:
    container: dict[str, Any] = fake.bodies(method, path)[-1]["template"]["containers"][0]
    return container


def test_deploy_predict_delete(cloudrun_env: FakeCloudRun, docker_client: Any) -> None:
    fake = cloudrun_env
    deployment = _deploy(gpu="L4", max_instances=2, max_concurrency=4, timeout=120, setup_timeout=300)
    try:
        assert fake.requests[0].path.endswith("/repositories/gpuserve")
        assert fake.bodies("POST", r"/repositories$") == [{"format": "DOCKER", "labels": {"gpuserve": "true"}}]
        create = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/services")]
        assert create[0].query["serviceId"] == NAME
        template = create[0].body["template"]
        container = template["containers"][0]
        assert container["image"].split("/")[1:3] == [PROJECT, "gpuserve"]
        assert container["image"].rsplit("/", 1)[1].startswith(f"{NAME}:")
        assert container["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
        # CPU always allocated: cpu_idle false is absent on the wire, which Cloud Run reads as false.
        assert container["resources"].get("cpuIdle", False) is False
        assert container["ports"] == [{"containerPort": 8080}]
        assert template["nodeSelector"] == {"accelerator": "nvidia-l4"}
        assert template["gpuZonalRedundancyDisabled"] is True
        assert template["scaling"].get("minInstanceCount", 0) == 0
        assert template["scaling"]["maxInstanceCount"] == 2
        assert template["maxInstanceRequestConcurrency"] == 4
        assert template["timeout"] == "120s"
        probe = container["startupProbe"]
        assert probe["httpGet"] == {"path": "/health", "port": 8080}
        assert probe["periodSeconds"] * probe["failureThreshold"] == 300
        assert probe["timeoutSeconds"] <= probe["periodSeconds"]
        environment = {variable["name"]: variable for variable in container["env"]}
        assert json.loads(environment["GPUSERVE_SETTINGS"]["value"])["gpu"] == {"name": "L4", "count": 1}
        assert fake.bodies("POST", r":setIamPolicy$") == []

        assert deployment.url == f"{fake.url}/run/{NAME}"
        assert deployment.predict(text="from cloud run", times=2) == "from cloud run from cloud run"
        status = deployment.status()
        assert status["state"] == "ready"
        assert status["latest_ready_revision"] == f"{NAME}-00001-fak"
        assert status["conditions"][0] == {"type": "Ready", "state": "succeeded", "message": ""}
        assert "Echo is ready" in deployment.logs()
        assert len(deployment.logs(tail=2).splitlines()) == 2
        logs_request = cloudrun_env.bodies("POST", r"/v2/entries:list$")[-1]
        assert logs_request["resourceNames"] == [f"projects/{PROJECT}"]
        assert f'resource.labels.service_name="{NAME}"' in logs_request["filter"]
    finally:
        deployment.delete()

    assert fake.services == {}
    assert fake.container_names() == []
    assert fake.deleted_packages == [NAME]
    assert gpuserve.list_deployments() == []
    built = docker_client.images.list(filters={"label": f"gpuserve.deployment={NAME}"})
    assert [image.tags for image in built if not any(tag.startswith("127.0.0.1:") for tag in image.tags)] == []


def test_private_service_needs_id_token(cloudrun_env: FakeCloudRun, capsys: pytest.CaptureFixture[str]) -> None:
    deployment = _deploy()
    try:
        with gpuserve.Client(deployment.url, deadline=5) as anonymous, pytest.raises(gpuserve.AuthenticationError):
            anonymous.predict(text="no token")
        with gpuserve.Client(deployment.url, token="someone-else", deadline=5) as stranger:
            with pytest.raises(gpuserve.AuthenticationError):
                stranger.predict(text="wrong token")
        assert deployment.predict(text="with token") == "with token"
        capsys.readouterr()
        assert main(["predict", NAME, "text=from the cli", "--compact"]) == 0
        assert capsys.readouterr().out.strip() == '"from the cli"'
    finally:
        deployment.delete()


def test_public_adds_invoker_binding(cloudrun_env: FakeCloudRun) -> None:
    deployment = _deploy(public=True)
    try:
        policies = cloudrun_env.bodies("POST", r":setIamPolicy$")
        assert [p["policy"]["bindings"] for p in policies] == [[{"role": "roles/run.invoker", "members": ["allUsers"]}]]
        response = httpx.post(f"{deployment.url}/predict", json={"text": "open"}, trust_env=False)
        assert response.json()["output"] == "open"
    finally:
        deployment.delete()


def test_cpu_service_without_gpu(cloudrun_env: FakeCloudRun) -> None:
    deployment = _deploy(min_instances=1)
    try:
        template = cloudrun_env.bodies("POST", rf"{SERVICES}$")[0]["template"]
        container = template["containers"][0]
        assert container["resources"] == {"limits": {"cpu": "2", "memory": "4Gi"}, "cpuIdle": True}
        assert "nodeSelector" not in template
        assert "gpuZonalRedundancyDisabled" not in template
        assert template["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 1}
    finally:
        deployment.delete()


def test_redeploy_updates_service(cloudrun_env: FakeCloudRun, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _deploy(gpu="L4")
    monkeypatch.setenv("GPUSERVE_CLOUDRUN_GPU_ZONAL_REDUNDANCY", "true")
    second = _deploy(gpu="L4", max_instances=3)
    try:
        update = cloudrun_env.bodies("PATCH", SERVICE)
        assert len(update) == 1
        assert update[0]["template"]["scaling"]["maxInstanceCount"] == 3
        assert update[0]["template"]["gpuZonalRedundancyDisabled"] is False
        assert cloudrun_env.bodies("DELETE", SERVICE) == []
        assert second.status()["latest_ready_revision"] == f"{NAME}-00002-fak"
        assert second.predict(text="again") == "again"
    finally:
        second.delete()
    assert first.name == second.name


def test_secrets_are_secret_manager_references(cloudrun_env: FakeCloudRun) -> None:
    cloudrun_env.secrets["HF_TOKEN"] = "hf-secret-value"
    deployment = _deploy(secrets=["HF_TOKEN"])
    try:
        environment = {v["name"]: v for v in _container(cloudrun_env)["env"]}
        assert environment["HF_TOKEN"] == {
            "name": "HF_TOKEN",
            "valueSource": {"secretKeyRef": {"secret": "HF_TOKEN", "version": "latest"}},
        }
        assert "hf-secret-value" not in json.dumps(cloudrun_env.bodies("POST", rf"{SERVICES}$"))
    finally:
        deployment.delete()


def test_quota_error_rolls_back(cloudrun_env: FakeCloudRun, docker_client: Any) -> None:
    cloudrun_env.rollout_error = {
        "code": 8,
        "message": "Quota exceeded for total allowable count of GPUs per project per region.",
    }
    with pytest.raises(gpuserve.QuotaExceededError, match="Quotas") as raised:
        _deploy(gpu="L4")
    assert "Quota exceeded" in str(raised.value)
    assert len(cloudrun_env.bodies("DELETE", SERVICE)) == 1
    assert cloudrun_env.services == {}
    assert cloudrun_env.deleted_packages == [NAME]
    assert gpuserve.list_deployments() == []


def test_quota_rejected_create_leaves_nothing(cloudrun_env: FakeCloudRun) -> None:
    cloudrun_env.fail("POST", rf"{SERVICES}$", 429, "RESOURCE_EXHAUSTED", "Quota exceeded for GPU allocation.")
    with pytest.raises(gpuserve.QuotaExceededError, match="max_instances"):
        _deploy(gpu="L4")
    assert cloudrun_env.services == {}
    assert cloudrun_env.deleted_packages == [NAME]
    assert gpuserve.list_deployments() == []


def test_permission_denied_before_build(cloudrun_env: FakeCloudRun, docker_client: Any) -> None:
    cloudrun_env.fail("GET", r"/repositories/", 403, "PERMISSION_DENIED", "Permission denied on repository.")
    with pytest.raises(gpuserve.PermissionDeniedError, match="roles/artifactregistry.admin"):
        _deploy()
    assert [r.path for r in cloudrun_env.requests if "/services" in r.path] == []
    assert docker_client.images.list(filters={"label": f"gpuserve.deployment={NAME}"}) == []
    assert gpuserve.list_deployments() == []


def test_permission_denied_on_create(cloudrun_env: FakeCloudRun) -> None:
    cloudrun_env.fail("POST", rf"{SERVICES}$", 403, "PERMISSION_DENIED", "Permission 'run.services.create' denied.")
    with pytest.raises(gpuserve.PermissionDeniedError, match="roles/run.admin"):
        _deploy()
    assert cloudrun_env.services == {}
    assert gpuserve.list_deployments() == []


def test_failing_setup_rolls_back(cloudrun_env: FakeCloudRun) -> None:
    with pytest.raises(gpuserve.DeployError, match="startup probe"):
        # A 10 s setup_timeout gives a probe of one 10 s period, so the fake gives up after 10 s.
        gpuserve.deploy(_failing_setup(), backend="cloudrun", name=NAME, project_dir=REPO, setup_timeout=10)
    assert cloudrun_env.services == {}
    assert cloudrun_env.container_names() == []
    assert gpuserve.list_deployments() == []


def test_missing_secret_fails_revision(cloudrun_env: FakeCloudRun) -> None:
    with pytest.raises(gpuserve.DeployError, match="MISSING_TOKEN"):
        _deploy(secrets=["MISSING_TOKEN"])
    assert cloudrun_env.services == {}
    assert gpuserve.list_deployments() == []


def _failing_setup() -> type[gpuserve.Endpoint]:
    sys.path.insert(0, str(REPO))
    from tests.endpoints.failing_setup import FailingSetup

    return FailingSetup


def test_delete_uses_recorded_location(cloudrun_env: FakeCloudRun, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = _deploy()
    monkeypatch.delenv("GPUSERVE_CLOUDRUN_REGION")
    monkeypatch.setenv("GPUSERVE_CLOUDRUN_REPOSITORY", "elsewhere")
    Deployment.get(NAME).delete()
    assert cloudrun_env.services == {}
    package_deletes = [r.path for r in cloudrun_env.requests if r.method == "DELETE" and "/packages/" in r.path]
    assert package_deletes == [f"/v1/projects/{PROJECT}/locations/{REGION}/repositories/gpuserve/packages/{NAME}"]
    assert deployment.name not in [d.name for d in gpuserve.list_deployments()]
