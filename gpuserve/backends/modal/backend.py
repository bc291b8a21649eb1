"""The Modal backend's deploy, status, logs and delete, with the SDK behind one seam.

Every call that talks to Modal's servers goes through ``ModalApi``, so tests can replace it and run
the whole flow without credentials. Its errors are translated here into gpuserve's tree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modal
import modal.exception

from ...errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    DeployError,
    DeploymentNotFoundError,
)
from ...state import DeploymentRecord, load_record, save_record
from ..base import Backend, DeploySpec, ProgressCallback
from .plan import make_plan
from .server import SERVER_CLASS, build_app

logger = logging.getLogger(__name__)


class ModalApi:
    """The calls to Modal's servers, through the public SDK."""

    def credentials_present(self) -> bool:
        """True when Modal credentials are set in the environment or a Modal profile (~/.modal.toml).

        Checked before any call, because the SDK retries for about a minute when it cannot authenticate.
        """
        if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
            return True
        from modal.config import config

        return bool(config.get("token_id") and config.get("token_secret"))

    def deploy(self, app: modal.App, name: str) -> tuple[str, str]:
        """Deploy ``app`` as ``name``; return its app id and the server class's web URL."""
        with modal.enable_output():  # Modal's own progress display: image build steps and uploads
            deployed = app.deploy(name=name)
        # NOTE: the URL lookup is exercised only by the live test, which needs Modal credentials.
        url = modal.Cls.from_name(name, SERVER_CLASS)().web.get_web_url()
        return str(deployed.app_id), str(url)

    def exists(self, name: str) -> bool:
        try:
            modal.App.lookup(name)
        except modal.exception.NotFoundError:
            return False
        return True

    def logs(self, name: str, entries: int) -> list[str]:
        app = modal.App.lookup(name)
        return [entry.message for entry in app.logs.tail(entries)]

    def stop(self, name: str) -> None:
        modal.App.lookup(name).stop()


@contextlib.contextmanager
def _translated_errors(action: str) -> Iterator[None]:
    """Re-raise Modal SDK errors raised during ``action`` as gpuserve errors, keeping the cause."""
    try:
        yield
    except modal.exception.AuthError as exc:
        raise BackendUnavailableError(
            f"Modal rejected the credentials while trying to {action}: {exc}. Run `modal token new` or set "
            "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET."
        ) from exc
    except modal.exception.NotFoundError as exc:
        raise DeploymentNotFoundError(f"Modal found nothing to {action}: {exc}") from exc
    except modal.exception.InvalidError as exc:
        raise ConfigError(f"Modal rejected the settings while trying to {action}: {exc}") from exc
    except modal.exception.ConnectionError as exc:
        raise BackendUnavailableError(f"Cannot reach Modal to {action}: {exc}") from exc
    except modal.exception.Error as exc:
        raise BackendError(f"Modal failed to {action}: {exc}") from exc


class ModalBackend(Backend):
    """Deploys endpoints as Modal apps that scale to zero."""

    name = "modal"

    def __init__(self, api: ModalApi | None = None) -> None:
        self.api = api or ModalApi()

    def _require_credentials(self) -> None:
        if not self.api.credentials_present():
            raise BackendUnavailableError(
                "No Modal credentials found; run `modal token new`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET."
            )

    def deploy(self, spec: DeploySpec, progress: ProgressCallback) -> DeploymentRecord:
        plan = make_plan(spec)  # rejects what Modal cannot do before any network call
        for mount, directory in plan.local_dirs.items():
            if not Path(directory).is_dir():
                raise ConfigError(
                    f"Volume {mount}: local_dir {directory!r} is not a directory; create it or fix the path."
                )
        self._require_credentials()
        self._remove_other_backend(spec.name, progress)
        token = secrets.token_urlsafe(32) if self.wants_auth(spec) else None
        app = build_app(plan, token)
        progress(f"Deploying Modal app {plan.app_name!r} (image build and upload may take minutes)")
        began = time.monotonic()
        with _translated_errors("deploy the app"):
            app_id, url = self.api.deploy(app, plan.app_name)
        if not url.startswith(("https://", "http://")):
            with _translated_errors("stop the app after a failed deploy"):
                self.api.stop(plan.app_name)
            raise DeployError(f"Modal deployed {plan.app_name!r} without a web URL ({url!r}); the app was stopped.")
        progress(f"Deployed in {time.monotonic() - began:.0f} s at {url}")
        record = DeploymentRecord(
            name=spec.name,
            backend=self.name,
            reference=spec.reference,
            url=url,
            settings_json=spec.settings.to_json(),
            created_at=time.time(),
            token=token,
            extra={"app_id": app_id, "app_name": plan.app_name, "gpu": plan.gpu},
        )
        save_record(record)
        return record

    def _remove_other_backend(self, name: str, progress: ProgressCallback) -> None:
        """Delete a deployment of the same name on another backend; a Modal app of that name is updated in place."""
        try:
            previous = load_record(name)
        except DeploymentNotFoundError:
            return
        if previous.backend != self.name:
            progress(f"Replacing the existing deployment {name!r} ({previous.backend})")
            from .. import get_backend

            get_backend(previous.backend).delete(previous)

    def status(self, record: DeploymentRecord) -> dict[str, Any]:
        self._require_credentials()
        with _translated_errors("look up the app"):
            deployed = self.api.exists(record.extra["app_name"])
        return {
            "name": record.name,
            "backend": self.name,
            "url": record.url,
            "state": "deployed" if deployed else "stopped",
            # Modal starts and stops containers itself; the dashboard shows live counts.
            "instances": None,
            "app_id": record.extra.get("app_id"),
            "gpu": record.extra.get("gpu"),
        }

    def logs(self, record: DeploymentRecord, tail: int | None = None) -> str:
        self._require_credentials()
        with _translated_errors("read the app's logs"):
            lines = self.api.logs(record.extra["app_name"], 100 if tail is None else tail)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def delete(self, record: DeploymentRecord) -> None:
        self._require_credentials()
        try:
            with _translated_errors("stop the app"):
                self.api.stop(record.extra["app_name"])
        except DeploymentNotFoundError:
            logger.info("Modal app %s was already stopped", record.extra["app_name"])
        from ...state import remove_record

        remove_record(record.name)
