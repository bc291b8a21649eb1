"""The Cloud Run backend: build and push the image, create or update the service, inspect and delete it."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

import google.api_core.exceptions
from google.auth.credentials import Credentials
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2

from ...errors import BackendError, DeployError
from ...settings import Settings
from ...state import DeploymentRecord, load_record, remove_record, save_record
from ..base import Backend, DeploySpec, ProgressCallback
from . import gcp, publish
from .service import ServiceOptions, build_service, check_settings, probe_window

logger = logging.getLogger(__name__)

INVOKER_ROLE = "roles/run.invoker"
PUBLIC_MEMBER = "allUsers"
#: Time for Cloud Run to pull the image and find a GPU, on top of the startup probe's window.
_PROVISION_SECONDS = 900.0


class CloudRunBackend(Backend):
    """Deploys endpoints as Cloud Run services that scale to zero, private unless deployed with public=True."""

    name = "cloudrun"

    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        settings = spec.settings
        check_settings(settings)
        credentials, default_project = gcp.load_credentials()
        config = gcp.load_config(default_project)
        _warn_if_setup_too_long(settings, progress)
        service_name = config.service_name(spec.name)
        client = gcp.services_client(credentials)

        from ..docker.backend import prune_dangling
        from ..docker.builder import build_image
        from ..docker.engine import connect

        docker_client = connect()
        # Checked before the build, which takes minutes, so that missing permissions fail fast.
        with gcp.translated_errors(f"create the Artifact Registry repository {config.repository}"):
            publish.ensure_repository(credentials, config, progress)
        built = build_image(docker_client, spec, progress)
        record = DeploymentRecord(
            name=spec.name,
            backend=self.name,
            reference=spec.reference,
            url="",
            settings_json=settings.to_json(),
            created_at=time.time(),
            extra={
                "project": config.project,
                "region": config.region,
                "repository": config.repository,
                "service": service_name,
                "public": not self.wants_auth(spec),
                "keep_image": spec.keep_image,
                "state": "deploying",
            },
        )
        created = False
        try:
            with gcp.translated_errors("push the image to Artifact Registry"):
                record.extra["image_uri"] = publish.push_image(
                    docker_client, credentials, config, built.tag, spec.name, progress
                )
            self._replace_other_deployment(spec.name, service_name, progress)
            options = ServiceOptions(
                image_uri=record.extra["image_uri"],
                gpu_zonal_redundancy=config.gpu_zonal_redundancy,
                service_account=config.service_account,
            )
            service = build_service(settings, options)
            created = _get_service(client, service_name) is None
            if created:
                # Saved before the service exists, so a deploy killed midway can still be deleted.
                save_record(record)
            result = self._apply(client, config.parent, spec.name, service, created, settings, progress)
            _apply_access(client, service_name, not self.wants_auth(spec), created)
            record.url = result.uri
        except BaseException:
            self._roll_back(record, client, credentials, config, created, progress)
            raise
        finally:
            # The pushed copy in Artifact Registry is what Cloud Run runs; the local image can go.
            docker_client.images.remove(built.tag, force=True)
            prune_dangling(docker_client, spec.name)
        record.extra["state"] = "deployed"
        record.extra["revision"] = result.latest_ready_revision.rsplit("/", 1)[-1]
        save_record(record)
        return record

    def _apply(
        self,
        client: run_v2.ServicesClient,
        parent: str,
        name: str,
        service: run_v2.Service,
        created: bool,
        settings: Settings,
        progress: ProgressCallback,
    ) -> run_v2.Service:
        """Create the service, or update it to a new revision, and wait until that revision serves."""
        if created:
            progress(f"Creating the Cloud Run service {name} (the first revision takes a few minutes)")
            with gcp.translated_errors(f"create the Cloud Run service {name}"):
                operation = client.create_service(parent=parent, service=service, service_id=name)
        else:
            progress(f"Updating the Cloud Run service {name} to a new revision")
            service.name = f"{parent}/services/{name}"
            with gcp.translated_errors(f"update the Cloud Run service {name}"):
                operation = client.update_service(service=service)
        timeout = probe_window(settings) + _PROVISION_SECONDS
        try:
            with gcp.translated_errors(f"start the new revision of {name}"):
                result: run_v2.Service = operation.result(timeout=timeout)  # type: ignore[no-untyped-call]
        except concurrent.futures.TimeoutError as exc:
            raise DeployError(f"Cloud Run did not make {name} ready within {timeout:.0f} s.") from exc
        except BackendError as exc:
            if type(exc) is BackendError:  # not a quota, permission or credentials error: the revision failed
                raise DeployError(
                    f"Cloud Run could not start {name}: {exc}. Read the container's output with `gpuserve logs {name}`."
                ) from exc
            raise
        progress(f"Revision {result.latest_ready_revision.rsplit('/', 1)[-1]} is ready at {result.uri}")
        return result

    def _replace_other_deployment(self, name: str, service_name: str, progress: ProgressCallback) -> None:
        """Delete an earlier deployment of the same name, unless it is this service, which gets a new revision."""
        try:
            previous = load_record(name)
        except Exception:  # DeploymentNotFoundError, or a record from an older version
            return
        if previous.backend == self.name and previous.extra.get("service") == service_name:
            return
        progress(f"Replacing the existing deployment {name!r} ({previous.backend})")
        from .. import get_backend

        get_backend(previous.backend).delete(previous)

    def _roll_back(
        self,
        record: DeploymentRecord,
        client: run_v2.ServicesClient,
        credentials: Credentials,
        config: gcp.CloudConfig,
        created: bool,
        progress: ProgressCallback,
    ) -> None:
        """Remove what a failed deploy created; an updated service keeps serving its previous revision."""
        if not created:
            if record.extra.get("image_uri"):
                logger.warning("Cloud Run keeps serving the previous revision of %s", record.name)
            return
        progress("Deploy failed; removing what it created")
        steps: list[tuple[str, Callable[[], None]]] = [
            ("delete the Cloud Run service", lambda: _delete_service(client, record.extra["service"]))
        ]
        if record.extra.get("image_uri") and not record.extra.get("keep_image"):
            steps.append(("delete the pushed image", lambda: publish.delete_images(credentials, config, record.name)))
        for action, step in steps:
            try:
                with gcp.translated_errors(action):
                    step()
            except BackendError as exc:
                # Reported, not raised: during a rollback the deploy's own error is the one to show.
                logger.warning("Could not %s of %s: %s", action, record.name, exc)
        remove_record(record.name)

    def token(self, record: DeploymentRecord) -> str | None:
        """Return a fresh Google ID token for a private service, or None for a public one."""
        if record.extra.get("public"):
            return None
        with gcp.translated_errors(f"get an ID token for {record.name}"):
            return gcp.fetch_id_token(record.url)

    def status(self, record: DeploymentRecord) -> dict[str, Any]:
        credentials, _ = gcp.load_credentials()
        client = gcp.services_client(credentials)
        service = _get_service(client, record.extra["service"])
        result: dict[str, Any] = {"name": record.name, "backend": self.name, "url": record.url, "instances": None}
        if service is None:
            return {**result, "state": "missing"}
        terminal = service.terminal_condition
        if service.reconciling:
            state = "deploying"
        elif terminal.state == run_v2.Condition.State.CONDITION_SUCCEEDED:
            state = "ready"
        else:
            state = terminal.state.name.removeprefix("CONDITION_").lower() or "unknown"
        return {
            **result,
            "state": state,
            "url": service.uri or record.url,
            "latest_ready_revision": service.latest_ready_revision.rsplit("/", 1)[-1],
            "latest_created_revision": service.latest_created_revision.rsplit("/", 1)[-1],
            "conditions": [
                {
                    "type": condition.type_,
                    "state": condition.state.name.removeprefix("CONDITION_").lower(),
                    "message": condition.message,
                }
                for condition in [terminal, *service.conditions]
                if condition.type_
            ],
            "public": bool(record.extra.get("public")),
            "region": record.extra.get("region"),
        }

    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        from .logs import read_logs

        credentials, _ = gcp.load_credentials()
        with gcp.translated_errors(f"read the logs of {record.name}"):
            return read_logs(credentials, record.extra["project"], record.extra["region"], record.name, tail)

    def delete(self, record: DeploymentRecord) -> None:
        credentials, _ = gcp.load_credentials()
        # The record's project, region and repository, not the environment's, which may have changed since.
        config = gcp.CloudConfig.of_record(record.extra)
        client = gcp.services_client(credentials)
        with gcp.translated_errors(f"delete the Cloud Run service {record.name}"):
            _delete_service(client, record.extra["service"])
        if record.extra.get("image_uri") and not record.extra.get("keep_image"):
            with gcp.translated_errors(f"delete the images of {record.name}"):
                publish.delete_images(credentials, config, record.name)
        remove_record(record.name)


def _warn_if_setup_too_long(settings: Settings, progress: ProgressCallback) -> None:
    window = probe_window(settings)
    if settings.setup_timeout > window:
        progress(
            f"Warning: setup_timeout={settings.setup_timeout:g} s exceeds Cloud Run's limit of {window} s for the "
            "startup probe; Cloud Run stops an instance whose setup takes longer, so load less in setup or load "
            "weights lazily."
        )


def _get_service(client: run_v2.ServicesClient, name: str) -> run_v2.Service | None:
    try:
        with gcp.translated_errors(f"read the Cloud Run service {name.rsplit('/', 1)[-1]}"):
            return client.get_service(name=name)
    except BackendError as exc:
        if gcp.is_not_found(exc):
            return None
        raise


def _delete_service(client: run_v2.ServicesClient, name: str) -> None:
    """Delete the service and wait until it is gone; a missing service is fine."""
    try:
        client.delete_service(name=name).result(timeout=_PROVISION_SECONDS)  # type: ignore[no-untyped-call]
    except google.api_core.exceptions.NotFound:
        pass


def _apply_access(client: run_v2.ServicesClient, name: str, public: bool, created: bool) -> None:
    """Add the allUsers invoker binding for a public service; remove it from an updated private one.

    A new private service needs no call: Cloud Run creates services without the binding.
    """
    if created and not public:
        return
    with gcp.translated_errors("read the service's IAM policy"):
        policy = client.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
    invokers = [binding for binding in policy.bindings if binding.role == INVOKER_ROLE]
    is_public = any(PUBLIC_MEMBER in binding.members for binding in invokers)
    if is_public == public:
        return
    if public:
        policy.bindings.append(policy_pb2.Binding(role=INVOKER_ROLE, members=[PUBLIC_MEMBER]))
    else:
        for binding in invokers:
            if PUBLIC_MEMBER in binding.members:
                binding.members.remove(PUBLIC_MEMBER)
        kept = [binding for binding in policy.bindings if binding.members]
        del policy.bindings[:]
        policy.bindings.extend(kept)
    with gcp.translated_errors("allow public calls" if public else "remove public access"):
        client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy))
