"""The fit stage of one fold: the logistic baseline, the booster with early stopping, the
blend of the two and the calibrator, each fitted on the fold's train and validation rows.

The test rows are not looked at here; ``training.evaluate`` scores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from model.artifact import Calibrator
from model.linear import Blend
from training import learners
from training.settings import TrainingSettings


@dataclass(frozen=True)
class BoosterFit:
    """How a fold's booster is fitted when not on ``parts["train"]`` in this process: the
    Dask engine fits ``lightgbm.dask`` on every training row, on the cluster.

    ``fit(valid_x, valid_y, params)`` returns the booster (early stopping on the validation
    rows, as ``learners.fit_booster``); ``fit_rounds(params, rounds)`` one of exactly
    ``rounds`` rounds (the refit, ``learners.fit_booster_rounds``); ``rows`` and
    ``positives`` are what it trains on (the LightGBM parameters scale with them);
    ``params`` changes ``learners.lightgbm_params`` for this fit (a value of None removes
    the parameter)."""

    fit: Callable[[pd.DataFrame, np.ndarray, dict[str, Any]], lgb.Booster]
    rows: int
    positives: int
    params: dict[str, Any] = field(default_factory=dict)
    fit_rounds: Callable[[dict[str, Any], int], lgb.Booster] | None = None


@dataclass(frozen=True)
class FitInput:
    """One fold's rows as the fit takes them.

    ``parts`` and ``labels``: "train" (already the training sample,
    ``learners.training_sample``; with ``booster_fit`` a sample of the training rows that
    serves the logistic baseline only), "validation" and "test" (read by the evaluation,
    not here). ``train_weight``: the weight of each train row (None: all 1).
    ``validation_groups``: the customer of each validation row (the calibrator's halves
    keep a customer's snapshots on one side). ``booster_fit``: where the booster is
    fitted instead. ``tune``: search the booster's parameters within
    ``settings.tuning_budget_seconds`` (the fold whose fit becomes the model)."""

    parts: dict[str, pd.DataFrame]
    labels: dict[str, np.ndarray]
    categorical: list[str]
    validation_groups: np.ndarray
    train_weight: np.ndarray | None = None
    booster_fit: BoosterFit | None = None
    tune: bool = False


@dataclass(frozen=True)
class FittedFold:
    """A fold's fitted pieces: the booster and its parameters (``trials``: the tuning
    search, empty without one), the blend (None: the trees alone) and how its weight was
    chosen, the calibrator and the validation log loss of each calibration method, and
    the logistic baseline with the categorical columns it was fitted with."""

    booster: lgb.Booster
    params: dict[str, Any]
    trials: list[dict[str, Any]]
    blend: Blend | None
    blend_record: dict[str, Any]
    calibrator: Calibrator
    calibration_scores: dict[str, float]
    logistic: Pipeline
    categorical: list[str]

    def probability(self, x: pd.DataFrame) -> np.ndarray:
        """The calibrated churn probability of each row of ``x``."""
        raw = self.booster.predict(
            x, num_iteration=self.booster.best_iteration or None, raw_score=True
        )
        if self.blend is not None:
            raw = self.blend.raw_score(raw, x)
        return self.calibrator.predict(_sigmoid(raw))

    def logistic_probability(self, x: pd.DataFrame) -> np.ndarray:
        """The logistic baseline's churn probability of each row of ``x``."""
        return learners.predict_logistic(self.logistic, x, self.categorical)


def fit_fold(data: FitInput, settings: TrainingSettings) -> FittedFold:
    """Fit the baseline, the booster, the blend and the calibrator of one fold."""
    logistic, linear = learners.fit_logistic_pair(
        data.parts["train"],
        data.labels["train"],
        data.categorical,
        settings.seed,
        data.train_weight,
    )
    booster, params, trials = _fit_booster(data, settings)
    validation_x, validation_y = data.parts["validation"], data.labels["validation"]
    raw = booster.predict(
        validation_x, num_iteration=booster.best_iteration or None, raw_score=True
    )
    blend, blend_record, raw = _stack(linear, data, raw, settings)
    calibrator, calibration_scores = learners.choose_calibrator(
        _sigmoid(raw), validation_y, data.validation_groups, settings.seed
    )
    return FittedFold(
        booster=booster,
        params=params,
        trials=trials,
        blend=blend,
        blend_record=blend_record,
        calibrator=calibrator,
        calibration_scores=calibration_scores,
        logistic=logistic,
        categorical=data.categorical,
    )


def _booster_params(data: FitInput, settings: TrainingSettings) -> dict[str, Any]:
    """``learners.lightgbm_params`` for the rows the booster trains on, changed as
    ``data.booster_fit`` asks."""
    fit = data.booster_fit
    if fit is None:
        rows, positives = len(data.parts["train"]), int(data.labels["train"].sum())
    else:
        rows, positives = fit.rows, fit.positives
    params = learners.lightgbm_params(rows, positives, settings.seed, settings.threads)
    if fit is not None:
        params = {k: v for k, v in {**params, **fit.params}.items() if v is not None}
    return params


def _fit_booster(
    data: FitInput, settings: TrainingSettings
) -> tuple[lgb.Booster, dict[str, Any], list[dict[str, Any]]]:
    """The booster with early stopping on validation, its parameters and the tuning trials."""
    params = _booster_params(data, settings)
    train_x, train_y = data.parts["train"], data.labels["train"]
    valid_x, valid_y = data.parts["validation"], data.labels["validation"]
    fit = data.booster_fit.fit if data.booster_fit is not None else None
    if data.tune and settings.tuning_budget_seconds > 0:
        return learners.tune_booster(
            train_x,
            train_y,
            valid_x,
            valid_y,
            params,
            settings.tuning_budget_seconds,
            settings.seed,
            data.train_weight,
            fit=fit,
            max_trials=settings.tuning_max_trials or None,
        )
    if fit is not None:
        return fit(valid_x, valid_y, params), params, []
    booster = learners.fit_booster(train_x, train_y, valid_x, valid_y, params, data.train_weight)
    return booster, params, []


def _stack(
    logistic: Pipeline, data: FitInput, tree_raw: np.ndarray, settings: TrainingSettings
) -> tuple[Blend | None, dict[str, Any], np.ndarray]:
    """The blend of the trees with the logistic regression (``settings.blend == "stack"``),
    its record and the validation rows' blended raw scores.

    The weight is chosen on validation, where the calibrator is fitted next."""
    record: dict[str, Any] = {"method": settings.blend, "linear_weight": 0.0}
    if settings.blend != "stack":
        return None, record, tree_raw
    train_x, valid_x = data.parts["train"], data.parts["validation"]
    categories = {c: list(train_x[c].cat.categories.astype(str)) for c in data.categorical}
    linear = learners.linear_term(logistic, train_x, categories)
    linear_raw = linear.raw_score(valid_x)
    weight, losses = learners.choose_blend_weight(tree_raw, linear_raw, data.labels["validation"])
    record.update(linear_weight=weight, validation_log_loss=losses)
    if weight <= 0:
        return None, record, tree_raw
    return Blend(weight, linear), record, (1 - weight) * tree_raw + weight * linear_raw


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-raw))
