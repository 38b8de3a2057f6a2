"""MLflow tracking and the ``churn-risk`` registry: aliases, the promotion gate, history.

Registry by alias only: every new version is ``challenger``; ``champion`` moves only
through ``promotion_gate`` (after training) or a person's ``promote`` / ``rollback``.
Each move of ``champion`` is recorded twice so that "who was champion when" survives:

* a registered-model tag ``champion_event.<UTC time>`` holding JSON
  ``{"action", "version", "previous", "by", "reason", "at"}`` (one tag per event);
* version tags ``champion_since`` / ``champion_until`` on the versions involved.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from churnml.errors import ConfigError, DataError, ModelError
from churnml.tracking import mlflow_store
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


# -- the gate ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GateEvidence:
    """What the gate looks at; every number comes from the same test fold(s)."""

    fold_roc_auc: tuple[dict[str, float | None], ...]  # per fold: model, logistic, rule
    test_roc_auc: float
    test_ece: float
    champion_version: str | None = None
    champion_test_roc_auc: float | None = None
    champion_note: str | None = None  # why the champion could not be scored, if it could not


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: tuple[str, ...]
    checks: dict[str, bool] = field(default_factory=dict)

    def text(self) -> str:
        verdict = "promote to champion" if self.promote else "keep as challenger"
        return f"gate: {verdict}: " + "; ".join(self.reasons)


def promotion_gate(evidence: GateEvidence, settings: TrainingSettings) -> GateDecision:
    """The one rule by which a trained model becomes champion without a person.

    It passes when (1) the model's ROC-AUC beats both baselines on every fold, (2) its
    test ROC-AUC is at most ``gate_auc_tolerance`` below the current champion's on the
    same test fold (or there is no champion), and (3) its test ECE is at most ``ece_bound``.
    """
    reasons: list[str] = []
    checks: dict[str, bool] = {}

    losses = []
    for number, fold in enumerate(evidence.fold_roc_auc, start=1):
        model = fold["model"]
        for baseline in ("logistic", "rule"):
            other = fold.get(baseline)
            if other is None:
                continue
            if model is None or not model > other:
                losses.append(f"fold {number}: ROC-AUC {_f(model)} vs {baseline} {_f(other)}")
    checks["beats_baselines"] = not losses
    if losses:
        reasons.append("does not beat the baselines (" + ", ".join(losses) + ")")
    else:
        reasons.append(f"beats the baselines on all {len(evidence.fold_roc_auc)} folds")

    if evidence.champion_version is None:
        checks["not_worse_than_champion"] = True
        reasons.append("there is no champion yet")
    elif evidence.champion_test_roc_auc is None:
        checks["not_worse_than_champion"] = False
        reasons.append(
            f"champion v{evidence.champion_version} could not be scored on this test fold "
            f"({evidence.champion_note}); a person can still `churnml promote` it"
        )
    else:
        floor = evidence.champion_test_roc_auc - settings.gate_auc_tolerance
        ok = evidence.test_roc_auc >= floor
        checks["not_worse_than_champion"] = ok
        reasons.append(
            f"test ROC-AUC {_f(evidence.test_roc_auc)} {'>=' if ok else '<'} champion "
            f"v{evidence.champion_version}'s {_f(evidence.champion_test_roc_auc)} minus "
            f"tolerance {settings.gate_auc_tolerance}"
        )

    ok = evidence.test_ece <= settings.ece_bound
    checks["calibrated"] = ok
    reasons.append(
        f"test ECE {evidence.test_ece:.4f} {'<=' if ok else '>'} bound {settings.ece_bound}"
    )
    return GateDecision(promote=all(checks.values()), reasons=tuple(reasons), checks=checks)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


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


def decision_record(decision: GateDecision, evidence: GateEvidence) -> dict[str, Any]:
    return {"decision": asdict(decision), "evidence": asdict(evidence)}
