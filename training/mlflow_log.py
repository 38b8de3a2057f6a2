"""The logging stage: what one training run writes to its MLflow run — the parameters (the
data, the settings, LightGBM's, the environment), the metrics of every fold, the JSON
artifacts (features, fold metrics, the gate's decision, importance), the tuning trials,
the refit, the plots and the run's tags.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

import churnml
from churnml.contract import CONTRACT_VERSION
from model.artifact import ChurnModel
from model.predictor import Predictor
from training import plots
from training.evaluate import Backtest, Candidate, FoldOutcome
from training.promotion import GateDecision, GateEvidence, decision_record
from training.settings import TrainingSettings

PLOT_SAMPLE_ROWS = 2000
PIP_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm", "mlflow")


def environment() -> dict[str, str]:
    """The versions the run was trained with: Python, the platform, churnml, the contract
    and ``PIP_PACKAGES``."""
    values = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "churnml": churnml.__version__,
        "contract_version": CONTRACT_VERSION,
    }
    for package in PIP_PACKAGES:
        try:
            values[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            values[package] = "(not installed)"
    return values


def pip_requirements(env: dict[str, str]) -> list[str]:
    """The registered model's pip requirements: the installed ``PIP_PACKAGES`` and churnml."""
    return [f"{p}=={env[p]}" for p in PIP_PACKAGES if env[p] != "(not installed)"] + [
        f"churnml=={churnml.__version__}"
    ]


def log_run(
    candidate: Candidate,
    decision: GateDecision,
    evidence: GateEvidence,
    settings: TrainingSettings,
    env: dict[str, str],
    plot_folder: Path,
) -> None:
    """Everything of the active run but the model and its tags (``tag_run``)."""
    log_params(candidate, settings, env)
    log_metrics(candidate.backtest)
    log_tuning(candidate.fitted.trials)
    log_refit(candidate)
    importance = log_artifacts(candidate, decision, evidence)
    log_plots(plot_folder, candidate, importance, settings)
    if candidate.call_effect is not None:
        log_call_effect(candidate.call_effect)
    if candidate.horizons is not None:
        log_horizons(candidate.horizons, plot_folder)


def log_horizons(backtest: Any, plot_folder: Path) -> None:
    """The time-to-churn model beside the churn metrics (``training.horizons``): per
    horizon fold 1's test ROC-AUC, PR-AUC, Brier and ECE and its baselines'
    (``horizon_<H>d.test_*``), the other folds' ROC-AUC, the curve's scikit-survival
    metrics (``horizons.test_uno_c``, ``integrated_brier``, ``td_auc_*``), the gate as tags,
    every fold as ``horizons_evaluation.json`` and the curve plot (``plots/horizons.png``)."""
    mlflow.log_metrics(backtest.log_metrics())
    mlflow.set_tags(
        {
            "horizons": ",".join(map(str, backtest.model.horizons)),
            "horizons.gate": "pass" if backtest.gate.passed else "fail",
            "horizons.reason": " | ".join(backtest.gate.reasons)[:5000],
        }
    )
    mlflow.log_dict(
        {
            "folds": [fold.describe() for fold in backtest.folds],
            "metrics": [{str(h): entry for h, entry in fold.items()} for fold in backtest.metrics],
            "survival": backtest.survival,
            "curve_check": {str(h): v for h, v in backtest.curve_check.items()},
            "gate": {"passed": backtest.gate.passed, "reasons": list(backtest.gate.reasons)},
            "seconds": backtest.seconds,
            "model": backtest.model.metadata,
        },
        "horizons_evaluation.json",
    )
    if plots.matplotlib_missing() is None and backtest.curve_check:
        path = plots.horizon_curve(plot_folder, backtest.curve_check, backtest.metrics[0])
        mlflow.log_artifact(str(path), artifact_path="plots")


def log_call_effect(head: Any) -> None:
    """The call-effect stage beside the churn metrics: its metrics per validation fold
    and their means (``effect_<who>_<metric>``, who "model" or "risk"), the head's gate
    as tags, and the whole evaluation as ``call_effect_evaluation.json``."""
    mlflow.log_metrics(head.evaluation.flat_metrics())
    gate = head.gate
    mlflow.set_tags(
        {
            "call_effect.rank_by": gate["rank_by"],
            "call_effect.promoted": str(gate["promoted"]).lower(),
            "call_effect.reason": gate["reason"][:5000],
            "call_effect.head": "fitted" if head.model is not None else "none",
        }
    )
    mlflow.log_dict(
        {"gate": gate, "folds": head.evaluation.folds, "capacity": head.evaluation.capacity},
        "call_effect_evaluation.json",
    )


def log_params(candidate: Candidate, settings: TrainingSettings, env: dict[str, str]) -> None:
    """The data's parameters, the settings, LightGBM's, the environment and the model's."""
    main = candidate.backtest.model
    mlflow.log_params({k: str(v)[:6000] for k, v in candidate.params.items()})
    mlflow.log_params({f"setting.{k}": v for k, v in settings.to_dict().items() if k != "home"})
    mlflow.log_params({f"lgbm.{k}": v for k, v in candidate.fitted.params.items()})
    mlflow.log_params({f"env.{k}": v for k, v in env.items()})
    mlflow.log_params(
        {
            "contract_version": CONTRACT_VERSION,
            "feature_count": len(candidate.model.feature_names),
            "calibration": main.calibration,
            **{f"blend.{k}": v for k, v in _blend_params(main.blend).items()},
            "seed": settings.seed,
            "tracking_uri": settings.resolved_tracking_uri(),
        }
    )


def log_metrics(backtest: Backtest) -> None:
    """Every fold's metrics by name, and each fold's ROC-AUC as a step of ``backtest_*``."""
    mlflow.log_metrics(flat_metrics(backtest))
    for step, outcome in enumerate(backtest.folds):
        for who in outcome.metrics:
            name = "backtest_roc_auc" if who == "model" else f"backtest_{who}_roc_auc"
            mlflow.log_metric(name, outcome.metrics[who]["roc_auc"], step=step)


def log_tuning(trials: list[dict[str, Any]]) -> None:
    """Every trial of the parameter search: the trials table (``tuning/trials.json``, one
    row per trial), and ``tuning_validation_log_loss`` / ``tuning_best_rounds`` with the
    trial's number as step (the table path's trials carry their cross-validated log loss
    there). Nothing without a search."""
    if not trials:
        return
    mlflow.log_table(pd.DataFrame(trials), artifact_file="tuning/trials.json")
    for trial in trials:
        # A snapshot search names its trials "number" and scores them on the validation
        # fold; the table path's cross-validation names them "trial" (``table_cv``).
        step = int(trial.get("number", trial.get("trial", 0)))
        loss = trial.get("validation_log_loss", trial.get("cv_log_loss"))
        mlflow.log_metric("tuning_validation_log_loss", loss, step=step)
        mlflow.log_metric("tuning_best_rounds", trial["best_rounds"], step=step)
    mlflow.log_metric("tuning_trials", len(trials))


def log_refit(candidate: Candidate) -> None:
    """The refit's out-of-fold calibration metrics and the tags that say which model is
    registered (the evaluated metrics stay ``test_*``)."""
    refitted = candidate.refit
    if refitted is None:
        mlflow.set_tags({"registered_model": "evaluated (fold 1, no refit)"})
        return
    mlflow.log_metrics(
        {
            f"refit_oof_{k}": v
            for k, v in refitted.calibration_metrics.items()
            if v is not None and np.isfinite(v)
        }
    )
    mlflow.log_metric("refit_rounds", refitted.rounds)
    mlflow.log_dict({"blocks": list(refitted.blocks)}, "refit.json")
    mlflow.set_tags(
        {
            "registered_model": f"refit ({refitted.method}) on {refitted.window.text()}",
            "evaluated.train_window": candidate.params.get("evaluated.train_window", ""),
            "refit.train_window": refitted.window.text(),
        }
    )


def flat_metrics(backtest: Backtest) -> dict[str, float]:
    """``test_*`` for the model's fold (``test_segment_*`` per segment), ``foldN_*`` for
    the others, ``best_iteration``; undefined values left out."""
    flat: dict[str, float] = {}
    main = backtest.model
    for who, values in main.metrics.items():
        prefix = "test_" if who == "model" else f"test_{who}_"
        flat.update({prefix + k: v for k, v in values.items()})
    for segment, values in main.segments.items():
        flat.update({_metric_name(f"test_segment_{segment}_{k}"): v for k, v in values.items()})
    for outcome in backtest.others:
        for who, values in outcome.metrics.items():
            prefix = f"{outcome.name}_" if who == "model" else f"{outcome.name}_{who}_"
            flat.update({prefix + k: v for k, v in values.items()})
    flat["best_iteration"] = float(main.best_iteration)
    return {k: v for k, v in flat.items() if v is not None and np.isfinite(v)}


def log_artifacts(
    candidate: Candidate, decision: GateDecision, evidence: GateEvidence
) -> pd.Series:
    """The run's JSON artifacts; returns the features' gain importance, largest first."""
    model = candidate.model
    mlflow.log_dict({"features": model.feature_names}, "features.json")
    mlflow.log_dict({"folds": [_fold_record(o) for o in candidate.backtest.folds]}, "metrics.json")
    mlflow.log_dict(decision_record(decision, evidence), "gate.json")
    importance = pd.Series(
        model.booster.feature_importance(importance_type="gain"), index=model.feature_names
    ).sort_values(ascending=False)
    mlflow.log_dict({k: float(v) for k, v in importance.items()}, "importance_gain.json")
    return importance


def log_plots(
    folder: Path, candidate: Candidate, importance: pd.Series, settings: TrainingSettings
) -> None:
    """ROC, PR, calibration, lift, importance and SHAP plots of the model's test rows (the
    contributions on a seeded sample of ``PLOT_SAMPLE_ROWS``); a tag when matplotlib is
    missing."""
    missing = plots.matplotlib_missing()
    if missing:
        mlflow.set_tag("plots", f"skipped: {missing}")
        return
    test_x, model = candidate.test_x, candidate.model
    rows = np.arange(len(test_x))
    if len(rows) > PLOT_SAMPLE_ROWS:
        rows = np.sort(
            np.random.default_rng(settings.seed).choice(rows, PLOT_SAMPLE_ROWS, replace=False)
        )
    predictor = Predictor(model)
    sample = predictor.prepare(test_x.iloc[rows])
    contributions = predictor.exact_shares(sample)
    written = plots.write_plots(
        folder,
        candidate.test_y,
        candidate.test_scores,
        candidate.test_scores["model"],
        importance,
        contributions,
        sample,
    )
    for path in written:
        mlflow.log_artifact(str(path), artifact_path="plots")


def tag_run(model: ChurnModel, decision: GateDecision, version: str) -> None:
    """The run's tags: the gate's verdict and reasons, the version, the contract, the features."""
    mlflow.set_tags(
        {
            "gate.decision": decision.verdict,
            "gate.reasons": " | ".join(decision.reasons)[:5000],
            "model_version": version,
            "contract_version": CONTRACT_VERSION,
            "features": ",".join(model.feature_names)[:5000],
        }
    )


def _fold_record(outcome: FoldOutcome) -> dict[str, Any]:
    """One fold of ``metrics.json``."""
    return {
        "name": outcome.name,
        "describe": outcome.describe,
        "metrics": outcome.metrics,
        "segments": outcome.segments,
        "best_iteration": outcome.best_iteration,
        "calibration": outcome.calibration,
        "calibration_log_loss": outcome.calibration_scores,
        "blend": outcome.blend,
    }


def _blend_params(record: dict[str, Any]) -> dict[str, Any]:
    """The blend of the registered model as flat MLflow params (candidates' losses: JSON)."""
    return {
        k: json.dumps({str(w): loss for w, loss in v.items()}) if isinstance(v, dict) else v
        for k, v in record.items()
    }


def _metric_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in text)
