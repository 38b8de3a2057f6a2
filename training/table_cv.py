"""Stratified k-fold cross-validation of the customer-table path: what it chooses, what it
reports and the model it registers.

One labelled row per customer has no time order, so every row serves both sides:
``cv_splits`` cuts the table into ``k`` stratified folds (repeated with other seeds when
the table is small), and each split's model scores only the rows it was not fitted on.
On those out-of-fold (OOF) scores the run chooses

- the booster's parameters and rounds (``choose_table_params``: the mean log loss of the
  k held-out folds per round, as ``lightgbm.cv``; the common best round),
- the blend with the logistic regression (the weight with the lowest OOF log loss),
- the calibrator (isotonic or Platt, each cross-fitted over the same folds),

and reports the OOF metrics of the model and of three baselines fitted on the same
training rows of every split: the logistic regression, the contact-count rule and
``lightgbm.LGBMClassifier()`` with its default parameters.

The registered model is then refit on every row (``refit_on_all_rows``) with the chosen
parameters; its rounds are the CV's best round times ``n_all / n_fold_train`` (k / (k-1)
for k folds: the same number of passes per row). Its calibrator is fitted on the OOF
scores, so it never sees a score of a row its model was fitted on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from model.artifact import EPS, Calibrator, logit
from model.linear import Blend
from training import learners
from training.metrics import evaluate

SMALL_TABLE_ROWS = 2000  # below this many rows the k folds are repeated with other seeds
MAX_REPEATS = 3
# The random draws of the search, merged into the first candidate (churnml's defaults).
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "num_leaves": (7, 15, 31, 63),
    "min_data_in_leaf": (5, 10, 20, 50, 100),
    "learning_rate": (0.02, 0.05, 0.1),
    "feature_fraction": (0.5, 0.7, 0.9, 1.0),
    "lambda_l2": (0.0, 1.0, 10.0),
    "bagging_fraction": (0.8, 1.0),
}
SEARCHED = tuple(SEARCH_SPACE)
TIE_BREAK = 1e-3
RANKING_METRICS = ("roc_auc", "pr_auc", "lift_top_decile", "precision_at_k", "recall_at_k")


@dataclass(frozen=True)
class Split:
    """One split of the cross-validation: its repeat, its number within the repeat, the
    rows its models are fitted on and the rows they score."""

    repeat: int
    number: int
    train: np.ndarray
    held_out: np.ndarray


def fold_repeats(rows: int, requested: int = 0) -> int:
    """How often the k folds are cut (``requested``, or 0: once for tables of
    ``SMALL_TABLE_ROWS`` rows and more, up to ``MAX_REPEATS`` times below)."""
    if requested > 0:
        return requested
    return int(np.clip(math.ceil(SMALL_TABLE_ROWS / max(rows, 1)), 1, MAX_REPEATS))


def cv_splits(y: np.ndarray, folds: int, repeats: int, seed: int) -> list[Split]:
    """``repeats`` x ``folds`` stratified splits; within a repeat every row is held out once."""
    splits = []
    for repeat in range(repeats):
        cutter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        for number, (train, held_out) in enumerate(cutter.split(np.zeros(len(y)), y)):
            splits.append(Split(repeat, number, np.sort(train), np.sort(held_out)))
    return splits


def lightgbm_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """LightGBM's own parameters (``LGBMClassifier()``'s: 31 leaves, 20 rows a leaf, rate
    0.1, every feature and row, no L2) with ``params``' housekeeping (objective, seed,
    threads, categories); the rounds come from the cross-validation."""
    own = {
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "min_sum_hessian_in_leaf": 1e-3,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "bagging_freq": 0,
        "lambda_l2": 0.0,
    }
    return {**params, **own}


@dataclass(frozen=True)
class TrialResult:
    """One candidate's cross-validation: its mean held-out log loss at its best round,
    that round, and the split boosters (to score the OOF rows of the winner)."""

    log_loss: float
    best_rounds: int
    boosters: tuple[lgb.Booster, ...]


class CrossValidation:
    """``evaluate(params) -> (log_loss, best_rounds)`` over the splits, keeping each
    candidate's boosters so that the winner's OOF scores need no second fit."""

    def __init__(
        self,
        x: pd.DataFrame,
        y: np.ndarray,
        splits: list[Split],
        weight: np.ndarray | None = None,
    ) -> None:
        self.x, self.y, self.splits, self.weight = x, y, splits, weight
        self.results: dict[int, TrialResult] = {}

    def evaluate(self, params: dict[str, Any]) -> tuple[float, int]:
        dataset = lgb.Dataset(self.x, label=self.y, weight=self.weight, free_raw_data=False)
        cv = lgb.cv(
            {**params, "metric": "binary_logloss"},
            dataset,
            num_boost_round=learners.MAX_BOOST_ROUNDS,
            folds=[(s.train, s.held_out) for s in self.splits],
            callbacks=[lgb.early_stopping(learners.EARLY_STOPPING_ROUNDS, verbose=False)],
            return_cvbooster=True,
            seed=int(params.get("seed", 0)),
        )
        losses = cv["valid binary_logloss-mean"]
        best = int(np.argmin(losses)) + 1
        booster = cv["cvbooster"]
        result = TrialResult(float(losses[best - 1]), best, tuple(booster.boosters))
        self.results[id(params)] = result
        return result.log_loss, best

    def oof_raw(self, result: TrialResult) -> np.ndarray:
        """Each split's raw scores of its held-out rows, rows of all repeats stacked
        (``stacked_rows`` gives their table positions)."""
        return np.concatenate(
            [
                booster.predict(
                    self.x.iloc[s.held_out], num_iteration=result.best_rounds, raw_score=True
                )
                for booster, s in zip(result.boosters, self.splits, strict=True)
            ]
        )


def stacked_rows(splits: list[Split]) -> np.ndarray:
    """The table position of every OOF score, in the order of ``CrossValidation.oof_raw``."""
    return np.concatenate([s.held_out for s in splits])


@dataclass(frozen=True)
class ParamChoice:
    """The chosen parameters and rounds, every trial in order and the winner's OOF raw
    scores (stacked over the splits)."""

    params: dict[str, Any]
    best_rounds: int
    trials: list[dict[str, Any]]
    oof_raw: np.ndarray


def choose_table_params(
    cv: CrossValidation,
    first: dict[str, Any],
    *,
    budget_seconds: float,
    seed: int,
    max_trials: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ParamChoice:
    """The booster's parameters chosen by the k-fold log loss.

    Candidates in order: ``first`` (churnml's defaults) and LightGBM's own defaults
    (``lightgbm_defaults``), always; then seeded random draws over ``SEARCH_SPACE``
    merged into ``first`` until ``max_trials`` candidates (the two defaults included;
    None: no count) or the ``budget_seconds`` ceiling (a draw is started only when the
    longest trial so far still fits in the time left). The lowest mean held-out log loss
    wins; ties keep the earlier candidate. ``cv.evaluate(params) -> (log_loss,
    best_rounds)`` is the one place a candidate is fitted: ``training.tuning.search`` can
    take it as its ``evaluate``.
    """
    start = clock()
    candidates = [first, lightgbm_defaults(first)]
    rng = np.random.default_rng(seed)
    trials: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, Any], TrialResult] | None = None
    longest, seen = 0.0, set()
    while True:
        if len(trials) < len(candidates):
            params = candidates[len(trials)]
        else:
            left = budget_seconds - (clock() - start)
            if max_trials is not None and len(trials) >= max_trials:
                break
            if left <= 0 or left < longest:
                break
            params = _draw(first, rng, seen)
            if params is None:
                break
        seen.add(_key(params))
        began = clock()
        loss, rounds = cv.evaluate(params)
        took = clock() - began
        longest = max(longest, took)
        trials.append(
            {
                "trial": len(trials),
                "candidate": ("churnml defaults", "lightgbm defaults")[len(trials)]
                if len(trials) < 2
                else "search",
                "cv_log_loss": loss,
                "best_rounds": rounds,
                "seconds": round(took, 2),
                **{k: params.get(k) for k in SEARCHED},
            }
        )
        if best is None or loss < best[0]:
            best = (loss, rounds, params, cv.results[id(params)])
        else:
            cv.results.pop(id(params), None)  # the boosters of a loser are not kept
    loss, rounds, params, result = best
    return ParamChoice(params, rounds, trials, cv.oof_raw(result))


def _draw(
    first: dict[str, Any], rng: np.random.Generator, seen: set[tuple]
) -> dict[str, Any] | None:
    for _ in range(50):
        drawn = {k: values[int(rng.integers(len(values)))] for k, values in SEARCH_SPACE.items()}
        drawn["bagging_freq"] = 1 if drawn["bagging_fraction"] < 1 else 0
        candidate = {**first, **drawn}
        if _key(candidate) not in seen:
            return candidate
    return None


def _key(params: dict[str, Any]) -> tuple:
    return tuple(params.get(k) for k in SEARCHED)


def cross_fitted_calibration(
    raw: np.ndarray, y: np.ndarray, splits: list[Split], rows: np.ndarray
) -> tuple[str, dict[str, float], np.ndarray]:
    """Isotonic or Platt, by the log loss of cross-fitted calibration over the splits.

    ``raw``: OOF probabilities before calibration, stacked (``rows``: their table rows).
    For each split, the calibrator is fitted on the OOF scores of the other splits of the
    same repeat and applied to the split's own: no probability is calibrated by a
    calibrator that saw its label. Returns the chosen method, each method's log loss and
    the chosen method's cross-fitted probabilities (stacked like ``raw``)."""
    position = np.cumsum([0] + [len(s.held_out) for s in splits])
    labels = y[rows]
    scores, calibrated = {}, {}
    for method in ("isotonic", "platt"):
        out = np.empty(len(raw))
        for i, split in enumerate(splits):
            own = slice(position[i], position[i + 1])
            others = np.concatenate(
                [
                    np.arange(position[j], position[j + 1])
                    for j, other in enumerate(splits)
                    if other.repeat == split.repeat and j != i
                ]
            )
            calibrator = table_calibrator(method, raw[others], labels[others])
            out[own] = calibrator.predict(raw[own])
        scores[method] = float(log_loss(labels, np.clip(out, EPS, 1 - EPS), labels=[0, 1]))
        calibrated[method] = out
    chosen = min(scores, key=scores.__getitem__)
    return chosen, scores, calibrated[chosen]


@dataclass(frozen=True)
class OutOfFold:
    """The cross-validation's OOF scores of every candidate and baseline, stacked over
    the splits (``rows``: each score's table row; ``repeat``: its repeat), plus what was
    chosen on them."""

    rows: np.ndarray
    repeat: np.ndarray
    scores: dict[str, np.ndarray]  # "model", "logistic", "lightgbm" (probabilities)
    choice: ParamChoice
    blend_record: dict[str, Any]
    calibration: str
    calibration_scores: dict[str, float]
    # The blended OOF probabilities before calibration: their ranking is the model's
    # (the registered calibrator is strictly increasing, ``table_calibrator``).
    calibration_raw: np.ndarray
    fold_train_rows: float  # mean rows a split's model was fitted on
    extra: dict[str, Any] = field(default_factory=dict)


def scaled_rounds(best_rounds: int, all_rows: int, fold_train_rows: float) -> int:
    """The refit's rounds: the CV's best round times ``all_rows / fold_train_rows``."""
    return max(1, int(round(best_rounds * all_rows / fold_train_rows)))


def fit_calibrator_on_oof(method: str, oof: OutOfFold, y: np.ndarray) -> Calibrator:
    """The registered model's calibrator: ``method`` fitted on every OOF score."""
    return table_calibrator(method, oof.calibration_raw, y[oof.rows])


def table_calibrator(method: str, probability: np.ndarray, y: np.ndarray) -> Calibrator:
    """``learners.fit_calibrator``, with isotonic made strictly increasing: each step's
    value moves ``TIE_BREAK`` of the way to the score itself (at most 0.001), so that the
    customers of one step keep the booster's order instead of tying. Both methods then
    keep the ranking of the scores they calibrate (see ``oof_metrics``)."""
    calibrator = learners.fit_calibrator(method, probability, y)
    if method != "isotonic":
        return calibrator
    x, values = np.asarray(calibrator.x), np.asarray(calibrator.y)
    strict = EPS + (1 - TIE_BREAK) * values + TIE_BREAK * x
    return Calibrator("isotonic", x=tuple(float(v) for v in x), y=tuple(float(v) for v in strict))


def cross_validate(
    x: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    *,
    folds: int,
    repeats: int,
    blend: str,
    budget_seconds: float,
    seed: int,
    threads: int,
    max_trials: int | None = None,
) -> OutOfFold:
    """The table's cross-validation: the parameters, rounds, blend and calibration chosen
    on OOF scores, and the OOF probabilities of the model and of the logistic and default
    LightGBM baselines (each fitted on the same training rows of every split)."""
    splits = cv_splits(y, folds, repeats, seed)
    rows = stacked_rows(splits)
    fold_train_rows = float(np.mean([len(s.train) for s in splits]))
    fold_positives = int(np.mean([y[s.train].sum() for s in splits]))
    first = learners.lightgbm_params(int(fold_train_rows), fold_positives, seed, threads)
    cv = CrossValidation(x, y, splits)
    choice = choose_table_params(
        cv, first, budget_seconds=budget_seconds, seed=seed, max_trials=max_trials
    )
    logistic, default_lightgbm = [], []
    for split in splits:
        train_x, held_x = x.iloc[split.train], x.iloc[split.held_out]
        pipeline = learners.fit_logistic_baseline(train_x, y[split.train], categorical, seed)
        logistic.append(learners.predict_logistic(pipeline, held_x, categorical))
        default_lightgbm.append(
            default_lightgbm_probability(train_x, y[split.train], held_x, threads)
        )
    logistic_p = np.concatenate(logistic)
    labels = y[rows]
    tree_raw = choice.oof_raw
    record: dict[str, Any] = {"method": blend, "linear_weight": 0.0}
    raw = tree_raw
    if blend == "stack":
        # The pipeline's log-odds are the linear term's raw score (training.learners.linear_term).
        weight, losses = learners.choose_blend_weight(tree_raw, logit(logistic_p), labels)
        record.update(linear_weight=weight, oof_log_loss=losses)
        raw = (1 - weight) * tree_raw + weight * logit(logistic_p)
    probability = 1.0 / (1.0 + np.exp(-raw))
    method, calibration_scores, calibrated = cross_fitted_calibration(probability, y, splits, rows)
    return OutOfFold(
        rows=rows,
        repeat=np.concatenate([np.full(len(s.held_out), s.repeat) for s in splits]),
        scores={
            "model": calibrated,
            "logistic": logistic_p,
            "lightgbm": np.concatenate(default_lightgbm),
        },
        choice=choice,
        blend_record=record,
        calibration=method,
        calibration_scores=calibration_scores,
        calibration_raw=probability,
        fold_train_rows=fold_train_rows,
        extra={"folds": folds, "repeats": repeats, "splits": splits},
    )


def default_lightgbm_probability(
    train_x: pd.DataFrame, train_y: np.ndarray, held_x: pd.DataFrame, threads: int
) -> np.ndarray:
    """``lightgbm.LGBMClassifier()`` with its default parameters (only the threads and its
    chatter set), fitted on ``train_x`` and scoring ``held_x``: the baseline the table
    model must beat."""
    classifier = lgb.LGBMClassifier(n_jobs=threads or None, verbose=-1)
    classifier.fit(train_x, train_y)
    return classifier.predict_proba(held_x)[:, 1]


@dataclass(frozen=True)
class Refit:
    """The registered model's pieces, fitted on every row: the booster of ``rounds``
    rounds, the logistic regression (and its linear term when blended) and the
    calibrator fitted on the OOF scores."""

    booster: lgb.Booster
    rounds: int
    logistic: Any
    blend: Blend | None
    calibrator: Calibrator


def refit_on_all_rows(
    x: pd.DataFrame, y: np.ndarray, categorical: list[str], oof: OutOfFold, seed: int
) -> Refit:
    """The model refit on every row with the CV's choices (see the module)."""
    rounds = scaled_rounds(oof.choice.best_rounds, len(y), oof.fold_train_rows)
    booster = lgb.train(oof.choice.params, lgb.Dataset(x, label=y), num_boost_round=rounds)
    logistic = learners.fit_logistic_baseline(x, y, categorical, seed)
    weight = float(oof.blend_record.get("linear_weight", 0.0))
    blend = None
    if weight > 0:
        categories = {c: list(x[c].cat.categories.astype(str)) for c in categorical}
        blend = Blend(weight, learners.linear_term(logistic, x, categories))
    calibrator = fit_calibrator_on_oof(oof.calibration, oof, y)
    return Refit(booster, rounds, logistic, blend, calibrator)


def oof_metrics(
    oof: OutOfFold,
    y: np.ndarray,
    rule: np.ndarray | None,
    capacity: int,
) -> dict[str, dict[str, float]]:
    """Every metric of the model and the baselines on the OOF scores, per repeat and then
    averaged over the repeats (within a repeat each row is scored once). ``rule``: the
    rule's score of each table row (None: no rule baseline).

    The model's calibration metrics (log loss, Brier, ECE) are those of the cross-fitted
    calibrated probabilities; its ranking metrics (``RANKING_METRICS``) those of the
    scores before calibration, which the registered model's strictly increasing
    calibrator keeps: pooling k differently fitted calibrators would reorder customers
    across folds, which no single model does."""
    scores = dict(oof.scores)
    if rule is not None:
        scores["rule"] = rule[oof.rows]
    per_repeat: dict[str, list[dict[str, float]]] = {who: [] for who in scores}
    for repeat in np.unique(oof.repeat):
        mine = oof.repeat == repeat
        labels = y[oof.rows[mine]]
        for who, score in scores.items():
            metrics = evaluate(labels, score[mine], capacity=capacity, probabilities=who != "rule")
            if who == "model":
                ranking = evaluate(labels, oof.calibration_raw[mine], capacity=capacity)
                metrics.update({k: ranking[k] for k in RANKING_METRICS})
            per_repeat[who].append(metrics)
    return {
        who: {k: float(np.mean([m[k] for m in values])) for k in values[0]}
        for who, values in per_repeat.items()
    }
