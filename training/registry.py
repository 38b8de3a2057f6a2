"""MLflow tracking and the ``churn-risk`` registry: registering, aliases, history.

Registry by alias only: every new version is ``challenger``; ``champion`` moves only
through ``training.promotion.promotion_gate`` (after training) or a person's ``promote`` /
``rollback``.
Each move of ``champion`` is recorded twice so that "who was champion when" survives:

* a registered-model tag ``champion_event.<UTC time>`` holding JSON
  ``{"action", "version", "previous", "by", "reason", "at"}`` (one tag per event);
* version tags ``champion_since`` / ``champion_until`` on the versions involved.
"""

from __future__ import annotations

import getpass
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from churnml.contract import CONTRACT_VERSION
from churnml.errors import ConfigError, DataError, ModelError
from churnml.tracking import mlflow_store
from model.artifact import ChurnModel
from training.settings import TrainingSettings

CHAMPION = "champion"
CHALLENGER = "challenger"
EVENT_PREFIX = "champion_event."


@contextmanager
def tracking(settings: TrainingSettings) -> Iterator[MlflowClient]:
    """Point MLflow at the configured store for the duration of one command."""
    uri = settings.resolved_tracking_uri()
    if not settings.tracking_uri:
        settings.home.mkdir(parents=True, exist_ok=True)
    with mlflow_store(uri):
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: MlflowClient, settings: TrainingSettings) -> str:
    """The churnml experiment; with the embedded store its artifacts go under CHURNML_HOME."""
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    location = None if settings.tracking_uri else settings.artifact_root.as_uri()
    try:
        return client.create_experiment(settings.experiment_name, artifact_location=location)
    except MlflowException as error:
        raise ConfigError(
            f"MLflow at {settings.resolved_tracking_uri()}: cannot create experiment "
            f"{settings.experiment_name!r} ({str(error).splitlines()[0]}); "
            "check MLFLOW_TRACKING_URI"
        ) from None


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


# -- registering -------------------------------------------------------------------------
@contextmanager
def _mlflow_quiet() -> Iterator[None]:
    """MLflow's lines while it logs and registers the model, which the command's own
    summary says better: its CloudPickle warning (churnml loads the model folder itself,
    never the pickle: ``model.loading``), and "Successfully registered model ..." /
    "Created version ..." printed on standard error."""
    logger = logging.getLogger("mlflow.pyfunc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def register(
    client: MlflowClient,
    settings: TrainingSettings,
    model: ChurnModel,
    folder: Path,
    *,
    python_model: mlflow.pyfunc.PythonModel,
    requirements: list[str],
    run_id: str,
    gate: str,
) -> str:
    """Log ``model`` (saved under ``folder``) as the active run's ``python_model``, register
    it as a new version, the ``challenger``, tagged with the run and the gate's verdict
    ``gate``; returns the version."""
    model_folder = model.save(folder)
    with warnings.catch_warnings(), _mlflow_quiet():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            artifacts={"model": str(model_folder)},
            registered_model_name=settings.model_name,
            pip_requirements=requirements,
            metadata={"contract_version": CONTRACT_VERSION, "kind": model.kind},
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(settings.model_name, CHALLENGER, version)
    client.set_model_version_tag(settings.model_name, version, "run_id", run_id)
    client.set_model_version_tag(settings.model_name, version, "gate", gate)
    return version


# -- champion moves ----------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def person() -> str:
    """Who is deciding: CHURNML_USER, else the login name."""
    return os.environ.get("CHURNML_USER") or getpass.getuser()


def history(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """Every champion move, oldest first."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return []
    events = [
        json.loads(value)
        for key, value in sorted(model.tags.items())
        if key.startswith(EVENT_PREFIX)
    ]
    return sorted(events, key=lambda event: event["at"])


def champion_stack(events: list[dict[str, Any]]) -> list[str]:
    """Champion versions in order of succession; a rollback pops the latest."""
    stack: list[str] = []
    for event in events:
        if event["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(str(event["version"]))
    return stack


def set_champion(
    client: MlflowClient, name: str, version: str, *, action: str, by: str, reason: str
) -> dict[str, Any]:
    """Move the champion alias to ``version`` and record the move."""
    previous = alias_version(client, name, CHAMPION)
    at = _now()
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if previous is not None and previous != str(version):
        client.set_model_version_tag(name, previous, "champion_until", at.isoformat())
    client.set_model_version_tag(name, str(version), "champion_since", at.isoformat())
    event = {
        "action": action,
        "version": str(version),
        "previous": previous,
        "by": by,
        "reason": reason[:2000],
        "at": at.isoformat(),
    }
    client.set_registered_model_tag(name, EVENT_PREFIX + stamp, json.dumps(event))
    return event


def promote(version: str | int, settings: TrainingSettings, *, reason: str = "") -> dict[str, Any]:
    """A person's decision: make ``version`` of the model the champion."""
    version = str(version)
    with tracking(settings) as client:
        try:
            client.get_model_version(settings.model_name, version)
        except MlflowException:
            raise ModelError(
                f"{settings.model_name} has no version {version!r}; list versions in the MLflow UI "
                f"or pass one that `churnml train` registered"
            ) from None
        return set_champion(
            client,
            settings.model_name,
            version,
            action="promote",
            by=person(),
            reason=reason or "promoted by hand",
        )


def rollback(settings: TrainingSettings, *, reason: str = "") -> dict[str, Any]:
    """A person's decision: give the champion alias back to the previous champion."""
    with tracking(settings) as client:
        stack = champion_stack(history(client, settings.model_name))
        if len(stack) < 2:
            raise DataError(
                f"{settings.model_name} has no earlier champion to roll back to; "
                "use `churnml promote VERSION` to pick one"
            )
        target = stack[-2]
        event = set_champion(
            client,
            settings.model_name,
            target,
            action="rollback",
            by=person(),
            reason=reason or f"rolled back from v{stack[-1]}",
        )
        return event


def champion_history(settings: TrainingSettings) -> list[dict[str, Any]]:
    """Which version was champion when: every recorded move, oldest first."""
    with tracking(settings) as client:
        return history(client, settings.model_name)
