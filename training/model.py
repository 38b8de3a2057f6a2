"""The trained churn model: booster, calibrator and how to build its inputs.

``ChurnModel`` is plain Python (no MLflow) and saves itself as three files: the
LightGBM model text, a JSON spec (feature list, categories, calibrator, feature
settings or table schema, risk bands) and nothing else, so that loading needs only
the installed churnml. ``ChurnRiskPyfunc`` wraps it as an MLflow pyfunc model whose
``predict`` takes contract tables::

    {"customers": DataFrame, "interactions": DataFrame, "as_of": "YYYY-MM-DD"}

or, for a model trained on a customer table, that table as a DataFrame; it returns one
row per customer with ``customer_id, churn_probability, risk_band, reasons``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from churnml.contract import CONTRACT_VERSION, CUSTOMER_ID
from churnml.errors import DataError, ModelError
from training.models import Calibrator

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
                values = x[column].astype("object")
                values = values.where(values.notna(), None).map(
                    lambda v: None if v is None else str(v)
                )
                x[column] = pd.Categorical(values, categories=self.categories[column])
            else:
                x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
        return x

    def raw_probability(self, x: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(x, num_iteration=self.booster.best_iteration or None)

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

    def reasons(
        self, x: pd.DataFrame, top: int = REASONS_PER_CUSTOMER
    ) -> list[list[dict[str, Any]]]:
        """The features that raise each customer's risk most, from TreeSHAP contributions."""
        contributions = self.booster.predict(
            x, num_iteration=self.booster.best_iteration or None, pred_contrib=True
        )[:, :-1]
        result = []
        for row in range(len(x)):
            order = np.argsort(-contributions[row])[:top]
            drivers = []
            for j in order:
                if contributions[row, j] <= 0:
                    break
                column = self.feature_names[j]
                family = family_of(column, self.families)
                value = x.iloc[row, j]
                drivers.append(
                    {
                        "code": column,
                        "family": family,
                        "text": f"{self._words(family)} ({column} = {_show(value)})",
                        "contribution": float(contributions[row, j]),
                    }
                )
            result.append(drivers)
        return result

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
        import features

        feature_settings = None
        if self.feature_settings is not None and hasattr(features, "FeatureSettings"):
            feature_settings = features.FeatureSettings.from_dict(self.feature_settings)
        return features.build_features(customers, interactions, as_of, feature_settings)

    def features_from_table(self, table: pd.DataFrame) -> pd.DataFrame:
        if self.kind != KIND_TABLE or self.table_schema is None:
            raise ModelError(
                "this model was trained on interaction logs; score it with "
                "--customers/--interactions, or pass a model trained on a customer table"
            )
        from training.table import table_features

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
        )


def _show(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "missing"
        return f"{value:.3g}"
    return str(value)


with warnings.catch_warnings():
    # MLflow warns at class creation about predict's missing type hints; the input is a dict
    # of tables or a table, which its schema validation cannot describe.
    warnings.simplefilter("ignore", category=UserWarning)

    class ChurnRiskPyfunc(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc face of ``ChurnModel``; its files are the ``model`` artifact folder."""

        def load_context(self, context: Any) -> None:
            self.model = ChurnModel.load(context.artifacts["model"])

        def predict(self, context, model_input, params=None):  # noqa: ANN001 (MLflow reads hints)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                if isinstance(model_input, dict):
                    try:
                        customers = model_input["customers"]
                        interactions = model_input["interactions"]
                    except KeyError as missing:
                        raise DataError(
                            f"model input lacks {missing}; pass customers, interactions and as_of"
                        ) from None
                    as_of = model_input.get("as_of") or (params or {}).get("as_of")
                    if as_of is None:
                        raise DataError(
                            "model input lacks 'as_of'; pass the day to score as YYYY-MM-DD"
                        )
                    return self.model.score_tables(customers, interactions, as_of)
                if isinstance(model_input, pd.DataFrame):
                    return self.model.score_table(model_input)
                raise DataError(
                    "model input must be {'customers', 'interactions', 'as_of'} or a customer table"
                )
