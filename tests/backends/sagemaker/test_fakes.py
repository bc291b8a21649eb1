"""Tests of the SageMaker test doubles with plain boto3: the fake SageMaker, moto and the registry."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

pytest.importorskip("boto3", reason="the aws extra is not installed")
import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402

from .fake_sagemaker import ACCOUNT_ID, NO_CAPACITY_MESSAGE, FakeSageMaker, arn

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/gpuserve-sagemaker"
COPY_COUNT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"


class Container:
    """A tiny HTTP server on 127.0.0.1 that plays a model container's ``POST /invocations``.

    It echoes the request as JSON, and returns 422 "bad input" for the body ``fail``.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        container = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the name http.server calls)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                container.received.append({"path": self.path, "headers": headers, "body": body})
                if body == b"fail":
                    self._answer(422, b"bad input", "text/plain")
                else:
                    echo = {"echo": body.decode(), "content_type": self.headers.get("Content-Type")}
                    self._answer(200, json.dumps(echo).encode(), "application/json")

            def _answer(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="container", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def container() -> Iterator[Container]:
    server = Container()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sagemaker(aws_env: dict[str, str], fake_sagemaker: FakeSageMaker) -> Any:
    fake_sagemaker.transition_delay = 0.1
    return boto3.client("sagemaker")


@pytest.fixture
def runtime(aws_env: dict[str, str]) -> Any:
    return boto3.client("sagemaker-runtime")


def wait_for(describe: Callable[[], dict[str, Any]], key: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
    """Poll ``describe`` until ``key`` is ``status`` or ``timeout`` passes, and return the last description."""
    deadline = time.monotonic() + timeout
    while True:
        description = describe()
        if description[key] == status or time.monotonic() > deadline:
            return description
        time.sleep(0.02)


def error_of(raised: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, str, int]:
    """Return the code, message and HTTP status of a botocore ClientError."""
    response = raised.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def deploy(sagemaker: Any, name: str, *, components: bool) -> None:
    """Create a model, config and endpoint named after ``name`` and wait until the endpoint is InService.

    With ``components`` the endpoint is set up for inference components that scale to zero, and
    one component ``{name}-ic`` with one copy is created and waited for too.
    """
    sagemaker.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "x"})
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}
    if components:
        variant["ManagedInstanceScaling"] = {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 1}
        variant["RoutingConfig"] = {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    else:
        variant["ModelName"] = f"{name}-model"
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config", ProductionVariants=[variant], ExecutionRoleArn=ROLE_ARN
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    wait_for(lambda: sagemaker.describe_endpoint(EndpointName=name), "EndpointStatus", "InService")
    if components:
        sagemaker.create_inference_component(
            InferenceComponentName=f"{name}-ic",
            EndpointName=name,
            VariantName="AllTraffic",
            Specification={
                "ModelName": f"{name}-model",
                "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024},
            },
            RuntimeConfig={"CopyCount": 1},
        )
        component = wait_for(
            lambda: sagemaker.describe_inference_component(InferenceComponentName=f"{name}-ic"),
            "InferenceComponentStatus",
            "InService",
        )
        assert component["InferenceComponentStatus"] == "InService"


def test_aws_env_points_at_loopback(aws_env: dict[str, str], fake_sagemaker: FakeSageMaker) -> None:
    for service in ("sagemaker", "sagemaker-runtime"):
        assert boto3.client(service).meta.endpoint_url == fake_sagemaker.url
    for service in ("ecr", "iam", "sts", "application-autoscaling", "cloudwatch", "logs"):
        assert boto3.client(service).meta.endpoint_url == aws_env["AWS_ENDPOINT_URL"]
    assert aws_env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert fake_sagemaker.url.startswith("http://127.0.0.1:")


def test_control_plane_wire_format(fake_sagemaker: FakeSageMaker) -> None:
    headers = {"X-Amz-Target": "SageMaker.DescribeModel", "Content-Type": "application/x-amz-json-1.1"}
    with httpx.Client(trust_env=False) as client:
        response = client.post(fake_sagemaker.url, headers=headers, content=b'{"ModelName": "absent"}')
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.json() == {
        "__type": "ValidationException",
        "message": f'Could not find model "{arn("model", "absent")}".',
    }


def test_model_create_describe_delete(sagemaker: Any, fake_sagemaker: FakeSageMaker) -> None:
    created = sagemaker.create_model(
        ModelName="Demo-Model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "127.0.0.1:5000/demo:1"}
    )
    assert created["ModelArn"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:model/demo-model"

    described = sagemaker.describe_model(ModelName="Demo-Model")
    assert described["PrimaryContainer"] == {"Image": "127.0.0.1:5000/demo:1"}
    assert described["ExecutionRoleArn"] == ROLE_ARN

    sagemaker.delete_model(ModelName="Demo-Model")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.describe_model(ModelName="Demo-Model")
    assert error_of(raised) == ("ValidationException", f'Could not find model "{created["ModelArn"]}".', 400)
    assert [request.action for request in fake_sagemaker.requests] == ["CreateModel", "DescribeModel"] + [
        "DeleteModel",
        "DescribeModel",
    ]
    assert fake_sagemaker.bodies("DeleteModel") == [{"ModelName": "Demo-Model"}]


def test_create_rejects_existing_name(sagemaker: Any) -> None:
    sagemaker.create_model(ModelName="demo", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "x"})
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.create_model(ModelName="demo", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "x"})
    assert error_of(raised) == (
        "ValidationException",
        f'Cannot create already existing model "{arn("model", "demo")}".',
        400,
    )


def test_missing_references_rejected(sagemaker: Any) -> None:
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "absent",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
    }
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.create_endpoint_config(EndpointConfigName="demo-config", ProductionVariants=[variant])
    assert error_of(raised)[1] == f'Could not find model "{arn("model", "absent")}".'

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.create_endpoint(EndpointName="demo", EndpointConfigName="absent")
    assert error_of(raised)[1] == f'Could not find endpoint configuration "{arn("endpoint configuration", "absent")}".'

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.delete_endpoint(EndpointName="absent")
    assert error_of(raised)[1] == f'Could not find endpoint "{arn("endpoint", "absent")}".'

    with pytest.raises(sagemaker.exceptions.ClientError) as raised:
        sagemaker.describe_inference_component(InferenceComponentName="absent")
    assert error_of(raised)[0] == "ValidationException"


def test_endpoint_status_transitions(aws_env: dict[str, str], fake_sagemaker: FakeSageMaker) -> None:
    sagemaker = boto3.client("sagemaker")
    assert fake_sagemaker.transition_delay == 0.5
    sagemaker.create_model(ModelName="demo-model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "x"})
    variant = {"VariantName": "AllTraffic", "ModelName": "demo-model", "InstanceType": "ml.m5.large"}
    sagemaker.create_endpoint_config(
        EndpointConfigName="demo-config", ProductionVariants=[{**variant, "InitialInstanceCount": 2}]
    )
    began = time.monotonic()
    sagemaker.create_endpoint(EndpointName="demo", EndpointConfigName="demo-config")

    creating = sagemaker.describe_endpoint(EndpointName="demo")
    assert creating["EndpointStatus"] == "Creating"
    assert "ProductionVariants" not in creating
    in_service = wait_for(lambda: sagemaker.describe_endpoint(EndpointName="demo"), "EndpointStatus", "InService")
    assert in_service["EndpointStatus"] == "InService"
    assert time.monotonic() - began >= 0.5
    assert in_service["EndpointArn"] == arn("endpoint", "demo")
    assert in_service["ProductionVariants"][0]["CurrentInstanceCount"] == 2

    sagemaker.delete_endpoint(EndpointName="demo")
    assert sagemaker.describe_endpoint(EndpointName="demo")["EndpointStatus"] == "Deleting"
    time.sleep(0.5)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.describe_endpoint(EndpointName="demo")
    assert error_of(raised)[1] == f'Could not find endpoint "{arn("endpoint", "demo")}".'


def test_fail_endpoint_sets_failure_reason(sagemaker: Any, fake_sagemaker: FakeSageMaker) -> None:
    fake_sagemaker.fail_endpoint(
        "doomed", "The primary container for production variant AllTraffic did not pass the ping health check."
    )
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "x"})
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName="doomed", EndpointConfigName="c")
    assert sagemaker.describe_endpoint(EndpointName="doomed")["EndpointStatus"] == "Creating"

    failed = wait_for(lambda: sagemaker.describe_endpoint(EndpointName="doomed"), "EndpointStatus", "Failed")
    assert failed["EndpointStatus"] == "Failed"
    assert failed["FailureReason"].endswith("did not pass the ping health check.")

    sagemaker.create_endpoint(EndpointName="healthy", EndpointConfigName="c")
    wait_for(lambda: sagemaker.describe_endpoint(EndpointName="healthy"), "EndpointStatus", "InService")
    fake_sagemaker.fail_endpoint("healthy", "Instance lost.")
    assert sagemaker.describe_endpoint(EndpointName="healthy")["EndpointStatus"] == "Failed"


def test_fail_next_injects_one_error(sagemaker: Any, fake_sagemaker: FakeSageMaker) -> None:
    fake_sagemaker.fail_next("CreateModel", "ResourceLimitExceeded", "The account-level service limit was exceeded.")
    request = {"ModelName": "demo", "ExecutionRoleArn": ROLE_ARN, "PrimaryContainer": {"Image": "x"}}
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sagemaker.create_model(**request)
    assert error_of(raised) == ("ResourceLimitExceeded", "The account-level service limit was exceeded.", 400)

    sagemaker.create_model(**request)
    assert len(fake_sagemaker.bodies("CreateModel")) == 2
    with pytest.raises(ValueError, match="Unknown action 'CreateModels'"):
        fake_sagemaker.fail_next("CreateModels", "ValidationException", "no")


def test_inference_component_lifecycle(sagemaker: Any, fake_sagemaker: FakeSageMaker) -> None:
    deploy(sagemaker, "demo", components=True)
    described = sagemaker.describe_inference_component(InferenceComponentName="demo-ic")
    assert described["InferenceComponentArn"] == arn("inference component", "demo-ic")
    assert described["EndpointArn"] == arn("endpoint", "demo")
    assert described["RuntimeConfig"] == {"DesiredCopyCount": 1, "CurrentCopyCount": 1}
    assert described["Specification"]["ModelName"] == "demo-model"

    sagemaker.update_inference_component_runtime_config(
        InferenceComponentName="demo-ic", DesiredRuntimeConfig={"CopyCount": 2}
    )
    updating = sagemaker.describe_inference_component(InferenceComponentName="demo-ic")
    assert updating["InferenceComponentStatus"] == "Updating"
    assert updating["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 1}
    updated = wait_for(
        lambda: sagemaker.describe_inference_component(InferenceComponentName="demo-ic"),
        "InferenceComponentStatus",
        "InService",
    )
    assert updated["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}

    listed = sagemaker.list_inference_components(EndpointNameEquals="demo")["InferenceComponents"]
    assert [(c["InferenceComponentName"], c["InferenceComponentStatus"]) for c in listed] == [("demo-ic", "InService")]
    assert sagemaker.list_inference_components(EndpointNameEquals="other")["InferenceComponents"] == []

    sagemaker.delete_inference_component(InferenceComponentName="demo-ic")
    assert (
        sagemaker.describe_inference_component(InferenceComponentName="demo-ic")["InferenceComponentStatus"]
        == "Deleting"
    )
    time.sleep(0.15)
    assert sagemaker.list_inference_components()["InferenceComponents"] == []


def test_list_inference_components_pages(sagemaker: Any, fake_sagemaker: FakeSageMaker) -> None:
    deploy(sagemaker, "demo", components=True)
    fake_sagemaker.transition_delay = 60  # keep the next two components in Creating
    for name in ("demo-ic-2", "demo-ic-3"):
        sagemaker.create_inference_component(
            InferenceComponentName=name,
            EndpointName="demo",
            VariantName="AllTraffic",
            Specification={"ModelName": "demo-model"},
        )
    first = sagemaker.list_inference_components(SortBy="Name", SortOrder="Ascending", MaxResults=2)
    second = sagemaker.list_inference_components(
        SortBy="Name", SortOrder="Ascending", MaxResults=2, NextToken=first["NextToken"]
    )
    names = [c["InferenceComponentName"] for c in first["InferenceComponents"] + second["InferenceComponents"]]
    assert names == ["demo-ic", "demo-ic-2", "demo-ic-3"]
    assert "NextToken" not in second
    creating = sagemaker.list_inference_components(StatusEquals="Creating")["InferenceComponents"]
    assert {c["InferenceComponentName"] for c in creating} == {"demo-ic-2", "demo-ic-3"}


def test_invoke_routes_to_component(
    sagemaker: Any, runtime: Any, fake_sagemaker: FakeSageMaker, container: Container
) -> None:
    deploy(sagemaker, "demo", components=True)
    fake_sagemaker.route("demo-ic", container.url)

    response = runtime.invoke_endpoint(
        EndpointName="demo",
        InferenceComponentName="demo-ic",
        ContentType="application/json",
        Accept="application/json",
        CustomAttributes="trace=1",
        Body=b'{"x": 1}',
    )
    assert json.loads(response["Body"].read()) == {"echo": '{"x": 1}', "content_type": "application/json"}
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"

    [received] = container.received
    assert received["path"] == "/invocations"
    assert received["headers"]["accept"] == "application/json"
    assert received["headers"]["x-amzn-sagemaker-custom-attributes"] == "trace=1"
    [invocation] = fake_sagemaker.bodies("InvokeEndpoint")
    assert invocation["InferenceComponentName"] == "demo-ic"
    assert invocation["Body"] == b'{"x": 1}'


def test_invoke_model_error_shape(
    sagemaker: Any, runtime: Any, fake_sagemaker: FakeSageMaker, container: Container
) -> None:
    deploy(sagemaker, "demo", components=True)
    fake_sagemaker.route("demo", container.url)  # the endpoint's route serves its components too

    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(
            EndpointName="demo", InferenceComponentName="demo-ic", ContentType="text/plain", Body=b"fail"
        )
    code, message, status = error_of(raised)
    assert (code, status) == ("ModelError", 424)
    assert message.startswith('Received client error (422) from model with message "bad input". See https://')
    assert raised.value.response["OriginalStatusCode"] == 422
    assert raised.value.response["OriginalMessage"] == "bad input"
    assert raised.value.response["LogStreamArn"].startswith(f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:")


def test_invoke_no_capacity_at_zero_copies(
    sagemaker: Any, runtime: Any, fake_sagemaker: FakeSageMaker, container: Container
) -> None:
    deploy(sagemaker, "demo", components=True)
    fake_sagemaker.route("demo-ic", container.url)
    fake_sagemaker.set_copy_count("demo-ic", 0)
    assert (
        sagemaker.describe_inference_component(InferenceComponentName="demo-ic")["RuntimeConfig"]["CurrentCopyCount"]
        == 0
    )
    assert sagemaker.describe_endpoint(EndpointName="demo")["ProductionVariants"][0]["CurrentInstanceCount"] == 0

    arguments = {
        "EndpointName": "demo",
        "InferenceComponentName": "demo-ic",
        "ContentType": "text/plain",
        "Body": b"hi",
    }
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        runtime.invoke_endpoint(**arguments)
    assert error_of(raised) == ("ValidationError", NO_CAPACITY_MESSAGE, 400)
    assert container.received == []

    fake_sagemaker.set_copy_count("demo-ic", 1)
    assert json.loads(runtime.invoke_endpoint(**arguments)["Body"].read())["echo"] == "hi"


def test_wake_delay_adds_a_copy(
    sagemaker: Any, runtime: Any, fake_sagemaker: FakeSageMaker, container: Container
) -> None:
    deploy(sagemaker, "demo", components=True)
    fake_sagemaker.route("demo-ic", container.url)
    fake_sagemaker.set_copy_count("demo-ic", 0)
    fake_sagemaker.wake_delay = 0.2

    arguments = {
        "EndpointName": "demo",
        "InferenceComponentName": "demo-ic",
        "ContentType": "text/plain",
        "Body": b"hi",
    }
    with pytest.raises(botocore.exceptions.ClientError):
        runtime.invoke_endpoint(**arguments)
    time.sleep(0.25)
    assert runtime.invoke_endpoint(**arguments)["ContentType"] == "application/json"
    assert (
        sagemaker.describe_inference_component(InferenceComponentName="demo-ic")["RuntimeConfig"]["CurrentCopyCount"]
        == 1
    )


def test_invoke_validation_errors(
    sagemaker: Any, runtime: Any, fake_sagemaker: FakeSageMaker, container: Container
) -> None:
    deploy(sagemaker, "with-ic", components=True)
    deploy(sagemaker, "plain", components=False)
    fake_sagemaker.route("plain", container.url)
    cases = [
        ({"EndpointName": "absent"}, f"Endpoint absent of account {ACCOUNT_ID} not found."),
        ({"EndpointName": "with-ic"}, "Inference Component Name header is required for this endpoint."),
        (
            {"EndpointName": "plain", "InferenceComponentName": "with-ic-ic"},
            "Inference Component Name header is not allowed",
        ),
    ]
    for arguments, expected in cases:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            runtime.invoke_endpoint(**arguments, Body=b"{}")
        code, message, status = error_of(raised)
        assert (code, status) == ("ValidationError", 400)
        assert message.startswith(expected)

    assert runtime.invoke_endpoint(EndpointName="plain", Body=b"{}")["ContentType"] == "application/json"


def test_moto_ecr_and_iam(aws_env: dict[str, str]) -> None:
    ecr = boto3.client("ecr")
    repository = ecr.create_repository(repositoryName="gpuserve/demo")["repository"]
    assert repository["repositoryUri"] == f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/gpuserve/demo"

    [authorization] = ecr.get_authorization_token()["authorizationData"]
    username, _, password = base64.b64decode(authorization["authorizationToken"]).decode().partition(":")
    assert (username, bool(password)) == ("AWS", True)
    # moto reports the public ECR host, so tests must replace it with the local registry before pushing.
    assert authorization["proxyEndpoint"] == f"https://{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com"

    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="gpuserve-sagemaker", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    assert role["Arn"] == ROLE_ARN
    assert iam.get_role(RoleName="gpuserve-sagemaker")["Role"]["Arn"] == ROLE_ARN


def test_moto_scale_to_zero_policies(aws_env: dict[str, str]) -> None:
    autoscaling = boto3.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "inference-component/demo-ic",
        "ScalableDimension": COPY_COUNT_DIMENSION,
    }
    autoscaling.register_scalable_target(**target, MinCapacity=0, MaxCapacity=2)
    [registered] = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (registered["MinCapacity"], registered["MaxCapacity"]) == (0, 2)

    autoscaling.put_scaling_policy(
        **target,
        PolicyName="demo-ic-concurrency",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
            },
            "TargetValue": 4.0,
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    )
    step_policy = {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Maximum",
        "Cooldown": 60,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
    }
    policy_arn = autoscaling.put_scaling_policy(
        **target, PolicyName="demo-ic-wake", PolicyType="StepScaling", StepScalingPolicyConfiguration=step_policy
    )["PolicyARN"]
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert {p["PolicyName"]: p["PolicyType"] for p in policies} == {
        "demo-ic-concurrency": "TargetTrackingScaling",
        "demo-ic-wake": "StepScaling",
    }
    assert policy_arn.endswith(":resource/sagemaker/inference-component/demo-ic:policyName/demo-ic-wake")

    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="demo-ic-wake",
        Namespace="AWS/SageMaker",
        MetricName="NoCapacityInvocationFailures",
        Dimensions=[{"Name": "InferenceComponentName", "Value": "demo-ic"}],
        Statistic="Maximum",
        Period=10,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
        AlarmActions=[policy_arn],
    )
    [alarm] = cloudwatch.describe_alarms(AlarmNames=["demo-ic-wake"])["MetricAlarms"]
    assert alarm["AlarmActions"] == [policy_arn]
    assert alarm["MetricName"] == "NoCapacityInvocationFailures"
    assert alarm["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "demo-ic"}]


def test_registry_accepts_push(registry: str, docker_client: Any, base_image: str) -> None:
    repository = f"{registry}/gpuserve-tests/python"
    docker_client.images.get(base_image).tag(repository, "probe")
    try:
        # The registry has no auth, but the engine sends ECR-style credentials as a backend would.
        records = list(
            docker_client.api.push(
                repository, tag="probe", auth_config={"username": "AWS", "password": "token"}, stream=True, decode=True
            )
        )
    finally:
        docker_client.images.remove(f"{repository}:probe")
    assert [record["error"] for record in records if "error" in record] == []

    accept = "application/vnd.docker.distribution.manifest.v2+json"
    with httpx.Client(trust_env=False) as client:
        manifest = client.get(f"http://{registry}/v2/gpuserve-tests/python/manifests/probe", headers={"Accept": accept})
    assert manifest.status_code == 200
    assert manifest.json()["mediaType"] == accept
