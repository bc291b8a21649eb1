"""The SageMaker backend end to end on 127.0.0.1: a real image build and push, moto for ECR, IAM,
Application Auto Scaling and CloudWatch, the local fake for SageMaker's control plane and runtime
(moto lacks inference components and routes no invocation to a container), and the pushed image
running as a real container with SageMaker's ``serve`` contract.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

import gpuserve
from gpuserve.backends.sagemaker.backend import SageMakerBackend
from gpuserve.deployment import Deployment

from ...conftest import REPO, ServeFactory, free_port
from .fake_sagemaker import FakeSageMaker

sys.path.insert(0, str(REPO / "examples"))
from tiny import Echo  # noqa: E402

SECRET = "sagemaker-secret-value-42"


@pytest.fixture
def sagemaker_env(
    aws_env: dict[str, str],
    registry: str,
    base_image: str,
    fake_sagemaker: FakeSageMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> FakeSageMaker:
    """Everything a deploy needs: a role in moto, the local registry, fast polling and short waits."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="SageMakerExecution", AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    monkeypatch.setenv("GPUSERVE_SAGEMAKER_ROLE_ARN", role["Role"]["Arn"])
    monkeypatch.setenv("GPUSERVE_SAGEMAKER_REGISTRY", registry)
    # GPU endpoints default to a CUDA base from a public registry; the local base keeps builds offline.
    monkeypatch.setenv("GPUSERVE_GPU_BASE_IMAGE", base_image)
    monkeypatch.setattr(SageMakerBackend, "poll_seconds", 0.05)
    fake_sagemaker.transition_delay = 0.2
    return fake_sagemaker


@pytest.fixture
def container(docker_client: Any, registry: str) -> Iterator[Any]:
    """Run the pushed image the way SageMaker does (``serve``), on a free port, and remove it afterwards."""
    started: list[Any] = []

    def run(image: str, environment: dict[str, str]) -> str:
        port = free_port()
        started.append(
            docker_client.containers.run(
                image,
                command=["serve"],
                network_mode="host",
                environment={**environment, "SAGEMAKER_BIND_TO_PORT": str(port), "GPUSERVE_HOST": "127.0.0.1"},
                labels={"gpuserve.deployment": "sagemaker-test"},
                detach=True,
            )
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ping", timeout=1, trust_env=False).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(started[-1].logs().decode())

    yield run  # type: ignore[misc]
    for item in started:
        image = item.image.id
        item.remove(force=True)
        docker_client.images.remove(image, force=True)  # pulled from the test registry; leave nothing behind


def _deploy(**overrides: Any) -> Deployment:
    return gpuserve.deploy(Echo, backend="sagemaker", name="sm-echo", project_dir=REPO, **overrides)


def _serve(fake: FakeSageMaker, container: Any, name: str = "sm-echo") -> None:
    model = fake.bodies("CreateModel")[-1]
    url = container(model["PrimaryContainer"]["Image"], model["PrimaryContainer"]["Environment"])
    fake.route(name, url)


def test_deploy_invoke_delete(sagemaker_env: FakeSageMaker, container: Any, docker_client: Any) -> None:
    fake = sagemaker_env
    deployment = _deploy(gpu="L4", max_instances=2, idle_timeout=120)
    try:
        model = fake.bodies("CreateModel")[0]
        assert model["ExecutionRoleArn"].endswith("role/SageMakerExecution")
        assert model["PrimaryContainer"]["Image"].startswith(
            f"{deployment.record.extra['image_uri'].split('/')[0]}/gpuserve/sm-echo:"
        )
        assert json.loads(model["PrimaryContainer"]["Environment"]["GPUSERVE_SETTINGS"])["gpu"]["name"] == "L4"
        variant = fake.bodies("CreateEndpointConfig")[0]["ProductionVariants"][0]
        assert variant["InstanceType"] == "ml.g6.xlarge"
        assert variant["ManagedInstanceScaling"]["MinInstanceCount"] == 0
        component = fake.bodies("CreateInferenceComponent")[0]
        assert component["Specification"]["ComputeResourceRequirements"]["NumberOfAcceleratorDevicesRequired"] == 1

        target = boto3.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
        assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in target["ScalableTargets"]] == [
            ("inference-component/sm-echo-ic", 0, 2)
        ]
        alarm = boto3.client("cloudwatch").describe_alarms(AlarmNames=["sm-echo-ic-wake"])["MetricAlarms"][0]
        policies = boto3.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")
        wake = [p for p in policies["ScalingPolicies"] if p["PolicyName"] == "sm-echo-ic-wake"][0]
        assert alarm["AlarmActions"] == [wake["PolicyARN"]]
        assert alarm["MetricName"] == "NoCapacityInvocationFailures"

        _serve(fake, container)
        assert deployment.predict(text="from sagemaker", times=2) == "from sagemaker from sagemaker"
        invocation = fake.bodies("InvokeEndpoint")[-1]
        assert invocation["InferenceComponentName"] == "sm-echo-ic"
        assert deployment.status()["state"] == "InService"
    finally:
        deployment.delete()

    deletes = [r.action for r in fake.requests if r.action.startswith("Delete")]
    assert deletes == ["DeleteInferenceComponent", "DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]
    assert (
        boto3.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")[
            "ScalableTargets"
        ]
        == []
    )
    images = boto3.client("ecr").list_images(repositoryName="gpuserve/sm-echo")["imageIds"]
    assert images == []
    built = docker_client.images.list(filters={"label": "gpuserve.deployment=sm-echo"})
    # The copy that the container fixture pulled from the test registry goes at its teardown.
    assert [image.tags for image in built if not any(tag.startswith("127.0.0.1:") for tag in image.tags)] == []
    assert gpuserve.list_deployments() == []


def test_invalid_input_maps_to_error(sagemaker_env: FakeSageMaker, container: Any) -> None:
    deployment = _deploy()
    try:
        _serve(sagemaker_env, container)
        with pytest.raises(gpuserve.InvalidInputError, match="times"):
            deployment.predict(text="x", times=99)
    finally:
        deployment.delete()


def test_wakes_from_zero(sagemaker_env: FakeSageMaker, container: Any, caplog: pytest.LogCaptureFixture) -> None:
    deployment = _deploy()
    try:
        _serve(sagemaker_env, container)
        sagemaker_env.set_copy_count("sm-echo-ic", 0)
        assert deployment.status()["state"] == "scaled_to_zero"
        timer = threading.Timer(1.0, sagemaker_env.set_copy_count, ("sm-echo-ic", 1))
        timer.start()
        with caplog.at_level(logging.INFO, logger="gpuserve"):
            assert deployment.predict(text="awake") == "awake"
        timer.join()
        assert "waking it" in caplog.text
    finally:
        deployment.delete()


def test_still_at_zero_after_deadline(sagemaker_env: FakeSageMaker, container: Any) -> None:
    deployment = _deploy()
    try:
        _serve(sagemaker_env, container)
        sagemaker_env.set_copy_count("sm-echo-ic", 0)
        backend = SageMakerBackend()
        with pytest.raises(gpuserve.DeadlineExceededError, match="scaled to zero"):
            backend.invoke(deployment.record, {"text": "x"}, deadline=3)
    finally:
        deployment.delete()


def test_min_instances_uses_classic_variant(sagemaker_env: FakeSageMaker, container: Any) -> None:
    deployment = _deploy(min_instances=1, max_instances=3)
    try:
        variant = sagemaker_env.bodies("CreateEndpointConfig")[0]["ProductionVariants"][0]
        assert variant["ModelName"] == "sm-echo-model"
        assert variant["InitialInstanceCount"] == 1
        assert sagemaker_env.bodies("CreateInferenceComponent") == []
        target = boto3.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
        assert [(t["ResourceId"], t["MinCapacity"]) for t in target["ScalableTargets"]] == [
            ("endpoint/sm-echo/variant/AllTraffic", 1)
        ]
        policies = boto3.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")
        assert [p["PolicyName"] for p in policies["ScalingPolicies"]] == ["sm-echo-invocations"]
        _serve(sagemaker_env, container)
        assert deployment.predict(text="classic") == "classic"
    finally:
        deployment.delete()


def test_failure_midway_rolls_back(sagemaker_env: FakeSageMaker, docker_client: Any) -> None:
    sagemaker_env.fail_next("CreateInferenceComponent", "ResourceLimitExceeded", "quota for ml.m5.xlarge is 0")
    with pytest.raises(gpuserve.DeployError, match="quota"):
        _deploy()
    state = [r.action for r in sagemaker_env.requests]
    assert "DeleteEndpoint" in state
    assert "DeleteEndpointConfig" in state
    assert "DeleteModel" in state
    assert boto3.client("ecr").list_images(repositoryName="gpuserve/sm-echo")["imageIds"] == []
    assert gpuserve.list_deployments() == []


def test_failed_endpoint_reports_reason(sagemaker_env: FakeSageMaker) -> None:
    sagemaker_env.fail_endpoint("sm-echo", "The primary container did not pass the ping health check.")
    with pytest.raises(gpuserve.DeployError, match="ping health check"):
        _deploy()
    assert gpuserve.list_deployments() == []


def test_missing_role_rejected(sagemaker_env: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUSERVE_SAGEMAKER_ROLE_ARN")
    with pytest.raises(gpuserve.ConfigError, match="GPUSERVE_SAGEMAKER_ROLE_ARN"):
        _deploy()
    assert sagemaker_env.requests == []


def test_gpu_sagemaker_lacks_rejected(sagemaker_env: FakeSageMaker) -> None:
    with pytest.raises(gpuserve.ConfigError, match="Unknown GPU 'B200' for SageMaker"):
        _deploy(gpu="B200")
    assert sagemaker_env.requests == []


def test_secret_never_logged(
    sagemaker_env: FakeSageMaker, container: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.endpoints.volume_reader import VolumeReader

    monkeypatch.setenv("READER_TOKEN", SECRET)
    messages: list[str] = []
    # botocore's own DEBUG log prints whole request bodies, so only gpuserve's loggers are checked here.
    with caplog.at_level(logging.DEBUG, logger="gpuserve"):
        deployment = gpuserve.deploy(
            VolumeReader, backend="sagemaker", name="sm-reader", project_dir=REPO, volumes={}, progress=messages.append
        )
    try:
        environment = sagemaker_env.bodies("CreateModel")[0]["PrimaryContainer"]["Environment"]
        assert environment["READER_TOKEN"] == SECRET
        assert SECRET not in "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gpuserve"))
        assert all(SECRET not in message for message in messages)
        assert SECRET not in (deployment.record.directory / "deployment.json").read_text()
    finally:
        deployment.delete()


def test_logs_from_cloudwatch(sagemaker_env: FakeSageMaker) -> None:
    deployment = _deploy()
    try:
        logs = boto3.client("logs")
        group = "/aws/sagemaker/Endpoints/sm-echo"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="AllTraffic/i-0")
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": f"line {i}"} for i in range(3)]
        logs.put_log_events(logGroupName=group, logStreamName="AllTraffic/i-0", logEvents=events)
        assert deployment.logs() == "line 0\nline 1\nline 2\n"
    finally:
        deployment.delete()


def test_logs_empty_before_first_start(sagemaker_env: FakeSageMaker) -> None:
    deployment = _deploy()
    try:
        assert deployment.logs() == ""
    finally:
        deployment.delete()


def test_status_reports_copies(sagemaker_env: FakeSageMaker) -> None:
    deployment = _deploy(gpu="L4")
    try:
        status = deployment.status()
        assert status["state"] == "InService"
        assert status["copies"] == 1
        assert status["instance_type"] == "ml.g6.xlarge"
    finally:
        deployment.delete()


def test_missing_credentials_fail_fast(sagemaker_env: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    began = time.monotonic()
    with pytest.raises(gpuserve.BackendUnavailableError, match="No AWS credentials found"):
        _deploy()
    assert time.monotonic() - began < 5
    assert sagemaker_env.requests == []


def test_role_must_be_an_arn(sagemaker_env: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSERVE_SAGEMAKER_ROLE_ARN", "SageMakerExecution")
    with pytest.raises(gpuserve.ConfigError, match="'SageMakerExecution' is not a role ARN"):
        _deploy()
    assert sagemaker_env.requests == []


def test_volumes_rejected(sagemaker_env: FakeSageMaker) -> None:
    with pytest.raises(gpuserve.ConfigError, match="cannot mount volumes"):
        _deploy(volumes={"/models": gpuserve.Volume(name="weights")})


def test_failed_deploy_keeps_existing(sagemaker_env: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    existing = gpuserve.deploy(Echo, name="sm-echo")  # the local backend
    try:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(gpuserve.BackendUnavailableError):
            _deploy()
        assert [d.backend for d in gpuserve.list_deployments()] == ["local"]
        assert existing.predict(text="still here") == "still here"
    finally:
        existing.delete()


def test_invoke_without_credentials(sagemaker_env: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = _deploy()
    try:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(gpuserve.BackendUnavailableError, match="No AWS credentials"):
            deployment.predict(text="x")
    finally:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        deployment.delete()


def test_streamed_items_are_collected(sagemaker_env: FakeSageMaker, serve: ServeFactory) -> None:
    deployment = _deploy()
    try:
        server = serve("tests/endpoints/streaming.py:Letters")
        assert server.wait_ready().status_code == 200, server.log()
        sagemaker_env.route("sm-echo", server.url)
        assert deployment.predict() == ["a", [1, 2], "b"]
    finally:
        deployment.delete()
