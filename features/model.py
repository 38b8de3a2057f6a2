"""The trained churn model: booster, calibrator and how to turn inputs into scores.

``ChurnModel`` is plain Python (no MLflow): training builds it, MLflow carries it as
files (the LightGBM model text and a JSON spec: feature list, categories, calibrator,
feature settings or table schema, risk bands), and both the training package and the
scoring service load it from those files. It lives here, beside the feature builders,
because training and serving share it and must not import each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.contract import CONTRACT_VERSION, CUSTOMER_ID
from churnml.errors import DataError, ModelError
from features.linear import LinearTerm
from features.reasons import Explainer, PathAttributions, reference_statistics

EPS = 1e-6
BOOSTER_FILE = "booster.txt"
SPEC_FILE = "spec.json"
REASONS_PER_CUSTOMER = 3
KIND_INTERACTIONS = "interactions"
KIND_TABLE = "table"

# Words for the families of features/ (fallback: guessed from the column name).
FAMILY_WORDS = {
    "waiting": "long waits for service",
    "repeating": "repeated contacts about the same problem",
    "unresolved": "problems left unresolved",
    "transfers": "transfers between agents",
    "satisfaction": "low satisfaction with service",
    "abandoned": "contacts abandoned before being served",
    "volume": "many service contacts",
    "channel": "switching between contact channels",
    "profile": "customer profile",
}
_NAME_HINTS = (
    ("wait", "waiting"),
    ("repeat", "repeating"),
    ("unresolved", "unresolved"),
    ("escalat", "unresolved"),
    ("transfer", "transfers"),
    ("csat", "satisfaction"),
    ("satisf", "satisfaction"),
    ("abandon", "abandoned"),
    ("channel", "channel"),
    ("contact", "volume"),
    ("call", "volume"),
)


def family_of(column: str, families: dict[str, str]) -> str:
    if column in families:
        return families[column]
    lowered = column.lower()
    for hint, family in _NAME_HINTS:
        if hint in lowered:
            return family
    return "profile"


@dataclass
class ChurnModel:
    """Everything needed to turn inputs into calibrated probabilities and reasons."""

    kind: str
    booster: lgb.Booster
    calibrator: Calibrator
    feature_names: list[str]
    categories: dict[str, list[str]]
    base_rate: float
    feature_settings: dict[str, Any] | None = None
    table_schema: dict[str, Any] | None = None
    families: dict[str, str] = field(default_factory=dict)
    family_words: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # Usual values of the numeric features over the training rows ({column: {median, p90}}),
    # for reasons such as "3 times the usual"; see features.reasons.reference_statistics.
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    # The training rows' share in the bins of every feature, for drift checks (PSI) of the
    # daily lists; see features.drift. Empty for models trained before it existed.
    distribution: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A logistic regression stacked in log-odds: raw = (1 - w) * booster's raw score
    # + w * linear's (see Blend). None: the booster alone.
    blend: Blend | None = None

    # -- inputs ---------------------------------------------------------------------------
    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in training order, with the training categories."""
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise DataError(
                f"the input lacks {len(missing)} feature column(s) of the model (first: "
                f"{missing[0]!r}); score with the features the model was trained on"
            )
        x = frame[self.feature_names].copy()
        for column in self.feature_names:
            if column in self.categories:
                # As text ("string" keeps missing values missing), then the training codes.
                x[column] = pd.Categorical(
                    x[column].astype("string"), categories=self.categories[column]
                )
            else:
                x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
        return x

    def raw_score(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The uncalibrated log-odds: the booster's, or the blend of it and the linear term."""
        trees = self.booster.predict(
            x, num_iteration=self.booster.best_iteration or None, raw_score=True
        )
        return trees if self.blend is None else self.blend.raw_score(trees, x)

    def raw_probability(self, x: pd.DataFrame) -> np.ndarray:
        if self.blend is None:
            return self.booster.predict(x, num_iteration=self.booster.best_iteration or None)
        return 1.0 / (1.0 + np.exp(-self.raw_score(x)))

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for prepared features."""
        return self.calibrator.predict(self.raw_probability(x))

    def risk_band(self, probability: np.ndarray) -> np.ndarray:
        """high: at least twice the training churn rate; medium: above it; low: the rest."""
        return np.where(
            probability >= 2 * self.base_rate,
            "high",
            np.where(probability >= self.base_rate, "medium", "low"),
        )

    @staticmethod
    def reference_statistics(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
        """The usual feature values of training rows, for ``reference`` (median and p90)."""
        return reference_statistics(frame)

    @cached_property
    def attributions(self) -> PathAttributions | BlendedAttributions:
        """Per-leaf path attributions of the booster (plus the blend's linear shares),
        computed once per loaded model; ``bias + explain_rows(booster, x).sum(axis=1)`` is
        the raw score either way, which is all the scoring service relies on."""
        trees = PathAttributions.from_booster(self.booster)
        return trees if self.blend is None else BlendedAttributions(trees, self.blend)

    def exact_contributions(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Like ``contributions`` with exact TreeSHAP (``pred_contrib``) for the trees:
        slower, for plots and for checking the served shares; rows x features."""
        trees = self.booster.predict(
            x, num_iteration=self.booster.best_iteration or None, pred_contrib=True
        )[:, :-1]
        if self.blend is None:
            return trees
        return self.blend.tree_weight * trees + self.blend.linear_weight * (
            self.blend.linear.contributions(x)
        )

    @cached_property
    def explainer(self) -> Explainer:
        return Explainer.build(
            self.feature_names,
            {c: family_of(c, self.families) for c in self.feature_names},
            self.reference,
        )

    def contributions(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Each feature's share of the raw score (log-odds), rows x features."""
        return self.attributions.explain_rows(self.booster, x)

    def reasons(
        self, x: pd.DataFrame, top: int = REASONS_PER_CUSTOMER
    ) -> list[list[dict[str, Any]]]:
        """The families that raise each customer's risk most, in plain words with the
        customer's own numbers (``features.reasons``: code, family, feature, text, ...)."""
        return self.explainer.explain(self.contributions(x), x, top)

    def explained_scores(
        self, x: pd.DataFrame, top: int = REASONS_PER_CUSTOMER, chunk: int = 5_000
    ) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        """Calibrated probabilities and reasons of prepared features with one tree traversal
        per row: the path attributions add up to the raw score (bias + shares). In chunks
        of rows, so that the (rows x trees x depth) work arrays stay small."""
        probabilities: list[np.ndarray] = []
        reasons: list[list[dict[str, Any]]] = []
        for start in range(0, len(x), chunk):
            part = x.iloc[start : start + chunk]
            shares = self.contributions(part)
            raw = 1.0 / (1.0 + np.exp(-(self.attributions.bias + shares.sum(axis=1))))
            probabilities.append(self.calibrator.predict(raw))
            reasons += self.explainer.explain(shares, part, top)
        return np.concatenate(probabilities) if probabilities else np.array([]), reasons

    def _words(self, family: str) -> str:
        return self.family_words.get(family) or FAMILY_WORDS.get(family, family)

    def features_from_tables(
        self, customers: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp
    ) -> pd.DataFrame:
        if self.kind != KIND_INTERACTIONS:
            raise ModelError(
                "this model was trained on a customer table; score it with --table, "
                "or pass a model trained on interaction logs"
            )
        from features.build import build_features
        from features.settings import FeatureSettings

        feature_settings = None
        if self.feature_settings is not None:
            feature_settings = FeatureSettings.from_dict(self.feature_settings)
        return build_features(customers, interactions, as_of, feature_settings)

    def features_from_table(self, table: pd.DataFrame) -> pd.DataFrame:
        if self.kind != KIND_TABLE or self.table_schema is None:
            raise ModelError(
                "this model was trained on interaction logs; score it with "
                "--customers/--interactions, or pass a model trained on a customer table"
            )
        return table_features(table, self.table_schema)

    # -- outputs --------------------------------------------------------------------------
    def score_frame(
        self, features: pd.DataFrame, ids: pd.Index | np.ndarray, *, with_reasons: bool = True
    ) -> pd.DataFrame:
        x = self.prepare(features)
        probability = self.predict_proba(x)
        scores = pd.DataFrame(
            {
                CUSTOMER_ID: np.asarray(ids),
                "churn_probability": probability,
                "risk_band": self.risk_band(probability),
            }
        )
        if with_reasons:
            drivers = self.reasons(x)
            scores["reasons"] = ["; ".join(d["text"] for d in row) for row in drivers]
            scores["reason_codes"] = [",".join(d["code"] for d in row) for row in drivers]
        return scores

    def score_tables(
        self,
        customers: pd.DataFrame,
        interactions: pd.DataFrame,
        as_of: pd.Timestamp | str,
        *,
        with_reasons: bool = True,
    ) -> pd.DataFrame:
        """Scores of every customer active on ``as_of``, from validated contract tables."""
        as_of = pd.Timestamp(as_of).normalize()
        features = self.features_from_tables(customers, interactions, as_of)
        if features.empty:
            raise DataError(f"no customer is active on {as_of:%Y-%m-%d}; pick a later --as-of")
        scores = self.score_frame(features, features.index, with_reasons=with_reasons)
        scores["as_of"] = f"{as_of:%Y-%m-%d}"
        return scores

    def score_table(self, table: pd.DataFrame, *, with_reasons: bool = True) -> pd.DataFrame:
        """Scores of every row of a customer table (its label column, if present, is ignored)."""
        features = self.features_from_table(table)
        id_column = (self.table_schema or {}).get("id_column")
        if id_column and id_column in table.columns:
            ids = table[id_column].astype(str).to_numpy()
        else:
            ids = np.arange(len(table))
        scores = self.score_frame(features, ids, with_reasons=with_reasons)
        if id_column:
            scores = scores.rename(columns={CUSTOMER_ID: id_column})
        return scores

    # -- files ----------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        spec = {
            "kind": self.kind,
            "calibrator": self.calibrator.to_dict(),
            "feature_names": self.feature_names,
            "categories": self.categories,
            "base_rate": self.base_rate,
            "feature_settings": self.feature_settings,
            "table_schema": self.table_schema,
            "families": self.families,
            "family_words": self.family_words,
            "metadata": {"contract_version": CONTRACT_VERSION, **self.metadata},
            "reference": self.reference,
            "distribution": self.distribution,
            "blend": None if self.blend is None else self.blend.to_dict(),
        }
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> ChurnModel:
        folder = Path(folder)
        try:
            spec = json.loads((folder / SPEC_FILE).read_text())
            booster = lgb.Booster(model_file=str(folder / BOOSTER_FILE))
        except (OSError, ValueError, lgb.basic.LightGBMError) as error:
            raise ModelError(f"{folder}: not a churnml model ({error})") from None
        contract = spec.get("metadata", {}).get("contract_version")
        if contract != CONTRACT_VERSION:
            raise ModelError(
                f"{folder}: the model was trained for data contract v{contract}, this churnml "
                f"reads v{CONTRACT_VERSION}; retrain it with `churnml train`"
            )
        return cls(
            kind=spec["kind"],
            booster=booster,
            calibrator=Calibrator.from_dict(spec["calibrator"]),
            feature_names=list(spec["feature_names"]),
            categories={k: list(v) for k, v in spec["categories"].items()},
            base_rate=float(spec["base_rate"]),
            feature_settings=spec.get("feature_settings"),
            table_schema=spec.get("table_schema"),
            families=dict(spec.get("families") or {}),
            family_words=dict(spec.get("family_words") or {}),
            metadata=dict(spec.get("metadata") or {}),
            reference={k: dict(v) for k, v in (spec.get("reference") or {}).items()},
            distribution=dict(spec.get("distribution") or {}),
            blend=Blend.from_dict(spec["blend"]) if spec.get("blend") else None,
        )


def _show(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "missing"
        return f"{value:.3g}"
    return str(value)


@dataclass(frozen=True)
class Blend:
    """A logistic regression stacked with the booster in log-odds (training chooses the
    weight on the validation fold, ``training.models.choose_blend_weight``):
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


@dataclass(frozen=True)
class BlendedAttributions:
    """``PathAttributions``' interface for a blended model: the trees' shares and the
    linear term's, each scaled by its weight, summed per feature; the bias likewise."""

    trees: PathAttributions
    blend: Blend

    @property
    def bias(self) -> float:
        return self.blend.tree_weight * self.trees.bias + self.blend.linear_weight * (
            self.blend.linear.bias
        )

    @property
    def num_iteration(self) -> int | None:
        return self.trees.num_iteration

    def explain_rows(self, booster: lgb.Booster, x: Any) -> np.ndarray:
        """Shares for prepared features or the serving matrix, rows x features."""
        return self.blend.tree_weight * self.trees.explain_rows(
            booster, x
        ) + self.blend.linear_weight * self.blend.linear.contributions(x)


@dataclass(frozen=True)
class Calibrator:
    """Maps raw booster probabilities to calibrated ones; plain numbers, JSON-serialisable."""

    method: str  # "isotonic" or "platt"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0

    def predict(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype="float64")
        if self.method == "isotonic":
            calibrated = np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        else:
            calibrated = 1.0 / (1.0 + np.exp(-(self.slope * _logit(raw) + self.intercept)))
        return np.clip(calibrated, EPS, 1 - EPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "x": list(self.x),
            "y": list(self.y),
            "slope": self.slope,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Calibrator:
        return cls(
            method=values["method"],
            x=tuple(values["x"]),
            y=tuple(values["y"]),
            slope=float(values["slope"]),
            intercept=float(values["intercept"]),
        )


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def table_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64").map(lambda v: None if pd.isna(v) else repr(float(v)))
    text = values.astype("object").map(lambda v: None if pd.isna(v) else str(v).strip())
    return text.where(text != "", None)


def table_features(table: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """The feature frame of a table under ``schema``: floats and categoricals."""
    missing = [c for c in [*schema["numeric"], *schema["categorical"]] if c not in table.columns]
    if missing:
        raise DataError(
            f"the table lacks column {missing[0]!r} the model was trained with; "
            "score a table with the training table's columns"
        )
    frame = pd.DataFrame(index=table.index)
    for column in schema["numeric"]:
        frame[column] = pd.to_numeric(table_text(table[column]), errors="coerce").astype("float64")
    for column, categories in schema["categorical"].items():
        frame[column] = pd.Categorical(table_text(table[column]), categories=categories)
    return frame
