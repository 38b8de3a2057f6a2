"""The promotion gate: the one rule by which a trained model becomes champion without a
person, the evidence it weighs (every fold's ROC-AUC against the baselines, the test
calibration, the current champion scored on the same test rows) and its decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from churnml.errors import DataError, ModelError
from model.artifact import ChurnModel
from model.loading import load_model
from training.evaluate import Backtest
from training.registry import CHAMPION, alias_version
from training.settings import TrainingSettings

ChampionScores = Callable[[ChurnModel], np.ndarray]
"""``scores(champion)``: the champion's probabilities of the candidate's test rows, in
their order; raises ModelError or DataError when the champion cannot score them, and
``FittedOnTestRows`` when it was fitted on them."""


class FittedOnTestRows(ModelError):
    """The champion was fitted on the candidate's test rows (a refit model: every labelled
    day), so its score there would flatter it: the gate compares the candidate with the
    champion's own evaluated test ROC-AUC (``evaluated_roc_auc``, None when unknown)."""

    def __init__(self, message: str, *, evaluated_roc_auc: float | None) -> None:
        super().__init__(message)
        self.evaluated_roc_auc = evaluated_roc_auc


@dataclass(frozen=True)
class GateEvidence:
    """What the gate looks at; every number comes from the same test fold(s)."""

    # per fold: model, logistic, rule and (table path) lightgbm, LGBMClassifier() by default
    fold_roc_auc: tuple[dict[str, float | None], ...]
    test_roc_auc: float
    test_ece: float
    champion_version: str | None = None
    champion_test_roc_auc: float | None = None
    champion_note: str | None = None  # why the champion could not be scored, if it could not


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict, a reason per check and each check's result."""

    promote: bool
    reasons: tuple[str, ...]
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """The run's and the version's gate tag: "promote" or "keep"."""
        return "promote" if self.promote else "keep"

    def text(self) -> str:
        verdict = "promote to champion" if self.promote else "keep as challenger"
        return f"gate: {verdict}: " + "; ".join(self.reasons)


def promotion_gate(evidence: GateEvidence, settings: TrainingSettings) -> GateDecision:
    """The one rule by which a trained model becomes champion without a person.

    It passes when (1) the model's ROC-AUC beats both baselines on every fold, and on the
    table path ``lightgbm.LGBMClassifier()`` with its default parameters too, (2) its
    test ROC-AUC is at most ``gate_auc_tolerance`` below the current champion's on the
    same test fold (or there is no champion), and (3) its test ECE is at most ``ece_bound``.
    """
    reasons: list[str] = []
    checks: dict[str, bool] = {}

    losses, behind_lightgbm = [], []
    for number, fold in enumerate(evidence.fold_roc_auc, start=1):
        model = fold["model"]
        default = fold.get("lightgbm")
        if default is not None and (model is None or not model > default):
            behind_lightgbm.append(f"fold {number}: ROC-AUC {_f(model)} vs {_f(default)}")
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
    if any(fold.get("lightgbm") is not None for fold in evidence.fold_roc_auc):
        checks["beats_default_lightgbm"] = not behind_lightgbm
        if behind_lightgbm:
            reasons.append(
                "does not beat lightgbm.LGBMClassifier() with default parameters on the same "
                "training rows (" + ", ".join(behind_lightgbm) + "): a plain LightGBM ranks "
                "these customers at least as well"
            )
        else:
            reasons.append("beats default LightGBM (LGBMClassifier()) on the same rows")

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
            + (f" ({evidence.champion_note})" if evidence.champion_note else "")
        )

    ok = evidence.test_ece <= settings.ece_bound
    checks["calibrated"] = ok
    reasons.append(
        f"test ECE {evidence.test_ece:.4f} {'<=' if ok else '>'} bound {settings.ece_bound}"
    )
    return GateDecision(promote=all(checks.values()), reasons=tuple(reasons), checks=checks)


def with_horizon_gate(decision: GateDecision, gate: Any) -> GateDecision:
    """``decision`` with the horizons' check (``training.horizons.horizon_gate``: every
    horizon beats the baselines on every fold) added: a model is promoted only when the
    churn model's checks and every horizon's pass; the reason names a failing horizon."""
    checks = {**decision.checks, "every_horizon_beats_baselines": bool(gate.passed)}
    return GateDecision(
        promote=all(checks.values()),
        reasons=(*decision.reasons, *gate.reasons),
        checks=checks,
    )


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def decision_record(decision: GateDecision, evidence: GateEvidence) -> dict[str, Any]:
    """The decision and its evidence as the run's ``gate.json``."""
    return {"decision": asdict(decision), "evidence": asdict(evidence)}


def gather_evidence(
    client: MlflowClient,
    settings: TrainingSettings,
    backtest: Backtest,
    champion_scores: ChampionScores,
    test_y: np.ndarray,
) -> GateEvidence:
    """The gate's evidence: the backtest's ROC-AUCs and the current champion (if any)
    scored on the test rows of the candidate's fold."""
    champion_version = alias_version(client, settings.model_name, CHAMPION)
    champion_auc, champion_note = None, None
    if champion_version is not None:
        champion_auc, champion_note = _champion_roc_auc(settings, champion_scores, test_y)
    model = backtest.model.metrics["model"]
    return GateEvidence(
        fold_roc_auc=tuple(
            {
                who: o.metrics[who]["roc_auc"]
                for who in ("model", "logistic", "rule", "lightgbm")
                if who in o.metrics
            }
            for o in backtest.folds
        ),
        test_roc_auc=model["roc_auc"],
        test_ece=model["ece"],
        champion_version=champion_version,
        champion_test_roc_auc=champion_auc,
        champion_note=champion_note,
    )


def _champion_roc_auc(
    settings: TrainingSettings, champion_scores: ChampionScores, test_y: np.ndarray
) -> tuple[float | None, str | None]:
    """The champion's test ROC-AUC, or None and the first line of why it has none."""
    try:
        return float(roc_auc_score(test_y, champion_scores(load_champion(settings)))), None
    except FittedOnTestRows as seen:
        note = f"{seen}; compared with its evaluated test ROC-AUC"
        return seen.evaluated_roc_auc, note[:300]
    except (
        ModelError,
        DataError,
        mlflow.exceptions.MlflowException,
        AttributeError,
        KeyError,
    ) as error:
        return None, str(error).splitlines()[0][:300]


def load_champion(settings: TrainingSettings) -> ChurnModel:
    """The registered champion (within ``registry.tracking``): the one call to the loader."""
    uri = f"models:/{settings.model_name}@{CHAMPION}"
    return load_model(uri, settings.resolved_tracking_uri()).model
