"""The learners: the classifier, its calibrator, the blend weight and the two baselines it
must beat."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.columns import risk_direction
from model.artifact import EPS, Calibrator, logit
from model.linear import LinearTerm

BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75)
MAX_BOOST_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50
LOGISTIC_MAX_ROWS = 200_000
PREDICT_CHUNK_ROWS = 100_000


def lightgbm_params(n_rows: int, n_positive: int, seed: int, threads: int = 1) -> dict[str, Any]:
    """LightGBM parameters scaled to the data, from thousands to tens of millions of rows.

    Snapshot rows repeat each customer every week, so the data hold far fewer
    independent customers than rows: leaves need many rows (``min_data_in_leaf`` grows
    with the rows), trees stay small and are regularised (L2, half the features per
    tree), and fewer churners mean fewer leaves. Classes keep weight 1: reweighting
    would distort the probabilities the calibrator would then have to undo.
    """
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": 0.05,
        "num_leaves": int(np.clip(n_positive // 100, 4, 15)),
        "min_data_in_leaf": int(np.clip(n_rows // 1000, 20, 2000)),
        "min_sum_hessian_in_leaf": 1e-3,
        "feature_fraction": 0.5,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 10.0,
        "max_bin": 255,
        "max_cat_to_onehot": 8,
        "cat_smooth": 10.0,
        "seed": seed,
        "deterministic": True,
        # Column-wise histograms: the same trees as row-wise (checked on a 10^6-row fold),
        # about 15% less CPU on one thread for the wide, mostly-zero snapshot features.
        "force_col_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }


def monotone_params(params: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``params`` with LightGBM's ``monotone_constraints`` for ``columns`` (in the order the
    booster sees them): the domain's direction of each feature (``features.columns``
    ``RISK_RISING`` / ``RISK_FALLING``; 0 for the others). The "intermediate" method
    constrains less than "basic" at a small cost in time. Unchanged when no column has a
    known direction (a customer table's own columns)."""
    constraints = [risk_direction(str(column)) for column in columns]
    if not any(constraints):
        return params
    return {
        **params,
        "monotone_constraints": constraints,
        "monotone_constraints_method": "intermediate",
    }


def training_sample(
    y: np.ndarray, weight: np.ndarray | None, max_rows: int, seed: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The rows a fit uses when there are more than ``max_rows``, and their weights.

    Up to ``max_rows`` rows: all of them, weights unchanged (returns ``None, weight``).
    Above: every churner row and a seeded uniform sample of the other rows that fills
    ``max_rows``; a sampled row's weight is multiplied by (other rows / sampled ones), so
    that the weighted rows keep the churn rate of all rows and the fitted probabilities
    stay calibrated (the calibrator then fits on unsampled validation rows anyway). When
    churners would fill half of ``max_rows``, a uniform sample of rows, weights unchanged.
    Returns sorted row positions and the weights of those rows (None: all 1).
    """
    n = len(y)
    if n <= max_rows:
        return None, weight
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(y == 1)
    if 2 * len(positives) > max_rows:
        keep = np.sort(rng.choice(n, max_rows, replace=False))
        return keep, None if weight is None else weight[keep]
    negatives = np.flatnonzero(y != 1)
    take = max_rows - len(positives)
    keep = np.sort(
        np.concatenate([positives, negatives[rng.choice(len(negatives), take, replace=False)]])
    )
    kept_weight = np.ones(len(keep)) if weight is None else weight[keep].astype(np.float64)
    kept_weight[y[keep] != 1] *= len(negatives) / take
    return keep, kept_weight


def fit_booster(
    train_x: pd.DataFrame,
    train_y: np.ndarray,
    valid_x: pd.DataFrame,
    valid_y: np.ndarray,
    params: dict[str, Any],
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """Fit with early stopping on the validation fold's log loss (``weight``: per train row),
    within the features' known directions (``monotone_params``)."""
    params = monotone_params(params, list(train_x.columns))
    train_set = lgb.Dataset(train_x, label=train_y, weight=weight, free_raw_data=True)
    valid_set = lgb.Dataset(valid_x, label=valid_y, reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=MAX_BOOST_ROUNDS,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )


def fit_booster_rounds(
    train_x: pd.DataFrame,
    train_y: np.ndarray,
    params: dict[str, Any],
    rounds: int,
    weight: np.ndarray | None = None,
) -> lgb.Booster:
    """Fit exactly ``rounds`` rounds, no validation rows (the refit: ``training.refit``),
    within the features' known directions as ``fit_booster``."""
    params = monotone_params(params, list(train_x.columns))
    train_set = lgb.Dataset(train_x, label=train_y, weight=weight, free_raw_data=True)
    return lgb.train(params, train_set, num_boost_round=rounds)


def tune_booster(
    train_x: pd.DataFrame,
    train_y: np.ndarray,
    valid_x: pd.DataFrame,
    valid_y: np.ndarray,
    params: dict[str, Any],
    budget_seconds: float,
    seed: int,
    weight: np.ndarray | None = None,
    *,
    fit: Callable[[pd.DataFrame, np.ndarray, dict[str, Any]], lgb.Booster] | None = None,
    max_trials: int | None = None,
) -> tuple[lgb.Booster, dict[str, Any], list[dict[str, Any]]]:
    """``training.tuning.search`` over ``booster_space(params)`` within ``budget_seconds``,
    each candidate fitted with early stopping on the validation rows; ``params`` (the
    defaults) are the first candidate and stay when nothing beats them on validation log
    loss. Returns the winner's booster, its parameters and every trial's record.

    ``fit(valid_x, valid_y, params)`` fits one candidate (default: ``fit_booster`` on
    ``train_x``, ``train_y`` and ``weight``; the Dask engine fits on the cluster).
    """
    from training import tuning

    if fit is None:

        def fit(vx: pd.DataFrame, vy: np.ndarray, p: dict[str, Any]) -> lgb.Booster:
            return fit_booster(train_x, train_y, vx, vy, p, weight)

    kept: dict[str, Any] = {}

    def evaluate(candidate: dict[str, Any]) -> tuple[float, int]:
        booster = fit(valid_x, valid_y, candidate)
        loss = float(booster.best_score["validation"]["binary_logloss"])
        if "loss" not in kept or loss < kept["loss"]:
            kept.update(loss=loss, booster=booster)  # the best so far: no refit at the end
        return loss, int(booster.best_iteration or booster.current_iteration())

    found = tuning.search(
        evaluate,
        first=params,
        space=booster_space(params),
        budget_seconds=budget_seconds,
        seed=seed,
        max_trials=max_trials,
    )
    return kept["booster"], found.best_params, [t.record() for t in found.trials]


def booster_space(params: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The search space around ``lightgbm_params``' defaults: leaves, leaf size (a multiple
    of the default, which grows with the rows), learning rate (rounds follow by early
    stopping), L2 and the feature fraction."""
    leaf = int(params["min_data_in_leaf"])
    return {
        "num_leaves": (4, 7, 15, 31, 63),
        "min_data_in_leaf": tuple(sorted({max(5, int(leaf * f)) for f in (0.25, 0.5, 1, 2, 4)})),
        "learning_rate": (0.02, 0.05, 0.1),
        "lambda_l2": (0.0, 1.0, 10.0, 30.0),
        "feature_fraction": (0.3, 0.5, 0.7, 0.9),
    }


def fit_calibrator(method: str, raw: np.ndarray, y: np.ndarray) -> Calibrator:
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return Calibrator("isotonic", x=tuple(iso.X_thresholds_), y=tuple(iso.y_thresholds_))
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(logit(raw).reshape(-1, 1), y)
    return Calibrator("platt", slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0]))


def choose_calibrator(
    raw: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int
) -> tuple[Calibrator, dict[str, float]]:
    """Isotonic or Platt, whichever has the lower log loss out of sample on validation.

    Both are cross-fitted on two halves of the validation customers (grouped, so that one
    customer's snapshots stay on one side), then the winner is refitted on all of it.
    """
    unique = pd.unique(groups)
    rng = np.random.default_rng(seed)
    half = set(rng.permutation(unique)[: len(unique) // 2].tolist())
    side = np.fromiter((g in half for g in groups), dtype=bool, count=len(groups))
    scores: dict[str, float] = {}
    for method in ("isotonic", "platt"):
        predictions = np.empty(len(y))
        for fit_side in (side, ~side):
            if y[fit_side].min() == y[fit_side].max():
                predictions[~fit_side] = y[fit_side].mean()
                continue
            predictions[~fit_side] = fit_calibrator(method, raw[fit_side], y[fit_side]).predict(
                raw[~fit_side]
            )
        scores[method] = float(log_loss(y, np.clip(predictions, EPS, 1 - EPS), labels=[0, 1]))
    chosen = min(scores, key=scores.__getitem__)
    return fit_calibrator(chosen, raw, y), scores


def fit_logistic_baseline(
    x: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    seed: int,
    weight: np.ndarray | None = None,
    *,
    start: Pipeline | None = None,
) -> Pipeline:
    """Logistic regression on the same features: median imputation, scaling, one-hot.

    Fitted on a seeded uniform sample of ``LOGISTIC_MAX_ROWS`` rows when there are more;
    ``weight`` (per row of ``x``) is passed on to the regression. Within the features'
    known directions (``features.columns.RISK_RISING`` / ``RISK_FALLING``), as the trees
    are: a feature whose coefficient comes out against its direction (correlated features
    share a signal, and one of them can take the opposite sign) is left out, its values
    held at 0 so that its coefficient is exactly 0, and the regression refitted, until every
    coefficient agrees. The pipeline keeps every column, so ``linear_term`` reads it as is.
    ``start``: a pipeline fitted on similar rows (the refit's: fold 1's) whose coefficients
    start the solver of the first fit (the same optimum, about a quarter of the
    iterations); ignored when its columns differ.
    """
    return fit_logistic_pair(x, y, categorical, seed, weight, start=start)[1]


def fit_logistic_pair(
    x: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    seed: int,
    weight: np.ndarray | None = None,
    *,
    start: Pipeline | None = None,
) -> tuple[Pipeline, Pipeline]:
    """``fit_logistic_baseline``'s first, unconstrained fit (the baseline the model must
    beat: a competitor is not held to churnml's directions) and its final fit within the
    directions (the stacked linear term); the same object when no coefficient disagreed."""
    numeric = [c for c in x.columns if c not in categorical]
    if len(x) > LOGISTIC_MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), LOGISTIC_MAX_ROWS, replace=False))
        x, y = x.iloc[keep], y[keep]
        weight = None if weight is None else weight[keep]
    directions = np.array([risk_direction(str(c)) for c in numeric])
    prepared = _for_sklearn(x, categorical)
    plain = None
    for _ in range(len(numeric) + 1):
        pipeline = _logistic_pipeline(numeric, categorical)
        _fit_from(pipeline, prepared, y, weight, start)
        start = None
        if plain is None:
            plain = pipeline
        coef = pipeline.named_steps["classifier"].coef_[0][: len(numeric)]
        against = [c for c, k in zip(numeric, coef * directions < 0, strict=True) if k]
        if not against:
            break
        prepared = prepared.assign(**dict.fromkeys(against, 0.0))
    return plain, pipeline


def _logistic_pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    transformer = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(MedianImputer(), StandardScaler()),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=10),
                ),
                categorical,
            ),
        ]
    )
    return Pipeline(
        [("prepare", transformer), ("classifier", LogisticRegression(max_iter=2000, C=1.0))]
    )


def _fit_from(
    pipeline: Pipeline,
    prepared: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray | None,
    start: Pipeline | None,
) -> Pipeline:
    fit_params = {} if weight is None else {"classifier__sample_weight": weight}
    if start is not None:
        begun = start.named_steps["classifier"]
        classifier = pipeline.named_steps["classifier"]
        classifier.set_params(warm_start=True)
        classifier.coef_, classifier.intercept_ = begun.coef_.copy(), begun.intercept_.copy()
        try:
            return pipeline.fit(prepared, y, **fit_params)
        except ValueError:  # another one-hot width: start from zero
            classifier.set_params(warm_start=False)
    return pipeline.fit(prepared, y, **fit_params)


class MedianImputer(TransformerMixin, BaseEstimator):
    """``SimpleImputer(strategy="median", keep_empty_features=True)`` on numeric columns,
    with the medians from ``np.nanmedian``: the same ``statistics_`` (0 for an empty
    column), in a fraction of the time (scikit-learn's masked-array median took 1.5 s of
    a 4.5 s logistic fit on 10^5 snapshot rows, and the refit fits several)."""

    def fit(self, x: Any, y: Any = None) -> MedianImputer:
        values = np.asarray(x, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
            medians = np.nanmedian(values, axis=0) if len(values) else np.zeros(values.shape[1])
        self.statistics_ = np.nan_to_num(medians, nan=0.0)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, x: Any) -> np.ndarray:
        values = np.array(x, dtype=np.float64)
        missing = np.isnan(values)
        values[missing] = np.take(self.statistics_, np.nonzero(missing)[1])
        return values

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def linear_term(
    pipeline: Pipeline, x: pd.DataFrame, categories: dict[str, list[str]]
) -> LinearTerm:
    """The fitted ``fit_logistic_baseline`` pipeline as a ``LinearTerm`` on the columns of
    ``x`` (its training rows, to centre the categorical shares) with the model's
    ``categories``: ``term.raw_score(x)`` is the pipeline's decision function.

    Each category (and the missing value) goes through the fitted one-hot encoder, so that
    rare categories share the infrequent coefficient and unseen ones get none, exactly as
    in scikit-learn.
    """
    transformer = pipeline.named_steps["prepare"]
    coef = pipeline.named_steps["classifier"].coef_[0]
    intercept = float(pipeline.named_steps["classifier"].intercept_[0])
    categorical = [c for c in x.columns if c in categories]
    numeric_columns = [c for c in x.columns if c not in categories]
    numeric: dict[str, dict[str, float]] = {}
    if numeric_columns:
        imputer, scaler = (step for _, step in transformer.named_transformers_["numeric"].steps)
        fills = np.nan_to_num(imputer.statistics_, nan=0.0)  # keep_empty_features: 0
        for j, column in enumerate(numeric_columns):
            numeric[column] = {
                "fill": float(fills[j]),
                "mean": float(scaler.mean_[j]),
                "scale": float(scaler.scale_[j]),
                "coef": float(coef[j]),
            }
    shares: dict[str, dict[str, Any]] = {}
    bias = intercept
    if categorical:
        encoder = transformer.named_transformers_["categorical"]
        category_coef = coef[len(numeric_columns) :]
        training = _for_sklearn(x[categorical], categorical)
        reference = {c: "(missing)" for c in categorical}
        base = float((_encoded(encoder, pd.DataFrame([reference])[categorical]) @ category_coef)[0])
        bias += base
        for column in categorical:
            values = [*categories[column], "(missing)"]
            frame = pd.DataFrame({c: [reference[c]] * len(values) for c in categorical})
            frame[column] = values
            effect = _encoded(encoder, frame[categorical]) @ category_coef - base
            by_value = dict(zip(values, effect, strict=True))
            average = float(training[column].map(by_value).fillna(by_value["(missing)"]).mean())
            bias += average
            shares[column] = {
                "codes": [float(v - average) for v in effect[:-1]],
                "missing": float(effect[-1] - average),
            }
    return LinearTerm(tuple(x.columns), numeric, shares, bias)


def _encoded(encoder: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """The one-hot rows of ``frame`` as a dense array (the encoder gives a sparse one)."""
    encoded = encoder.transform(frame)
    return np.asarray(encoded.toarray() if hasattr(encoded, "toarray") else encoded)


def choose_blend_weight(
    tree_raw: np.ndarray,
    linear_raw: np.ndarray,
    y: np.ndarray,
    weights: tuple[float, ...] = BLEND_WEIGHTS,
) -> tuple[float, dict[float, float]]:
    """The linear weight w of ``(1 - w) * trees + w * linear`` (log-odds) with the lowest
    validation log loss, and each candidate's log loss.

    Log loss, not ROC-AUC: it is the proper, smooth score the trees were early-stopped on
    and the calibrator is chosen by, where ROC-AUC moves in steps of a few of the ~100
    churners of a small fold. Ties keep the smaller w (the trees alone when nothing helps).
    """
    scores = {}
    for w in weights:
        blended = (1 - w) * tree_raw + w * linear_raw
        scores[w] = float(log_loss(y, 1 / (1 + np.exp(-blended)), labels=[0, 1]))
    return min(weights, key=lambda w: (scores[w], w)), scores


def predict_logistic(pipeline: Pipeline, x: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    """Probabilities, a chunk of rows at a time (the float64 copies stay small)."""
    if len(x) == 0:
        return np.empty(0)
    return np.concatenate(
        [
            pipeline.predict_proba(
                _for_sklearn(x.iloc[start : start + PREDICT_CHUNK_ROWS], categorical)
            )[:, 1]
            for start in range(0, len(x), PREDICT_CHUNK_ROWS)
        ]
    )


def _for_sklearn(x: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    x = x.copy()
    for column in categorical:
        values = x[column].astype("object")
        x[column] = values.where(values.notna(), "(missing)").astype(str)
    for column in x.columns:
        if column not in categorical:
            x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
    return x
