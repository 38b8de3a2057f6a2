"""The refit stage: after the honest evaluation, the model that is registered is fitted on
every labelled snapshot, up to ``as_of - horizon``, with what the evaluation chose.

The evaluation (``training.pipeline``) fits fold 1 on the snapshots before its
validation fold, a gap, its test fold and another gap: with the defaults its newest
training day lies about four months before ``as_of``. Its metrics are what the gate and
MLflow report. This stage then fits the registered model the same way on all labelled
days:

* **Parameters and rounds.** The LightGBM parameters fold 1 chose (its tuning, or the
  defaults) and its early-stopped rounds, scaled by the training rows:
  ``rounds x (refit rows / fold-1 rows)`` (``settings.refit_rounds = "same"``: unscaled).
  Boosting on more rows of the same process takes more rounds before it overfits.
* **Blend.** The logistic regression is refit on the same rows; its log-odds weight is
  the one fold 1 chose on its validation fold.
* **Calibration without the fitted rows (cross-fitting).** The labelled days are cut into
  ``settings.refit_blocks`` contiguous blocks. For each block a model (trees and logistic
  term, blended) is fitted on the other blocks' days, leaving out the days within
  ``horizon`` of the block on both sides so that no label window touches it, with the
  rounds scaled to its rows; it scores the held-out block. The calibrator (isotonic or
  Platt, ``learners.choose_calibrator``) is fitted on these out-of-fold scores and
  applied to the model fitted on every day: no row it is fitted on was seen by the model
  that scored it.
* ``settings.refit = "holdout"`` (the alternative): the newest block is held out; the
  model is fitted on the days before it (minus the gap) and calibrated on it.
  ``"off"``: no refit, fold 1's model is registered (the model before this stage).

Every engine goes through it: the rows come from the ``SnapshotSource`` and a booster is
fitted where the source fits it (``BoosterFit.fit_rounds`` on the Dask engine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from churnml.errors import DataError
from model.artifact import EPS
from model.linear import Blend
from training import learners
from training.fit import FittedFold
from training.settings import TrainingSettings
from training.snapshots import Fold

if TYPE_CHECKING:
    from training.folds import FoldData, SnapshotSource

REFIT_FOLD_NUMBER = 100  # the refit "folds" are numbered apart from the backtest folds


@dataclass(frozen=True)
class Window:
    """A model's training data: its first and last snapshot day and its rows (all the
    rows of those days; ``fitted_rows``: the ones the booster was fitted on, after
    ``max_train_rows`` sampling)."""

    first: pd.Timestamp
    last: pd.Timestamp
    days: int
    rows: int
    fitted_rows: int

    def text(self) -> str:
        span = f"{self.first:%Y-%m-%d}..{self.last:%Y-%m-%d}"
        return f"{span} ({self.days} snapshots, {self.rows} rows)"

    def record(self) -> dict[str, Any]:
        return {
            "first": f"{self.first:%Y-%m-%d}",
            "last": f"{self.last:%Y-%m-%d}",
            "days": self.days,
            "rows": self.rows,
            "fitted_rows": self.fitted_rows,
        }


@dataclass(frozen=True)
class Refit:
    """The refit model's fit and how it was made: the method, its training ``fold`` (the
    refit days as ``Fold.train``), its window, the rounds and their scale, and each
    calibration block (days held out, days fitted on, rows scored, rounds)."""

    method: str
    fitted: FittedFold
    fold: Fold
    window: Window
    rounds: int
    rounds_scale: float
    blocks: tuple[dict[str, Any], ...]
    calibration_rows: int
    calibration_metrics: dict[str, float]

    def params(self) -> dict[str, Any]:
        """The run's parameters about the refit."""
        return {
            "refit": self.method,
            "refit.train_window": self.window.text(),
            "refit.train_first_day": f"{self.window.first:%Y-%m-%d}",
            "refit.train_last_day": f"{self.window.last:%Y-%m-%d}",
            "refit.train_rows": self.window.rows,
            "refit.fitted_rows": self.window.fitted_rows,
            "refit.rounds": self.rounds,
            "refit.rounds_scale": round(self.rounds_scale, 4),
            "refit.calibration": self.fitted.calibrator.method,
            "refit.calibration_rows": self.calibration_rows,
            "refit.calibration_blocks": len(self.blocks),
            "refit.linear_weight": self.fitted.blend_record.get("linear_weight", 0.0),
        }


def window_of(fold: Fold, part: FoldData) -> Window:
    """The training window of ``fold`` from its rows."""
    return Window(
        first=min(fold.train),
        last=max(fold.train),
        days=len(fold.train),
        rows=part.available_rows,
        fitted_rows=_booster_rows(part),
    )


def refit(
    source: SnapshotSource,
    days: Sequence[pd.Timestamp],
    evaluated: FittedFold,
    evaluated_window: Window,
    settings: TrainingSettings,
    say: Callable[[str], None],
) -> Refit:
    """The registered model's fit on ``days`` (every labelled snapshot day) with the
    parameters, rounds and blend weight of ``evaluated`` (fold 1's fit, on
    ``evaluated_window``), calibrated as ``settings.refit`` says."""
    days = sorted(pd.Timestamp(d) for d in days)
    booster = evaluated.booster
    rounds = int(booster.best_iteration or booster.current_iteration())
    weight = float(evaluated.blend_record.get("linear_weight", 0.0)) if evaluated.blend else 0.0
    recipe = _Recipe(
        params=dict(evaluated.params),
        rounds=rounds,
        rows=max(evaluated_window.rows, 1),
        scaled=settings.refit_rounds == "scaled",
        linear_weight=weight,
        seed=settings.seed,
        logistic=evaluated.logistic,
    )
    blocks = _blocks(days, settings)
    scored_raw, scored_y, groups, records = [], [], [], []
    for number, (held_out, fitted_on) in enumerate(blocks, start=1):
        say(
            f"refit: calibration block {number} of {len(blocks)}, "
            f"scoring {_span(held_out)} with a fit on {len(fitted_on)} other snapshots"
        )
        # The holdout's one block is the registered model's fit: it produces the model.
        fold = Fold(
            REFIT_FOLD_NUMBER + number,
            tuple(fitted_on),
            tuple(held_out),
            (),
            produces_model=settings.refit == "holdout",
        )
        part = source.fold(fold)
        _check(fold, part, settings)
        model = _fit(part, source.categorical, recipe)
        raw = model.raw(part.parts["validation"])
        scored_raw.append(raw)
        scored_y.append(part.labels["validation"])
        groups.append(part.validation_groups)
        records.append(
            {
                "held_out": _span(held_out),
                "fitted_on": _span(fitted_on),
                "fitted_rows": part.available_rows,
                "scored_rows": len(raw),
                "rounds": model.rounds,
            }
        )
        if settings.refit == "holdout":
            final_part, final_model, final_fold = part, model, fold
        del part
    raw, y = np.concatenate(scored_raw), np.concatenate(scored_y)
    calibrator, calibration_scores = learners.choose_calibrator(
        _sigmoid(raw), y, np.concatenate(groups), settings.seed
    )
    if settings.refit != "holdout":
        say(f"refit: the model on every labelled snapshot, {_span(days)}")
        final_fold = Fold(REFIT_FOLD_NUMBER, tuple(days), (), (), produces_model=True)
        final_part = source.fold(final_fold)
        final_model = _fit(final_part, source.categorical, recipe)
    window = Window(
        first=min(final_fold.train),
        last=max(final_fold.train),
        days=len(final_fold.train),
        rows=final_part.available_rows,
        fitted_rows=_booster_rows(final_part),
    )
    calibrated = calibrator.predict(_sigmoid(raw))
    metrics = {
        "roc_auc": float(roc_auc_score(y, calibrated)) if 0 < y.sum() < len(y) else float("nan"),
        "log_loss": float(log_loss(y, np.clip(calibrated, EPS, 1 - EPS), labels=[0, 1])),
    }
    fitted = FittedFold(
        booster=final_model.booster,
        params=recipe.params,
        trials=evaluated.trials,
        blend=final_model.blend,
        blend_record={
            **{k: v for k, v in evaluated.blend_record.items() if k != "validation_log_loss"},
            "linear_weight": weight if final_model.blend is not None else 0.0,
            "chosen_by": "the evaluation (fold 1's validation fold)",
        },
        calibrator=calibrator,
        calibration_scores=calibration_scores,
        logistic=final_model.logistic,
        categorical=source.categorical,
    )
    return Refit(
        method=settings.refit,
        fitted=fitted,
        fold=final_fold,
        window=window,
        rounds=final_model.rounds,
        rounds_scale=final_model.rounds / max(rounds, 1),
        blocks=tuple(records),
        calibration_rows=len(y),
        calibration_metrics=metrics,
    )


@dataclass(frozen=True)
class _Recipe:
    """What the evaluation chose: LightGBM's parameters, its rounds on ``rows`` training
    rows, whether rounds scale with the rows, and the linear weight of the blend."""

    params: dict[str, Any]
    rounds: int
    rows: int
    scaled: bool
    linear_weight: float
    seed: int
    logistic: Any = None  # fold 1's fitted logistic pipeline: the solver's start

    def rounds_for(self, rows: int) -> int:
        if not self.scaled:
            return self.rounds
        return max(1, round(self.rounds * rows / self.rows))


@dataclass(frozen=True)
class _Model:
    booster: lgb.Booster
    blend: Blend | None
    logistic: Any
    rounds: int

    def raw(self, x: pd.DataFrame) -> np.ndarray:
        raw = self.booster.predict(x, raw_score=True)
        return raw if self.blend is None else self.blend.raw_score(raw, x)


def _fit(part: FoldData, categorical: list[str], recipe: _Recipe) -> _Model:
    """Trees with the recipe's rounds and, when the evaluation blended, the logistic term."""
    train_x, train_y = part.parts["train"], part.labels["train"]
    rounds = recipe.rounds_for(part.available_rows)
    params = _params_for(part, recipe)
    if part.booster_fit is not None:
        if part.booster_fit.fit_rounds is None:
            raise ValueError("this engine's BoosterFit cannot fit a fixed number of rounds")
        booster = part.booster_fit.fit_rounds(params, rounds)
    else:
        booster = learners.fit_booster_rounds(train_x, train_y, params, rounds, part.train_weight)
    logistic = learners.fit_logistic_baseline(
        train_x, train_y, categorical, recipe.seed, part.train_weight, start=recipe.logistic
    )
    blend = None
    if recipe.linear_weight > 0:
        categories = {c: list(train_x[c].cat.categories.astype(str)) for c in categorical}
        blend = Blend(recipe.linear_weight, learners.linear_term(logistic, train_x, categories))
    return _Model(booster, blend, logistic, rounds)


def _params_for(part: FoldData, recipe: _Recipe) -> dict[str, Any]:
    """The evaluation's parameters, changed as the engine's ``BoosterFit`` asks."""
    params = dict(recipe.params)
    if part.booster_fit is not None:
        params = {k: v for k, v in {**params, **part.booster_fit.params}.items() if v is not None}
    return params


def _blocks(
    days: list[pd.Timestamp], settings: TrainingSettings
) -> list[tuple[list[pd.Timestamp], list[pd.Timestamp]]]:
    """``settings.refit_blocks`` contiguous blocks of ``days``, each with the days a model
    that scores it may be fitted on: the other days, except those within the horizon of
    the block (``d + H < first`` or ``d - H > last``), so that no label window of a fitted
    row reaches into the block's. ``holdout``: the newest block alone, with the days
    before it."""
    count = min(settings.refit_blocks, len(days))
    horizon = pd.Timedelta(days=settings.horizon_days)
    blocks = []
    chunks = np.array_split(np.arange(len(days)), count)
    if settings.refit == "holdout":
        chunks = chunks[-1:]  # the newest block alone
    for chunk in chunks:
        held_out = [days[i] for i in chunk]
        first, last = held_out[0], held_out[-1]
        fitted_on = [d for d in days if d + horizon < first or d - horizon > last]
        if settings.refit == "holdout":
            fitted_on = [d for d in fitted_on if d < first]
        if not fitted_on:
            raise DataError(
                f"refit: the {len(days)} labelled snapshots cannot be cut into "
                f"{count} calibration blocks with a {settings.horizon_days}-day gap around "
                "each; use fewer --refit-blocks, a later --as-of or --refit off"
            )
        blocks.append((held_out, fitted_on))
    return blocks


def _check(fold: Fold, part: FoldData, settings: TrainingSettings) -> None:
    """DataError when a calibration block's fit or its scored rows lack a class."""
    for name, dates, labels in (
        ("fitted", fold.train, part.labels["train"]),
        ("held-out", fold.validation, part.labels["validation"]),
    ):
        if len(labels) == 0 or labels.min() == labels.max():
            raise DataError(
                f"refit: the {name} snapshots {_span(dates)} of a calibration block have "
                f"{'no rows' if len(labels) == 0 else 'one class only'} within "
                f"{settings.horizon_days} days; use fewer --refit-blocks or --refit off"
            )


def _booster_rows(part: FoldData) -> int:
    return part.booster_fit.rows if part.booster_fit is not None else len(part.parts["train"])


def _span(days: Sequence[pd.Timestamp]) -> str:
    return f"{min(days):%Y-%m-%d}..{max(days):%Y-%m-%d} ({len(days)})"


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-raw))
