"""The evaluate stage: a fold's test rows scored by the model and by the two baselines it
must beat (the logistic regression and the contact-count rule), and their metrics.

``Backtest`` holds every fold's outcome and names the fold whose fit is the model;
``Candidate`` is the model with what the gate, the MLflow run and the registry need of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from model.artifact import ChurnModel
from training.fit import FittedFold
from training.metrics import evaluate, evaluate_by_segment


@dataclass(frozen=True)
class FoldOutcome:
    """One fold's fitted pieces and its test metrics for the model and the baselines."""

    name: str
    metrics: dict[str, dict[str, float]]  # "model" / "logistic" / "rule" -> metric -> value
    segments: dict[str, dict[str, float]]
    best_iteration: int
    calibration: str
    calibration_scores: dict[str, float]
    describe: str = ""
    # How the logistic regression joins the trees: the method, the linear weight and,
    # when stacked, the validation log loss of each candidate weight.
    blend: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldOutRows:
    """What the metrics need of a fold's test rows besides their features: the labels, K
    of precision and recall at K (``capacity``), the rule's score (None: no rule
    baseline), each row's segment (None: no per-segment metrics) and snapshot day (None:
    one day)."""

    labels: np.ndarray
    capacity: int
    rule: np.ndarray | None = None
    segments: np.ndarray | None = None
    dates: np.ndarray | None = None


@dataclass(frozen=True)
class Backtest:
    """Every fold's outcome: ``model``, the fold whose fit is the model (its test rows are
    the newest), and ``others``, the older folds, which only test the same recipe."""

    model: FoldOutcome
    others: tuple[FoldOutcome, ...] = ()

    @property
    def folds(self) -> tuple[FoldOutcome, ...]:
        """The model's fold first, then the others in their order."""
        return (self.model, *self.others)


@dataclass(frozen=True)
class Candidate:
    """A trained model and its evidence: every fold's outcome, the fit of the model's fold,
    that fold's test rows (``test_x``, ``test_y``) and their scores by the model and the
    baselines (``test_scores``), and the run's parameters about the data (``params``).

    ``fitted`` and the scores are the evaluated fit's (fold 1): the gate and the metrics
    read them. ``model`` is what is registered: fold 1's fit, or the refit on every
    labelled day (``refit``, None without one)."""

    model: ChurnModel
    backtest: Backtest
    fitted: FittedFold
    test_x: pd.DataFrame
    test_y: np.ndarray
    test_scores: dict[str, np.ndarray]
    params: dict[str, Any]
    refit: Any = None  # training.refit.Refit: how ``model`` was refit after the evaluation
    # training.call_effect_fit.CallEffectHead: the call-effect stage (None without one)
    call_effect: Any = None
    # training.horizons.HorizonBacktest: the time-to-churn model (None without --horizons)
    horizons: Any = None


def score_test_rows(
    fitted: FittedFold, test_x: pd.DataFrame, test: HeldOutRows
) -> dict[str, np.ndarray]:
    """The test rows' scores: "model" and "logistic" (probabilities), "rule" (a count)."""
    scores = {"model": fitted.probability(test_x), "logistic": fitted.logistic_probability(test_x)}
    if test.rule is not None:
        scores["rule"] = test.rule
    return scores


def evaluate_fold(
    name: str, describe: str, fitted: FittedFold, test_x: pd.DataFrame, test: HeldOutRows
) -> tuple[FoldOutcome, dict[str, np.ndarray]]:
    """The fold's outcome and its test scores (``score_test_rows``)."""
    scores = score_test_rows(fitted, test_x, test)
    y, capacity, dates = test.labels, test.capacity, test.dates
    metrics = {
        who: evaluate(y, score, capacity=capacity, dates=dates, probabilities=who != "rule")
        for who, score in scores.items()
    }
    segments = {}
    if test.segments is not None:
        segments = evaluate_by_segment(
            y, scores["model"], test.segments, capacity=capacity, dates=dates
        )
    booster = fitted.booster
    outcome = FoldOutcome(
        name=name,
        metrics=metrics,
        segments=segments,
        best_iteration=int(booster.best_iteration or booster.current_iteration()),
        calibration=fitted.calibrator.method,
        calibration_scores=fitted.calibration_scores,
        describe=describe,
        blend=fitted.blend_record,
    )
    return outcome, scores
