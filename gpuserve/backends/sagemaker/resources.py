"""The SageMaker, Application Auto Scaling and CloudWatch requests for one endpoint, as plain data.

Scale to zero (``min_instances=0``) follows AWS's design for inference components. The endpoint
config enables managed instance scaling with a minimum of 0 instances, and the model runs as an
inference component. Application Auto Scaling tracks the component's copy count down to 0, and a
step-scaling policy on the ``NoCapacityInvocationFailures`` alarm adds a copy when a request
arrives while there is none. ``min_instances >= 1`` uses a classic production variant instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...settings import Settings

VARIANT = "AllTraffic"
NAMESPACE = "sagemaker"
COPY_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
INSTANCE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
#: SageMaker's range for ContainerStartupHealthCheckTimeoutInSeconds (API reference, ProductionVariant).
MIN_HEALTH_CHECK_SECONDS = 60
MAX_HEALTH_CHECK_SECONDS = 3600
#: Memory a copy reserves on the instance; SageMaker requires a value for inference components.
COPY_MEMORY_MB = 1024


@dataclass(frozen=True)
class Names:
    """Names of the AWS resources of one deployment; SageMaker allows 63 characters."""

    endpoint: str
    model: str
    config: str
    component: str
    repository: str

    @classmethod
    def for_deployment(cls, name: str) -> Names:
        stem = name[:50]
        return cls(
            endpoint=stem,
            model=f"{stem}-model",
            config=f"{stem}-config",
            component=f"{stem}-ic",
            repository=f"gpuserve/{name}",
        )

    @property
    def scaling_resource(self) -> str:
        return f"inference-component/{self.component}"

    @property
    def variant_resource(self) -> str:
        return f"endpoint/{self.endpoint}/variant/{VARIANT}"


def scale_to_zero(settings: Settings) -> bool:
    return settings.scaling.min_instances == 0


def model_request(names: Names, image_uri: str, role_arn: str, environment: dict[str, str]) -> dict[str, Any]:
    return {
        "ModelName": names.model,
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {"Image": image_uri, "Environment": environment},
        "Tags": [{"Key": "gpuserve", "Value": "true"}],
    }


def endpoint_config_request(names: Names, settings: Settings, instance_type: str, role_arn: str) -> dict[str, Any]:
    scaling = settings.scaling
    variant: dict[str, Any] = {"VariantName": VARIANT, "InstanceType": instance_type}
    request: dict[str, Any] = {"EndpointConfigName": names.config, "ProductionVariants": [variant]}
    if scale_to_zero(settings):
        variant["InitialInstanceCount"] = 1
        variant["ManagedInstanceScaling"] = {
            "Status": "ENABLED",
            "MinInstanceCount": 0,
            "MaxInstanceCount": scaling.max_instances,
        }
        variant["RoutingConfig"] = {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
        request["ExecutionRoleArn"] = role_arn  # inference components need the role on the config
    else:
        variant["ModelName"] = names.model
        variant["InitialInstanceCount"] = scaling.min_instances
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = health_check_timeout(settings)
    return request


def health_check_timeout(settings: Settings) -> int:
    """Seconds SageMaker waits for the container's /ping: setup_timeout, within SageMaker's 60-3600 s range."""
    return min(MAX_HEALTH_CHECK_SECONDS, max(MIN_HEALTH_CHECK_SECONDS, round(settings.setup_timeout)))


def inference_component_request(names: Names, settings: Settings) -> dict[str, Any]:
    requirements: dict[str, Any] = {"MinMemoryRequiredInMb": COPY_MEMORY_MB}
    if settings.gpu is not None:
        requirements["NumberOfAcceleratorDevicesRequired"] = settings.gpu.count
    return {
        "InferenceComponentName": names.component,
        "EndpointName": names.endpoint,
        "VariantName": VARIANT,
        "Specification": {
            "ModelName": names.model,
            "ComputeResourceRequirements": requirements,
            # For components the /ping timeout belongs to the component, not to the endpoint's variant.
            "StartupParameters": {"ContainerStartupHealthCheckTimeoutInSeconds": health_check_timeout(settings)},
        },
        "RuntimeConfig": {"CopyCount": 1},
    }


def scalable_target_request(names: Names, settings: Settings) -> dict[str, Any]:
    scaling = settings.scaling
    if scale_to_zero(settings):
        return {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": names.scaling_resource,
            "ScalableDimension": COPY_DIMENSION,
            "MinCapacity": 0,
            "MaxCapacity": scaling.max_instances,
        }
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": names.variant_resource,
        "ScalableDimension": INSTANCE_DIMENSION,
        "MinCapacity": scaling.min_instances,
        "MaxCapacity": scaling.max_instances,
    }


def target_tracking_request(names: Names, settings: Settings) -> dict[str, Any]:
    """Scale copies with concurrent requests, and in to zero after ``idle_timeout``."""
    idle = max(60, round(settings.scaling.idle_timeout))
    return {
        "PolicyName": f"{names.component}-concurrency",
        "ServiceNamespace": NAMESPACE,
        "ResourceId": names.scaling_resource,
        "ScalableDimension": COPY_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
            },
            "TargetValue": float(settings.scaling.max_concurrency),
            "ScaleInCooldown": idle,
            "ScaleOutCooldown": 60,
        },
    }


def variant_tracking_request(names: Names, settings: Settings) -> dict[str, Any]:
    """Scale a classic variant's instances with the invocation rate, between min and max instances."""
    return {
        "PolicyName": f"{names.endpoint}-invocations",
        "ServiceNamespace": NAMESPACE,
        "ResourceId": names.variant_resource,
        "ScalableDimension": INSTANCE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            # NOTE: an estimate of one request per second per concurrent slot; tune it for slow models.
            "TargetValue": 60.0 * settings.scaling.max_concurrency,
            "ScaleInCooldown": max(60, round(settings.scaling.idle_timeout)),
            "ScaleOutCooldown": 60,
        },
    }


def wake_policy_request(names: Names) -> dict[str, Any]:
    """Add one copy when the no-capacity alarm fires, which is how a request wakes a component at zero."""
    return {
        "PolicyName": f"{names.component}-wake",
        "ServiceNamespace": NAMESPACE,
        "ResourceId": names.scaling_resource,
        "ScalableDimension": COPY_DIMENSION,
        "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Maximum",
            "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
        },
    }


def wake_alarm_request(names: Names, policy_arn: str) -> dict[str, Any]:
    return {
        "AlarmName": f"{names.component}-wake",
        "AlarmDescription": "Wakes a gpuserve endpoint scaled to zero when a request finds no capacity.",
        "Namespace": "AWS/SageMaker",
        "MetricName": "NoCapacityInvocationFailures",
        "Dimensions": [{"Name": "InferenceComponentName", "Value": names.component}],
        "Statistic": "Maximum",
        "Period": 10,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "missing",
        "AlarmActions": [policy_arn],
    }
