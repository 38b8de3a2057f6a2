"""Fitting the call-effect model: a meta-learner with LightGBM base models.

The call effect (contract v1.1) is ``tau(x) = P(churn | no call) - P(churn | call)``.
``fit(X, t, y)`` learns it from the retention team's randomised picks: ``t = 1`` for a
treated pick (called), ``t = 0`` for a ``control`` pick (picked, then deliberately not
called), ``y`` the churn label of the horizon.

Which rows: only the team's picks, treated and control. Among the picks the call is
assigned at random with a known share, so the treated and control rows differ only by
chance and the propensity is that share (``propensity=None`` takes the treated share of
the rows). Customers the team did not pick are untreated but not randomised: the team's
risk rule chose whom to pick, and nobody outside the picks was ever called, so no
propensity above zero exists there to weigh them with. Adding them as "control" rows
would mix the pick rule's selection into the effect.

Three learners (Kunzel et al. 2019; Kennedy 2020), each with LightGBM base models:

* ``t``: a churn classifier on the control rows and one on the treated rows; the effect
  is the difference of their probabilities.
* ``x``: the T-learner's two classifiers impute each row's effect (a treated row:
  control model's probability - its label; a control row: its label - treated model's
  probability); one regressor per group learns the imputed effects, blended
  ``e * effect_control + (1 - e) * effect_treated`` with ``e`` the propensity.
* ``dr``: cross-fitted outcome classifiers give each row the doubly robust pseudo-outcome
  ``mu0 - mu1 + (1 - t)(y - mu0)/(1 - e) - t(y - mu1)/e``; one regressor learns it.

````DEFAULT_LEARNER`` is the one ``benchmarks/uplift_bench.py`` measured best (the X-learner:
it kept 0.69 of the oracle's true effect in the top 10%, over 3 draws of 3 worlds,
against 0.65 for the T- and 0.59 for the DR-learner, and 0.64 for causalml's X-learner).
Every base model picks its number of rounds by a seeded cross-validation of its own
rows; everything is deterministic for a seed and a thread count.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.errors import DataError
from model.call_effect import ROLES, CallEffectModel, feature_matrix

LEARNERS = tuple(ROLES)
DEFAULT_LEARNER = "x"
# A group with fewer rows than this, or without both a churner and a stayer, cannot give
# a churn model: fitting stops with a one-line error instead of a meaningless effect.
MIN_GROUP_ROWS = 20
DR_FOLDS = 3
CV_FOLDS = 3
MAX_ROUNDS = 400
EARLY_STOPPING_ROUNDS = 30
# Below this many rows a base model is not cross-validated: it trains a fixed, small
# number of rounds.
MIN_CV_ROWS = 200
SMALL_ROUNDS = 60
PROPENSITY_BOUNDS = (0.01, 0.99)


def fit(
    X: pd.DataFrame,
    t: np.ndarray | pd.Series,
    y: np.ndarray | pd.Series,
    propensity: float | np.ndarray | pd.Series | None = None,
    *,
    learner: str = DEFAULT_LEARNER,
    seed: int = 0,
    threads: int = 1,
) -> CallEffectModel:
    """The call-effect model of the randomised picks ``X, t, y`` (see the module).

    ``propensity``: the probability each row was treated (a number or one per row), known
    from the team's random holdout; None takes the treated share of the rows. The
    DR-learner weighs each row by its own; the X-learner blends its two effect models by
    their mean, since the customers it predicts for later have no propensity. Non-numeric
    columns of ``X`` are categorical."""
    if learner not in LEARNERS:
        raise DataError(f"call-effect learner {learner!r}: expected one of {', '.join(LEARNERS)}")
    if not isinstance(X, pd.DataFrame):
        raise DataError("call-effect features: expected a table (pandas DataFrame) of features")
    treated, label = _checked_rows(X, t, y)
    e = _checked_propensity(propensity, treated)
    categories = {
        str(name): sorted(X[name].dropna().astype("string").unique().tolist())
        for name in X.columns
        if not (pd.api.types.is_numeric_dtype(X[name]) or pd.api.types.is_bool_dtype(X[name]))
    }
    feature_names = [str(name) for name in X.columns]
    matrix = feature_matrix(X, feature_names, categories)
    categorical = [i for i, name in enumerate(feature_names) if name in categories]
    base = _BaseModels(matrix, categorical, seed=seed, threads=threads)
    boosters = _FITS[learner](base, treated, label, e)
    return CallEffectModel(
        learner=learner,
        boosters=boosters,
        feature_names=feature_names,
        categories=categories,
        propensity=float(np.mean(e)),
        metadata={
            "seed": seed,
            "rows": int(len(X)),
            "treated_rows": int(treated.sum()),
            "control_rows": int((~treated).sum()),
        },
    )


# -- the learners ------------------------------------------------------------------------
def _fit_t(
    base: _BaseModels, treated: np.ndarray, y: np.ndarray, e: np.ndarray
) -> dict[str, lgb.Booster]:
    return {
        "control": base.classifier(~treated, y, "control"),
        "treated": base.classifier(treated, y, "treated"),
    }


def _fit_x(
    base: _BaseModels, treated: np.ndarray, y: np.ndarray, e: np.ndarray
) -> dict[str, lgb.Booster]:
    control_model = base.classifier(~treated, y, "control")
    treated_model = base.classifier(treated, y, "treated")
    imputed = np.where(
        treated,
        control_model.predict(base.matrix) - y,  # churn without the call - churn with it
        y - treated_model.predict(base.matrix),
    )
    return {
        "effect_control": base.regressor(~treated, imputed, "effect_control"),
        "effect_treated": base.regressor(treated, imputed, "effect_treated"),
    }


def _fit_dr(
    base: _BaseModels, treated: np.ndarray, y: np.ndarray, e: np.ndarray
) -> dict[str, lgb.Booster]:
    mu0 = np.empty(len(y))
    mu1 = np.empty(len(y))
    for number, held in enumerate(_folds(treated, DR_FOLDS, base.seed)):
        train = ~held
        control_model = base.classifier(train & ~treated, y, f"fold{number}_control")
        treated_model = base.classifier(train & treated, y, f"fold{number}_treated")
        mu0[held] = control_model.predict(base.matrix[held])
        mu1[held] = treated_model.predict(base.matrix[held])
    pseudo = (
        mu0
        - mu1
        + np.where(treated, 0.0, (y - mu0) / (1 - e))
        - np.where(treated, (y - mu1) / e, 0.0)
    )
    return {"effect": base.regressor(np.ones(len(y), dtype=bool), pseudo, "effect")}


_FITS = {"t": _fit_t, "x": _fit_x, "dr": _fit_dr}


def _folds(treated: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint masks covering every row, each with its share of both groups."""
    rng = np.random.default_rng([seed, 7])
    fold_of = np.empty(len(treated), dtype="int64")
    for group in (treated, ~treated):
        rows = rng.permutation(np.flatnonzero(group))
        fold_of[rows] = np.arange(len(rows)) % folds
    return [fold_of == number for number in range(folds)]


# -- base models -------------------------------------------------------------------------
def base_params(rows: int, objective: str, seed: int, threads: int) -> dict[str, Any]:
    """LightGBM parameters of a base model on ``rows`` rows: small, regularised trees,
    because a few thousand picks carry a weak signal (an effect is a difference of
    probabilities, and the X- and DR-learners' targets are noisy)."""
    return {
        "objective": objective,
        "learning_rate": 0.05,
        "num_leaves": 15 if rows >= 20_000 else 7,
        "min_data_in_leaf": int(np.clip(rows // 100, 20, 500)),
        "min_data_per_group": 50,
        "cat_smooth": 10.0,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 10.0,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }


class _BaseModels:
    """Fits the learners' LightGBM models on subsets of one feature matrix."""

    def __init__(
        self, matrix: np.ndarray, categorical: list[int], *, seed: int, threads: int
    ) -> None:
        self.matrix = matrix
        self.categorical = categorical
        self.seed = seed
        self.threads = threads

    def classifier(self, rows: np.ndarray, y: np.ndarray, name: str) -> lgb.Booster:
        return self._fit(rows, y, "binary", name)

    def regressor(self, rows: np.ndarray, target: np.ndarray, name: str) -> lgb.Booster:
        return self._fit(rows, target, "regression", name)

    def _fit(self, rows: np.ndarray, target: np.ndarray, objective: str, name: str) -> lgb.Booster:
        """A booster on ``rows``: the number of rounds is where the mean loss of a seeded
        ``CV_FOLDS``-fold cross-validation (folds stratified by label for a classifier)
        stops falling, then one model trains on all the rows. Measured against stopping
        on a 20% hold-out: the X-learner kept 0.69 of the oracle's true effect at K instead
        of 0.67 (benchmarks/uplift_bench.py, 3 draws of 3 worlds), for 1.6x the time."""
        index = np.flatnonzero(rows)
        # Each base model has its own stream, so adding a model changes no other one.
        seed = int(np.random.default_rng([self.seed, _stable_hash(name)]).integers(2**31 - 1))
        params = base_params(len(index), objective, seed, self.threads)
        data = self._dataset(index, target)
        if len(index) < MIN_CV_ROWS:
            return lgb.train(params, data, num_boost_round=SMALL_ROUNDS)
        strata = target[index] > 0.5 if objective == "binary" else np.zeros(len(index), bool)
        rng = np.random.default_rng(seed)
        fold_of = np.empty(len(index), dtype="int64")
        for group in (strata, ~strata):
            members = rng.permutation(np.flatnonzero(group))
            fold_of[members] = np.arange(len(members)) % CV_FOLDS
        folds = [
            (np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold))
            for fold in range(CV_FOLDS)
        ]
        losses = lgb.cv(
            params,
            data,
            num_boost_round=MAX_ROUNDS,
            folds=folds,
            stratified=False,
            callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
        )
        rounds = len(next(iter(losses.values())))  # cut at the best round by early stopping
        return lgb.train(params, data, num_boost_round=rounds)

    def _dataset(self, index: np.ndarray, target: np.ndarray) -> lgb.Dataset:
        return lgb.Dataset(
            self.matrix[index],
            label=target[index],
            categorical_feature=self.categorical or "auto",
            free_raw_data=False,
        )


def _stable_hash(name: str) -> int:
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"\0"), "little") % (2**31)


# -- input checks ------------------------------------------------------------------------
def _checked_rows(
    X: pd.DataFrame, t: np.ndarray | pd.Series, y: np.ndarray | pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """The treatment as a boolean mask and the label as 0.0/1.0, or a one-line error."""
    arrays = {}
    for name, values in (("t", t), ("y", y)):
        values = np.asarray(values)
        if values.ndim != 1 or len(values) != len(X):
            raise DataError(
                f"call-effect rows: {name} has {values.size} values for {len(X)} feature rows; "
                "expected one per row"
            )
        numeric = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy("float64")
        bad = np.flatnonzero(~np.isin(numeric, (0.0, 1.0)))
        if len(bad):
            what = "treatment flag (1 treated, 0 control)" if name == "t" else "churn label"
            raise DataError(
                f"call-effect rows: {len(bad)} row(s) have a {name} that is not 0 or 1 "
                f"(first: row {bad[0]}, {values[bad[0]]!r}); expected the {what}"
            )
        arrays[name] = numeric
    treated = arrays["t"] == 1.0
    label = arrays["y"]
    for group, mask in (("control", ~treated), ("treated", treated)):
        rows = int(mask.sum())
        if rows < MIN_GROUP_ROWS:
            raise DataError(
                f"call-effect rows: {rows} {group} row(s); at least {MIN_GROUP_ROWS} are needed "
                "to compare called with not-called customers (keep a random control group of "
                "the picks)"
            )
        churners = int(label[mask].sum())
        if churners in (0, rows):
            kind = "churner" if churners == 0 else "customer who stayed"
            raise DataError(
                f"call-effect rows: the {rows} {group} row(s) have no {kind}, so churn in that "
                "group cannot be modelled; use a longer period or horizon"
            )
    return treated, label


def _checked_propensity(
    propensity: float | np.ndarray | pd.Series | None, treated: np.ndarray
) -> np.ndarray:
    """One propensity per row inside ``PROPENSITY_BOUNDS``, or a one-line error."""
    if propensity is None:
        return np.full(len(treated), treated.mean())
    values = np.asarray(propensity, dtype="float64")
    if values.ndim == 0:
        values = np.full(len(treated), float(values))
    if values.ndim != 1 or len(values) != len(treated):
        raise DataError(
            f"call-effect propensity: {values.size} values for {len(treated)} rows; expected "
            "one number or one per row"
        )
    low, high = PROPENSITY_BOUNDS
    bad = np.flatnonzero(~((values >= low) & (values <= high)))
    if len(bad):
        raise DataError(
            f"call-effect propensity: {len(bad)} value(s) outside [{low}, {high}] (first: row "
            f"{bad[0]}, {values[bad[0]]}); expected the chance the row was called, given the "
            "team's random holdout"
        )
    return values
