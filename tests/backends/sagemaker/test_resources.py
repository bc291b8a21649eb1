"""The SageMaker requests built from endpoint settings, checked field by field without AWS."""

from __future__ import annotations

import pytest

import gpuserve
from gpuserve.backends.sagemaker import resources
from gpuserve.backends.sagemaker.instances import CPU_INSTANCE_TYPE, instance_type
from gpuserve.gpus import GPU

NAMES = resources.Names.for_deployment("embed")
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"


def _settings(**overrides: object) -> gpuserve.Settings:
    class Echo(gpuserve.Endpoint):
        def predict(self, text: str) -> str:
            return text

    return Echo.deployment_settings(**overrides)


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [
        (None, CPU_INSTANCE_TYPE),
        (GPU("T4"), "ml.g4dn.xlarge"),
        (GPU("A10G"), "ml.g5.xlarge"),
        (GPU("L4"), "ml.g6.xlarge"),
        (GPU("L40S"), "ml.g6e.xlarge"),
        (GPU("L4", 2), "ml.g6.12xlarge"),
        (GPU("A100-40GB"), "ml.p4d.24xlarge"),
        (GPU("A100-80GB", 8), "ml.p4de.24xlarge"),
        (GPU("H100"), "ml.p5.48xlarge"),
    ],
)
def test_instance_type_for_gpu(gpu: GPU | None, expected: str) -> None:
    assert instance_type(gpu) == expected


def test_gpu_sagemaker_lacks() -> None:
    with pytest.raises(gpuserve.ConfigError, match="Unknown GPU 'B200' for SageMaker; it offers T4"):
        instance_type(GPU("B200"))


def test_gpu_count_too_high() -> None:
    with pytest.raises(gpuserve.ConfigError, match="no instance with 8 T4 GPUs"):
        instance_type(GPU("T4", 8))


def test_names_fit_sagemaker_limit() -> None:
    names = resources.Names.for_deployment("a" * 63)
    for name in (names.endpoint, names.model, names.config, names.component):
        assert len(name) <= 63


def test_model_request_fields() -> None:
    request = resources.model_request(NAMES, "127.0.0.1:5000/gpuserve/embed:latest", ROLE, {"A": "1"})
    assert request["ModelName"] == "embed-model"
    assert request["ExecutionRoleArn"] == ROLE
    assert request["PrimaryContainer"] == {"Image": "127.0.0.1:5000/gpuserve/embed:latest", "Environment": {"A": "1"}}


def test_scale_to_zero_config() -> None:
    settings = _settings(max_instances=3, setup_timeout=120)
    request = resources.endpoint_config_request(NAMES, settings, "ml.g6.xlarge", ROLE)
    variant = request["ProductionVariants"][0]
    assert request["ExecutionRoleArn"] == ROLE
    assert variant["InstanceType"] == "ml.g6.xlarge"
    assert variant["ManagedInstanceScaling"] == {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 3}
    assert "ModelName" not in variant
    assert "ContainerStartupHealthCheckTimeoutInSeconds" not in variant


def test_component_health_check_timeout() -> None:
    request = resources.inference_component_request(NAMES, _settings(setup_timeout=120))
    startup = request["Specification"]["StartupParameters"]
    assert startup["ContainerStartupHealthCheckTimeoutInSeconds"] == 120


def test_health_check_timeout_capped() -> None:
    assert resources.health_check_timeout(_settings(setup_timeout=7200)) == 3600
    assert resources.health_check_timeout(_settings(setup_timeout=5)) == 60


def test_classic_variant_with_min_instances() -> None:
    settings = _settings(min_instances=2, max_instances=4)
    variant = resources.endpoint_config_request(NAMES, settings, "ml.g5.xlarge", ROLE)["ProductionVariants"][0]
    assert variant["ModelName"] == "embed-model"
    assert variant["InitialInstanceCount"] == 2
    assert "ManagedInstanceScaling" not in variant
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 600


def test_classic_variant_scaling_policy() -> None:
    request = resources.variant_tracking_request(NAMES, _settings(min_instances=1, max_concurrency=2))
    assert request["ResourceId"] == "endpoint/embed/variant/AllTraffic"
    metric = request["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert metric["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


def test_component_requests_gpus() -> None:
    request = resources.inference_component_request(NAMES, _settings(gpu="A100-80GB:2"))
    requirements = request["Specification"]["ComputeResourceRequirements"]
    assert requirements["NumberOfAcceleratorDevicesRequired"] == 2
    assert request["RuntimeConfig"] == {"CopyCount": 1}
    assert request["EndpointName"] == "embed"


def test_scaling_target_min_zero() -> None:
    request = resources.scalable_target_request(NAMES, _settings(max_instances=2))
    assert request["ResourceId"] == "inference-component/embed-ic"
    assert request["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert request["MinCapacity"] == 0
    assert request["MaxCapacity"] == 2


def test_wake_alarm_targets_policy() -> None:
    request = resources.wake_alarm_request(NAMES, "arn:aws:autoscaling:policy/wake")
    assert request["MetricName"] == "NoCapacityInvocationFailures"
    assert request["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "embed-ic"}]
    assert request["AlarmActions"] == ["arn:aws:autoscaling:policy/wake"]


def test_scale_in_after_idle_timeout() -> None:
    request = resources.target_tracking_request(NAMES, _settings(idle_timeout=300, max_concurrency=4))
    configuration = request["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["ScaleInCooldown"] == 300
    assert configuration["TargetValue"] == 4.0
