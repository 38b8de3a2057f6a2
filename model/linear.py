"""The logistic-regression part of a blended model, as plain numbers.

Training fits a scikit-learn pipeline (median imputation, scaling, one-hot; see
``training.learners.fit_logistic_baseline``); the served model must load with nothing
but churnml, so ``LinearTerm`` keeps only what the pipeline computes with: per numeric
feature its fill value, mean, scale and coefficient, per categorical feature one
coefficient per category code (and one for a missing or unknown value).

It is additive by construction, which is what keeps reasons per feature: a row's
log-odds are ``bias + sum_j share_j``, with ``share_j = coef_j * (x_j - mean_j) / scale_j``
for a numeric feature and the category's coefficient minus its training average for a
categorical one, so that every share averages 0 over the training rows and the bias
holds the constants. ``Blend`` weighs this term against the booster in log-odds, and
the model's per-feature shares add both parts feature by feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

CHUNK_ROWS = 100_000  # bounds the float64 copies of a raw-score call


@dataclass(frozen=True)
class LinearTerm:
    """Log-odds of a logistic regression on the model's features, split per feature.

    ``feature_names``: every feature of the model, in its order (the columns of ``x``).
    ``numeric``: {column: {"fill", "mean", "scale", "coef"}}: a missing value takes
    ``fill`` (the training median), then counts ``coef * (value - mean) / scale``.
    ``categorical``: {column: {"codes": [share per category code], "missing": share}},
    shares already centred on the training rows; a value outside the model's categories
    reads as missing, as in ``model.predictor.Predictor.prepare``.
    """

    feature_names: tuple[str, ...]
    numeric: dict[str, dict[str, float]]
    categorical: dict[str, dict[str, Any]]
    bias: float

    def __post_init__(self) -> None:
        names = list(self.feature_names)
        self._set("_numeric_positions", np.array([names.index(c) for c in self.numeric], int))
        values = {k: np.array([v[k] for v in self.numeric.values()]) for k in ("fill", "mean")}
        slopes = np.array([v["coef"] / v["scale"] for v in self.numeric.values()])
        self._set("_fill", values["fill"])
        self._set("_mean", values["mean"])
        self._set("_slope", slopes)
        self._set("_categorical_positions", [names.index(c) for c in self.categorical])
        # Shares looked up by code + 1: slot 0 holds the missing (code -1) share.
        self._set(
            "_tables",
            [
                np.array([v["missing"], *v["codes"]], dtype=np.float64)
                for v in self.categorical.values()
            ],
        )

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def contributions(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Each feature's share of the log-odds, rows x features (0 for a feature the
        regression does not use). ``x``: prepared features (``Predictor.prepare``) or the
        feature matrix (floats, categories as codes, NaN when unknown)."""
        numeric, codes = self._columns(x)
        shares = np.zeros((len(numeric), len(self.feature_names)))
        filled = np.where(np.isnan(numeric), self._fill, numeric)
        shares[:, self._numeric_positions] = (filled - self._mean) * self._slope
        for j, (position, table) in enumerate(
            zip(self._categorical_positions, self._tables, strict=True)
        ):
            shares[:, position] = table[codes[:, j] + 1]
        return shares

    def raw_score(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """``bias + contributions(x).sum(axis=1)``, a chunk of rows at a time, without
        the (rows x features) shares."""
        out = np.empty(len(x))
        for start in range(0, len(x), CHUNK_ROWS):
            part = (
                x.iloc[start : start + CHUNK_ROWS]
                if isinstance(x, pd.DataFrame)
                else x[start : start + CHUNK_ROWS]
            )
            numeric, codes = self._columns(part)
            filled = np.where(np.isnan(numeric), self._fill, numeric)
            total = self.bias + (filled - self._mean) @ self._slope
            for j, table in enumerate(self._tables):
                total += table[codes[:, j] + 1]
            out[start : start + len(part)] = total
        return out

    def _columns(self, x: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Numeric values (rows x numeric) and category codes (rows x categorical, -1:
        missing or unknown) of prepared features or of the feature matrix."""
        if isinstance(x, pd.DataFrame):
            numeric = x[list(self.numeric)].to_numpy(dtype=np.float64, na_value=np.nan)
            codes = np.empty((len(x), len(self.categorical)), dtype=np.int64)
            for j, column in enumerate(self.categorical):
                values = x[column]
                if not isinstance(values.dtype, pd.CategoricalDtype) or len(
                    values.cat.categories
                ) != len(self.categorical[column]["codes"]):
                    raise ValueError(
                        f"{column}: expected the model's categories; pass Predictor.prepare(x)"
                    )
                codes[:, j] = values.cat.codes.to_numpy()
            return numeric.reshape(len(x), -1), codes
        matrix = np.asarray(x, dtype=np.float64)
        numeric = matrix[:, self._numeric_positions]
        raw_codes = matrix[:, self._categorical_positions]
        codes = np.where(np.isnan(raw_codes), -1, raw_codes).astype(np.int64)
        return numeric, codes

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "numeric": self.numeric,
            "categorical": self.categorical,
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LinearTerm:
        return cls(
            feature_names=tuple(values["feature_names"]),
            numeric={k: {n: float(x) for n, x in v.items()} for k, v in values["numeric"].items()},
            categorical={
                k: {"codes": [float(c) for c in v["codes"]], "missing": float(v["missing"])}
                for k, v in values["categorical"].items()
            },
            bias=float(values["bias"]),
        )


@dataclass(frozen=True)
class Blend:
    """A logistic regression stacked with the booster in log-odds (training chooses the
    weight on the validation fold, ``training.learners.choose_blend_weight``):
    ``raw = (1 - linear_weight) * booster's raw score + linear_weight * linear's``.

    Why: on the small sample world the trees alone ranked below the regression on the
    same features on the newest fold, on larger worlds above it; the validation fold
    picks the weight in each run. The sum stays additive per feature (reasons add both
    shares) and costs one pass over the feature matrix per request.
    """

    linear_weight: float
    linear: LinearTerm

    @property
    def tree_weight(self) -> float:
        return 1.0 - self.linear_weight

    def raw_score(self, tree_raw: np.ndarray, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.tree_weight * np.asarray(tree_raw) + self.linear_weight * (
            self.linear.raw_score(x)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"linear_weight": self.linear_weight, "linear": self.linear.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Blend:
        return cls(float(values["linear_weight"]), LinearTerm.from_dict(values["linear"]))
