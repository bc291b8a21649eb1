"""The in-memory state behind ``FakeSageMaker``: SageMaker resources and the control-plane actions on them.

Messages follow the real API where a public source shows them: ``Could not find model "ARN".``,
``Cannot create already existing endpoint "ARN".`` and the runtime's ``Endpoint NAME of account
ACCOUNT not found.``. The wording marked NOTE is a guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

CONTROL_ACTIONS = frozenset(
    {
        "CreateModel",
        "DescribeModel",
        "DeleteModel",
        "CreateEndpointConfig",
        "DescribeEndpointConfig",
        "DeleteEndpointConfig",
        "CreateEndpoint",
        "DescribeEndpoint",
        "DeleteEndpoint",
        "CreateInferenceComponent",
        "DescribeInferenceComponent",
        "DeleteInferenceComponent",
        "UpdateInferenceComponentRuntimeConfig",
        "ListInferenceComponents",
    }
)

MODEL = "model"
CONFIG = "endpoint configuration"
ENDPOINT = "endpoint"
COMPONENT = "inference component"
_ARN_TYPES = {MODEL: "model", CONFIG: "endpoint-config", ENDPOINT: "endpoint", COMPONENT: "inference-component"}

#: AWS's wording for an invocation while a component has no copies, as published in the AWS Machine Learning
#: Blog post "Unlock cost savings with the new scale down to zero feature in SageMaker Inference" (2024-12-03).
NO_CAPACITY_MESSAGE = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)

_TRANSITIONING = ("Creating", "Updating")
_COMPONENT_SUMMARY_KEYS = (
    "InferenceComponentName",
    "InferenceComponentArn",
    "EndpointName",
    "EndpointArn",
    "VariantName",
    "InferenceComponentStatus",
    "CreationTime",
    "LastModifiedTime",
)


def arn(kind: str, name: str) -> str:
    """Return the ARN that SageMaker gives a resource, with the name lowercased as SageMaker does."""
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:{_ARN_TYPES[kind]}/{name.lower()}"


class AwsError(Exception):
    """An AWS error response: the error code, its message, the HTTP status and any modeled members."""

    def __init__(self, code: str, message: str, status: int = 400, members: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.members = members or {}


@dataclass
class Resource:
    """A model, endpoint configuration, endpoint or inference component, with the request that created it."""

    name: str
    arn: str
    request: dict[str, Any]
    status: str = "Creating"
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    #: ``time.monotonic()`` of the last status change, which the status transitions count from.
    changed_at: float = field(default_factory=time.monotonic)
    failure_reason: str | None = None
    #: The reason to fail with at the next transition, set by ``fail``.
    pending_failure: str | None = None
    current_copies: int = 0
    desired_copies: int = 0
    #: ``time.monotonic()`` at which a component at zero copies gets one copy back.
    wake_at: float | None = None

    def set_status(self, status: str) -> None:
        self.status = status
        self.changed_at = time.monotonic()
        self.modified = time.time()


class SageMakerState:
    """SageMaker's resources in memory and the control-plane actions on them.

    Resources in Creating or Updating go to InService (or to Failed when a failure is pending),
    and resources in Deleting disappear, once ``transition_delay`` seconds have passed since the
    status changed. The state applies due transitions whenever an action reads a resource.
    It does not lock; ``FakeSageMaker`` serializes every call.
    """

    def __init__(self, transition_delay: float) -> None:
        self.transition_delay = transition_delay
        self._tables: dict[str, dict[str, Resource]] = {kind: {} for kind in _ARN_TYPES}
        self._pending_failures: dict[tuple[str, str], str] = {}
        self.handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateModel": self._create_model,
            "DescribeModel": self._describe_model,
            "DeleteModel": lambda body: self._delete_now(MODEL, body["ModelName"]),
            "CreateEndpointConfig": self._create_endpoint_config,
            "DescribeEndpointConfig": self._describe_endpoint_config,
            "DeleteEndpointConfig": lambda body: self._delete_now(CONFIG, body["EndpointConfigName"]),
            "CreateEndpoint": self._create_endpoint,
            "DescribeEndpoint": self._describe_endpoint,
            "DeleteEndpoint": lambda body: self._start_deleting(ENDPOINT, body["EndpointName"]),
            "CreateInferenceComponent": self._create_component,
            "DescribeInferenceComponent": self._describe_component,
            "DeleteInferenceComponent": lambda body: self._start_deleting(COMPONENT, body["InferenceComponentName"]),
            "UpdateInferenceComponentRuntimeConfig": self._update_component_runtime,
            "ListInferenceComponents": self._list_components,
        }
        assert set(self.handlers) == CONTROL_ACTIONS

    def handle(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run control-plane ``action`` on ``body``, and raise ``AwsError`` where SageMaker returns an error."""
        try:
            return self.handlers[action](body)
        except KeyError as exc:
            # botocore validates required members before sending, so only hand-made requests get here.
            member = str(exc.args[0])
            raise AwsError(
                "ValidationException",
                f"1 validation error detected: Value null at '{member[0].lower()}{member[1:]}' failed to satisfy "
                "constraint: Member must not be null",
            ) from exc

    def fail(self, kind: str, name: str, reason: str) -> None:
        """Make a resource go to Failed at its next transition, now if it is settled, or when it is created."""
        self._advance_all(kind)
        resource = self._tables[kind].get(name)
        if resource is None:
            self._pending_failures[kind, name] = reason
        elif resource.status in _TRANSITIONING:
            resource.pending_failure = reason
        else:
            resource.failure_reason = reason
            resource.set_status("Failed")

    def set_copy_count(self, component: str, count: int) -> None:
        resource = self._get(COMPONENT, component)
        resource.current_copies = resource.desired_copies = count
        resource.wake_at = None
        resource.modified = time.time()

    def serving_variant(self, endpoint_name: str, component_name: str | None, wake_delay: float | None) -> str:
        """Return the variant that serves an invocation, or raise the error that SageMaker Runtime returns.

        With ``wake_delay``, a request that finds a component at zero copies gives it one copy
        that many seconds later.
        """
        self._advance_all(ENDPOINT)
        endpoint = self._tables[ENDPOINT].get(endpoint_name)
        if endpoint is None or endpoint.status == "Deleting":
            raise AwsError("ValidationError", f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.")
        if endpoint.status != "InService":
            # NOTE: the wording for an endpoint that exists but is not InService is a guess.
            raise AwsError(
                "ValidationError", f"Endpoint {endpoint_name} is in status {endpoint.status}, not InService."
            )

        config = self._tables[CONFIG].get(endpoint.request["EndpointConfigName"])
        variants = config.request["ProductionVariants"] if config else [{"VariantName": "AllTraffic"}]
        # An endpoint that hosts inference components has variants without a ModelName.
        hosts_components = not any("ModelName" in variant for variant in variants)
        # NOTE: both header messages come from third-party tests that quote real responses.
        if hosts_components and component_name is None:
            raise AwsError("ValidationError", "Inference Component Name header is required for this endpoint.")
        if not hosts_components and component_name is not None:
            raise AwsError(
                "ValidationError",
                "Inference Component Name header is not allowed for endpoints to which you dont plan to deploy "
                "inference components. Please remove the Inference Component Name header and try again.",
            )

        if component_name is None:
            return str(variants[0]["VariantName"])
        return self._check_capacity(endpoint_name, component_name, wake_delay)

    def _check_capacity(self, endpoint_name: str, component_name: str, wake_delay: float | None) -> str:
        """Return the component's variant, or raise when it is missing or has no copy to serve."""
        self._advance_all(COMPONENT)
        component = self._tables[COMPONENT].get(component_name)
        if component is None or component.request["EndpointName"] != endpoint_name or component.status == "Deleting":
            # NOTE: the wording for a missing inference component is a guess.
            raise AwsError("ValidationError", f"Inference Component {component_name} not found.")
        if component.current_copies == 0:
            if wake_delay is not None and component.wake_at is None:
                component.wake_at = time.monotonic() + wake_delay
            raise AwsError("ValidationError", NO_CAPACITY_MESSAGE)
        return str(component.request.get("VariantName", "AllTraffic"))

    def _create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model = self._add(MODEL, body["ModelName"], body, status="")
        return {"ModelArn": model.arn}

    def _describe_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model = self._get(MODEL, body["ModelName"])
        copied = ("PrimaryContainer", "Containers", "ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation")
        return {
            "ModelName": model.name,
            "ModelArn": model.arn,
            "CreationTime": model.created,
            **{key: model.request[key] for key in copied if key in model.request},
        }

    def _create_endpoint_config(self, body: dict[str, Any]) -> dict[str, Any]:
        for variant in body["ProductionVariants"]:
            if "ModelName" in variant:
                self._get(MODEL, variant["ModelName"])
        config = self._add(CONFIG, body["EndpointConfigName"], body, status="")
        return {"EndpointConfigArn": config.arn}

    def _describe_endpoint_config(self, body: dict[str, Any]) -> dict[str, Any]:
        config = self._get(CONFIG, body["EndpointConfigName"])
        copied = ("ProductionVariants", "ExecutionRoleArn", "DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig")
        return {
            "EndpointConfigName": config.name,
            "EndpointConfigArn": config.arn,
            "CreationTime": config.created,
            **{key: config.request[key] for key in copied if key in config.request},
        }

    def _create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        self._get(CONFIG, body["EndpointConfigName"])
        endpoint = self._add(ENDPOINT, body["EndpointName"], body, status="Creating")
        return {"EndpointArn": endpoint.arn}

    def _describe_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(ENDPOINT, body["EndpointName"])
        result: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.request["EndpointConfigName"],
            "EndpointStatus": endpoint.status,
            "CreationTime": endpoint.created,
            "LastModifiedTime": endpoint.modified,
        }
        if endpoint.failure_reason is not None:
            result["FailureReason"] = endpoint.failure_reason
        # SageMaker lists the variants once the endpoint has been deployed.
        if endpoint.status in ("InService", "Updating", "Deleting"):
            result["ProductionVariants"] = self._variant_summaries(endpoint)
        return result

    def _variant_summaries(self, endpoint: Resource) -> list[dict[str, Any]]:
        config = self._tables[CONFIG].get(endpoint.request["EndpointConfigName"])
        variants = config.request["ProductionVariants"] if config else []
        components = [c for c in self._tables[COMPONENT].values() if c.request["EndpointName"] == endpoint.name]
        summaries = []
        for variant in variants:
            instances = variant.get("InitialInstanceCount", 1)
            scaling = variant.get("ManagedInstanceScaling", {})
            # With managed instance scaling down to 0, SageMaker removes the instances once no component has a copy.
            if components and scaling.get("MinInstanceCount") == 0 and not any(c.current_copies for c in components):
                instances = 0
            summary = {
                "VariantName": variant["VariantName"],
                "CurrentWeight": variant.get("InitialVariantWeight", 1.0),
                "DesiredWeight": variant.get("InitialVariantWeight", 1.0),
                "CurrentInstanceCount": instances,
                "DesiredInstanceCount": instances,
            }
            summary.update({key: variant[key] for key in ("ManagedInstanceScaling", "RoutingConfig") if key in variant})
            summaries.append(summary)
        return summaries

    def _create_component(self, body: dict[str, Any]) -> dict[str, Any]:
        self._get(ENDPOINT, body["EndpointName"])
        model_name = body.get("Specification", {}).get("ModelName")
        if model_name is not None:
            self._get(MODEL, model_name)
        component = self._add(COMPONENT, body["InferenceComponentName"], body, status="Creating")
        component.desired_copies = body.get("RuntimeConfig", {}).get("CopyCount", 1)
        return {"InferenceComponentArn": component.arn}

    def _describe_component(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._component_description(self._get(COMPONENT, body["InferenceComponentName"]))

    def _component_description(self, component: Resource) -> dict[str, Any]:
        result: dict[str, Any] = {
            "InferenceComponentName": component.name,
            "InferenceComponentArn": component.arn,
            "EndpointName": component.request["EndpointName"],
            "EndpointArn": arn(ENDPOINT, component.request["EndpointName"]),
            "VariantName": component.request.get("VariantName", "AllTraffic"),
            "Specification": component.request.get("Specification", {}),
            "RuntimeConfig": {
                "DesiredCopyCount": component.desired_copies,
                "CurrentCopyCount": component.current_copies,
            },
            "CreationTime": component.created,
            "LastModifiedTime": component.modified,
            "InferenceComponentStatus": component.status,
        }
        if component.failure_reason is not None:
            result["FailureReason"] = component.failure_reason
        return result

    def _update_component_runtime(self, body: dict[str, Any]) -> dict[str, Any]:
        component = self._get(COMPONENT, body["InferenceComponentName"])
        component.desired_copies = body["DesiredRuntimeConfig"]["CopyCount"]
        component.wake_at = None
        component.set_status("Updating")
        return {"InferenceComponentArn": component.arn}

    def _list_components(self, body: dict[str, Any]) -> dict[str, Any]:
        self._advance_all(COMPONENT)
        selected = [
            component
            for component in self._tables[COMPONENT].values()
            if body.get("EndpointNameEquals") in (None, component.request["EndpointName"])
            and body.get("VariantNameEquals") in (None, component.request.get("VariantName"))
            and body.get("StatusEquals") in (None, component.status)
            and body.get("NameContains", "") in component.name
        ]
        sort_key: Callable[[Resource], Any] = {
            "Name": lambda c: c.name,
            "Status": lambda c: c.status,
            "CreationTime": lambda c: c.created,
        }[body.get("SortBy", "CreationTime")]
        selected.sort(key=sort_key, reverse=body.get("SortOrder", "Descending") == "Descending")

        start = int(body.get("NextToken", "0"))
        end = start + int(body.get("MaxResults", 10))
        page = [
            {key: self._component_description(c)[key] for key in _COMPONENT_SUMMARY_KEYS} for c in selected[start:end]
        ]
        result: dict[str, Any] = {"InferenceComponents": page}
        if end < len(selected):
            result["NextToken"] = str(end)
        return result

    def _delete_now(self, kind: str, name: str) -> dict[str, Any]:
        self._get(kind, name)
        del self._tables[kind][name]
        return {}

    def _start_deleting(self, kind: str, name: str) -> dict[str, Any]:
        resource = self._get(kind, name)
        if resource.status != "Deleting":
            resource.set_status("Deleting")
        return {}

    def _add(self, kind: str, name: str, request: dict[str, Any], status: str) -> Resource:
        self._advance_all(kind)
        if name in self._tables[kind]:
            raise AwsError("ValidationException", f'Cannot create already existing {kind} "{arn(kind, name)}".')
        resource = Resource(name, arn(kind, name), request, status=status)
        resource.pending_failure = self._pending_failures.pop((kind, name), None)
        self._tables[kind][name] = resource
        return resource

    def _get(self, kind: str, name: str) -> Resource:
        self._advance_all(kind)
        resource = self._tables[kind].get(name)
        if resource is None:
            raise AwsError("ValidationException", f'Could not find {kind} "{arn(kind, name)}".')
        return resource

    def _advance_all(self, kind: str) -> None:
        """Apply the status transitions that are due, for every resource of ``kind``."""
        now = time.monotonic()
        for name, resource in list(self._tables[kind].items()):
            due = now - resource.changed_at >= self.transition_delay
            if resource.status in _TRANSITIONING and due:
                if resource.pending_failure is not None:
                    resource.failure_reason, resource.pending_failure = resource.pending_failure, None
                    resource.set_status("Failed")
                else:
                    resource.current_copies = resource.desired_copies
                    resource.set_status("InService")
            elif resource.status == "Deleting" and due:
                del self._tables[kind][name]
            if resource.wake_at is not None and now >= resource.wake_at:
                resource.current_copies = resource.desired_copies = 1
                resource.wake_at = None
