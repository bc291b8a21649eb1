"""The SageMaker backend: build and push the image, create the endpoint, invoke, inspect and delete it."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from ...client import stream_items
from ...errors import (
    BackendUnavailableError,
    ClientError,
    ConfigError,
    DeadlineExceededError,
    DeployError,
    EndpointUnavailableError,
    InvalidInputError,
    PredictError,
)
from ...settings import Settings
from ...state import DeploymentRecord, load_record, remove_record, save_record
from ..base import Backend, DeploySpec, ProgressCallback
from . import resources
from .aws import describe_or_none, error_code, error_message, session, translated_errors
from .instances import instance_type

logger = logging.getLogger(__name__)

#: ARN of the IAM role SageMaker assumes to pull the image and write logs.
ROLE_ENV = "GPUSERVE_SAGEMAKER_ROLE_ARN"
#: Extra time for SageMaker to provision instances, on top of setup_timeout.
_PROVISION_SECONDS = 1800.0


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


def _role_arn() -> str:
    role_arn = os.environ.get(ROLE_ENV, "")
    if not _ROLE_ARN.match(role_arn):
        found = f"{role_arn!r} is not a role ARN" if role_arn else "it is not set"
        raise ConfigError(
            f"Set {ROLE_ENV} to the ARN of a SageMaker execution role ({found}), for example "
            "arn:aws:iam::123456789012:role/SageMakerExecution, with permission to pull from ECR and write logs."
        )
    return role_arn


class SageMakerBackend(Backend):
    """Deploys endpoints as SageMaker real-time endpoints that scale to zero through inference components."""

    name = "sagemaker"
    #: Seconds between status polls while waiting for SageMaker.
    poll_seconds = 10.0

    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        settings = spec.settings
        role_arn = _role_arn()
        if settings.volumes:
            raise ConfigError(
                f"SageMaker endpoints cannot mount volumes ({', '.join(settings.volumes)}); load the files in setup, "
                "for example from S3, or add them to the project so they are built into the image."
            )
        instance = instance_type(settings.gpu)
        environment = {"GPUSERVE_SETTINGS": settings.to_json(), **self._secret_values(settings)}
        if settings.setup_timeout > resources.MAX_HEALTH_CHECK_SECONDS:
            progress(
                f"Warning: setup_timeout={settings.setup_timeout:g} s exceeds SageMaker's limit of "
                f"{resources.MAX_HEALTH_CHECK_SECONDS} s for the container health check; SageMaker will give up "
                "after that, so load less in setup or load weights lazily."
            )
        aws = session()
        if aws.get_credentials() is None:
            # Checked before the image build, which takes minutes, rather than at the first AWS call.
            raise BackendUnavailableError(
                "No AWS credentials found. Configure them (aws configure, AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) before deploying to SageMaker."
            )
        names = resources.Names.for_deployment(spec.name)
        from ..docker.backend import prune_dangling
        from ..docker.builder import build_image
        from ..docker.engine import connect
        from .publish import publish_image

        docker_client = connect()
        built = build_image(docker_client, spec, progress)
        record = DeploymentRecord(
            name=spec.name,
            backend=self.name,
            reference=spec.reference,
            url=f"https://runtime.sagemaker.{aws.region_name}.amazonaws.com/endpoints/{names.endpoint}/invocations",
            settings_json=settings.to_json(),
            created_at=time.time(),
            extra={
                "region": aws.region_name,
                "endpoint": names.endpoint,
                "component": names.component if resources.scale_to_zero(settings) else None,
                "instance_type": instance,
                "keep_image": spec.keep_image,
                "state": "deploying",
            },
        )
        try:
            image_uri = publish_image(docker_client, aws.client("ecr"), built.tag, names.repository, progress)
            record.extra["image_uri"] = image_uri
            # The old deployment goes only now, after every check, the build and the push have passed.
            self._replace_existing(spec.name, progress)
            # Saved before the first resource exists, so a deploy killed midway can still be deleted.
            save_record(record)
            self._create(aws, names, settings, instance, role_arn, image_uri, environment, progress)
        except BaseException:
            progress("Deploy failed; removing what it created")
            self._teardown(record)
            if record.extra.get("image_uri"):
                remove_record(record.name)
            raise
        finally:
            # The pushed copy in ECR is what SageMaker runs; the local image and its build stage can go.
            docker_client.images.remove(built.tag, force=True)
            prune_dangling(docker_client, spec.name)
        record.extra["state"] = "deployed"
        save_record(record)
        return record

    @staticmethod
    def _secret_values(settings: Settings) -> dict[str, str]:
        missing = [name for name in settings.secrets if name not in os.environ]
        if missing:
            raise ConfigError(
                f"Secret {missing[0]} is not set; the SageMaker backend passes secrets from your environment to the "
                f"model's environment, so export {missing[0]}=... before deploying."
            )
        return {name: os.environ[name] for name in settings.secrets}

    def _replace_existing(self, name: str, progress: ProgressCallback) -> None:
        try:
            previous = load_record(name)
        except Exception:  # DeploymentNotFoundError, or a record from an older version
            return
        progress(f"Replacing the existing deployment {name!r} ({previous.backend})")
        from .. import get_backend

        get_backend(previous.backend).delete(previous)

    def _create(
        self,
        aws: Any,
        names: resources.Names,
        settings: Settings,
        instance: str,
        role_arn: str,
        image_uri: str,
        environment: dict[str, str],
        progress: ProgressCallback,
    ) -> None:
        sagemaker = aws.client("sagemaker")
        autoscaling = aws.client("application-autoscaling")
        timeout = settings.setup_timeout + _PROVISION_SECONDS
        with translated_errors("create the model"):
            sagemaker.create_model(**resources.model_request(names, image_uri, role_arn, environment))
        with translated_errors("create the endpoint config"):
            sagemaker.create_endpoint_config(**resources.endpoint_config_request(names, settings, instance, role_arn))
        progress(f"Creating endpoint {names.endpoint} on {instance} (SageMaker takes several minutes)")
        with translated_errors("create the endpoint"):
            sagemaker.create_endpoint(EndpointName=names.endpoint, EndpointConfigName=names.config)
        self._wait(
            lambda: sagemaker.describe_endpoint(EndpointName=names.endpoint), "EndpointStatus", timeout, progress
        )

        if resources.scale_to_zero(settings):
            with translated_errors("create the inference component"):
                sagemaker.create_inference_component(**resources.inference_component_request(names, settings))
            self._wait(
                lambda: sagemaker.describe_inference_component(InferenceComponentName=names.component),
                "InferenceComponentStatus",
                timeout,
                progress,
            )
        with translated_errors("register the scaling target"):
            autoscaling.register_scalable_target(**resources.scalable_target_request(names, settings))
        if not resources.scale_to_zero(settings):
            with translated_errors("create the scaling policy"):
                autoscaling.put_scaling_policy(**resources.variant_tracking_request(names, settings))
        else:
            with translated_errors("create the scaling policies"):
                autoscaling.put_scaling_policy(**resources.target_tracking_request(names, settings))
                policy_arn = autoscaling.put_scaling_policy(**resources.wake_policy_request(names))["PolicyARN"]
            with translated_errors("create the wake-up alarm"):
                aws.client("cloudwatch").put_metric_alarm(**resources.wake_alarm_request(names, policy_arn))

    def _wait(
        self, describe: Callable[[], dict[str, Any]], key: str, timeout: float, progress: ProgressCallback
    ) -> dict[str, Any]:
        """Poll ``describe`` until ``key`` is InService; raise DeployError on Failed or after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            with translated_errors("read the deployment's status"):
                description = describe()
            status = description.get(key)
            if status != last:
                progress(f"{key.removesuffix('Status')}: {status}")
                last = status
            if status == "InService":
                return description
            if status == "Failed":
                raise DeployError(
                    f"SageMaker reports {key} Failed: {description.get('FailureReason', 'no reason given')}"
                )
            if time.monotonic() > deadline:
                raise DeployError(
                    f"SageMaker did not reach InService within {timeout:.0f} s; the last status was {status}."
                )
            time.sleep(self.poll_seconds)

    def _teardown(self, record: DeploymentRecord) -> None:
        """Delete everything the deployment may have created, in dependency order; missing parts are skipped."""
        for action, step in self._teardown_steps(record):
            try:
                step()
            except botocore.exceptions.ClientError as exc:
                if not _is_missing(exc):
                    logger.warning("Could not %s of %s: %s", action, record.name, error_message(exc))
            except botocore.exceptions.BotoCoreError as exc:
                # Reported, not raised: during a rollback the deploy's own error is the one to show.
                logger.warning("Could not %s of %s: %s", action, record.name, exc)

    def _teardown_steps(self, record: DeploymentRecord) -> list[tuple[str, Callable[[], Any]]]:
        """Return the delete calls of a deployment, each with its description, in dependency order."""
        aws = session()
        names = resources.Names.for_deployment(record.name)
        sagemaker = aws.client("sagemaker")
        autoscaling = aws.client("application-autoscaling")
        steps: list[tuple[str, Callable[[], Any]]] = [
            (
                "delete the wake-up alarm",
                lambda: aws.client("cloudwatch").delete_alarms(AlarmNames=[f"{names.component}-wake"]),
            ),
        ]
        for policy in (f"{names.component}-concurrency", f"{names.component}-wake"):
            delete_policy = functools.partial(
                autoscaling.delete_scaling_policy,
                PolicyName=policy,
                ServiceNamespace=resources.NAMESPACE,
                ResourceId=names.scaling_resource,
                ScalableDimension=resources.COPY_DIMENSION,
            )
            steps.append((f"delete the scaling policy {policy}", delete_policy))
        delete_variant_policy = functools.partial(
            autoscaling.delete_scaling_policy,
            PolicyName=f"{names.endpoint}-invocations",
            ServiceNamespace=resources.NAMESPACE,
            ResourceId=names.variant_resource,
            ScalableDimension=resources.INSTANCE_DIMENSION,
        )
        steps.append(("delete the scaling policy of the variant", delete_variant_policy))
        for resource_id, dimension in (
            (names.scaling_resource, resources.COPY_DIMENSION),
            (names.variant_resource, resources.INSTANCE_DIMENSION),
        ):
            deregister = functools.partial(
                autoscaling.deregister_scalable_target,
                ServiceNamespace=resources.NAMESPACE,
                ResourceId=resource_id,
                ScalableDimension=dimension,
            )
            steps.append(("deregister the scaling target", deregister))
        steps += [
            ("delete the inference component", lambda: self._delete_and_wait(sagemaker, "component", names.component)),
            ("delete the endpoint", lambda: self._delete_and_wait(sagemaker, "endpoint", names.endpoint)),
            ("delete the endpoint config", lambda: sagemaker.delete_endpoint_config(EndpointConfigName=names.config)),
            ("delete the model", lambda: sagemaker.delete_model(ModelName=names.model)),
        ]
        if record.extra.get("image_uri") and not record.extra.get("keep_image"):
            tag = record.extra["image_uri"].rsplit(":", 1)[1]
            steps.append(
                (
                    "delete the ECR image",
                    lambda: aws.client("ecr").batch_delete_image(
                        repositoryName=names.repository, imageIds=[{"imageTag": tag}]
                    ),
                )
            )
        return steps

    def _delete_and_wait(self, sagemaker: Any, kind: str, name: str) -> None:
        if kind == "component":
            sagemaker.delete_inference_component(InferenceComponentName=name)
            describe: Callable[[], Any] = lambda: describe_or_none(  # noqa: E731
                sagemaker.describe_inference_component, InferenceComponentName=name
            )
        else:
            sagemaker.delete_endpoint(EndpointName=name)
            describe = lambda: describe_or_none(sagemaker.describe_endpoint, EndpointName=name)  # noqa: E731
        deadline = time.monotonic() + _PROVISION_SECONDS
        while describe() is not None and time.monotonic() < deadline:
            time.sleep(self.poll_seconds)

    def status(self, record: DeploymentRecord) -> dict[str, Any]:
        sagemaker = session().client("sagemaker")
        with translated_errors("read the endpoint's status"):
            endpoint = describe_or_none(sagemaker.describe_endpoint, EndpointName=record.extra["endpoint"])
            component = None
            if record.extra.get("component"):
                component = describe_or_none(
                    sagemaker.describe_inference_component, InferenceComponentName=record.extra["component"]
                )
        variants = (endpoint or {}).get("ProductionVariants") or [{}]
        copies = (component or {}).get("RuntimeConfig", {}).get("CurrentCopyCount")
        state = "missing" if endpoint is None else str(endpoint.get("EndpointStatus"))
        if state == "InService" and copies == 0:
            state = "scaled_to_zero"
        return {
            "name": record.name,
            "backend": self.name,
            "url": record.url,
            "state": state,
            "instances": variants[0].get("CurrentInstanceCount"),
            "copies": copies,
            "instance_type": record.extra.get("instance_type"),
            "failure_reason": (endpoint or {}).get("FailureReason"),
        }

    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        group = f"/aws/sagemaker/Endpoints/{record.extra['endpoint']}"
        client = session().client("logs")
        try:
            with translated_errors("read the endpoint's logs"):
                events = client.filter_log_events(logGroupName=group, limit=tail or 100)["events"]
        except Exception as exc:
            if isinstance(exc.__cause__, botocore.exceptions.ClientError) and _is_missing(exc.__cause__):
                return ""
            raise
        events.sort(key=lambda event: event["timestamp"])
        return "".join(event["message"].rstrip("\n") + "\n" for event in events)

    def delete(self, record: DeploymentRecord) -> None:
        self._teardown(record)
        remove_record(record.name)

    def invoke(self, record: DeploymentRecord, inputs: dict[str, Any], deadline: float) -> Any:
        """Call the endpoint through SageMaker Runtime; while it is at zero, retry until ``deadline`` seconds pass."""
        runtime = session().client("sagemaker-runtime")
        arguments: dict[str, Any] = {
            "EndpointName": record.extra["endpoint"],
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(inputs).encode(),
        }
        if record.extra.get("component"):
            arguments["InferenceComponentName"] = record.extra["component"]
        give_up_at = time.monotonic() + deadline
        delay = 2.0
        waking = False
        while True:
            try:
                response = runtime.invoke_endpoint(**arguments)
            except botocore.exceptions.BotoCoreError as exc:
                with translated_errors("invoke the endpoint"):  # no credentials, no connection
                    raise exc
                raise  # unreachable: translated_errors always raises
            except botocore.exceptions.ClientError as exc:
                if not _no_capacity(exc):
                    raise _invoke_error(exc) from exc
                if time.monotonic() + delay > give_up_at:
                    raise DeadlineExceededError(
                        f"{record.name} was still scaled to zero after {deadline:g} s; SageMaker can take minutes to "
                        "start an instance, so raise the deadline."
                    ) from exc
                if not waking:
                    logger.info("%s is scaled to zero; waking it and retrying for up to %.0f s", record.name, deadline)
                    waking = True
                time.sleep(delay)
                delay = min(delay * 1.5, 30.0)
                continue
            content = response["Body"].read()
            if str(response.get("ContentType", "")).startswith("text/event-stream"):
                # NOTE: the items arrive together, at the end; InvokeEndpointWithResponseStream would stream them.
                return list(stream_items(content.decode().splitlines(), record.name))
            body = json.loads(content)
            if not isinstance(body, dict) or "output" not in body:
                raise ClientError(f"The response of {record.name} has no output: {str(body)[:200]}")
            return body["output"]


def _is_missing(exc: botocore.exceptions.ClientError) -> bool:
    code, message = error_code(exc), error_message(exc)
    return (
        code
        in ("ResourceNotFound", "ResourceNotFoundException", "ObjectNotFoundException", "RepositoryNotFoundException")
        or "Could not find" in message
        or "not found" in message.lower()
    )


def _no_capacity(exc: botocore.exceptions.ClientError) -> bool:
    return "no capacity" in error_message(exc).lower()


def _invoke_error(exc: botocore.exceptions.ClientError) -> Exception:
    """Map an invoke error; a ModelError carries the container's own status code and body."""
    if error_code(exc) != "ModelError":
        with translated_errors("invoke the endpoint"):
            raise exc
    status = int(exc.response.get("OriginalStatusCode", 500))
    try:
        body = json.loads(exc.response.get("OriginalMessage", ""))
    except ValueError:
        body = None
    message = (
        body["error"]["message"]
        if isinstance(body, dict) and isinstance(body.get("error"), dict)
        else error_message(exc)
    )
    if status in (400, 413, 415, 422):
        return InvalidInputError(message, status_code=status, body=body)
    if status == 503:
        return EndpointUnavailableError(message, status_code=status, body=body)
    return PredictError(message, status_code=status, body=body)
