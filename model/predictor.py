"""One Predictor for every caller: features in; probabilities, bands, shares and reasons out.

``Predictor(model)`` is built once per loaded ``ChurnModel`` and used by batch scoring
(``churnml score``, the table path, the MLflow pyfunc), the daily risk list, the online
``POST /score`` and the Dask engine's partitions. It holds what scoring needs beyond the
model's files: the matrix layout, the per-leaf path attributions, the reasons' explainer.

Inputs: ``prepare`` gives the features as a DataFrame in training order with the
training categories; ``matrix`` and ``matrix_of`` give the same values as one float
matrix (categories as the booster's codes, NaN when unknown) without a DataFrame, for
the service. The booster reads both alike, so every path gives the same numbers.

Two ways to a probability, both kept so that every published number stays as it was:

* ``predict``: the booster's own probability (``booster.predict``, the blend's log-odds),
  with reasons from the path attributions: what ``churnml score`` writes.
* ``explain``: one tree traversal per row gives both the shares and the probability,
  ``calibrator(sigmoid(bias + sum of shares))``: the risk list, the service, Dask.

The time-to-churn head (``model.horizons``, ``--horizons``): ``Prediction.curve`` holds
each row's ``P(churn within H)`` for every trained H, from one booster call over all rows
x periods, anchored so that the model's own horizon is ``probability`` exactly (the
contract), the order kept. ``Predictor(model, horizons=...)`` picks which of them the
score frames carry (``churn_probability_<H>d``).

Where a new head goes (a call-effect model, probabilities over several horizons): its
parameters in ``ChurnModel`` (and its files in ``save``/``load``), one field in
``Prediction``, and one computation in ``Predictor._prediction``, which every caller's
result goes through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import ConfigError, DataError
from features.build import FeatureArrays, thin_history
from features.reasons import REASONS_PER_CUSTOMER, Explainer, thin_history_reason
from features.retention import retention_history_features
from model.artifact import ChurnModel
from model.attributions import BlendedAttributions, PathAttributions
from model.horizons import column_name
from model.schema import SchemaField, rows_lacking

DEFAULT_REVENUE_MONTHS = 12.0  # the list's months of revenue (serving's revenue_months)
EXPLAIN_CHUNK_ROWS = 5_000  # bounds the (rows x trees x depth) work arrays of explain
Values = pd.DataFrame | Callable[[str], np.ndarray]  # feature values for the reasons' words


@dataclass(frozen=True)
class Prediction:
    """What the model says of some rows, one field per head, rows in input order.

    ``probability``: calibrated churn probability; ``band``: "high", "medium" or "low";
    ``reasons``: per row the families raising the risk with unusual values, those the
    team can act on first (``features.reasons``: code, family, kind "action"/"context",
    feature, text, value, usual, contribution), None when not asked for; a row with
    ``thin_history`` has the "little history" context line after its actions, in place of
    its weakest reason when full. ``thin_history``: less history than the feature windows
    (``features.build.thin_history``); all False for a model without ``tenure_days``."""

    probability: np.ndarray
    band: np.ndarray
    reasons: list[list[dict[str, Any]]] | None = None
    thin_history: np.ndarray | None = None
    # (rows, trained horizons): P(churn within H), non-decreasing along a row, the model's
    # own horizon equal to ``probability``; None for a model without horizons.
    curve: np.ndarray | None = None


class Predictor:
    """Scores features with one ``ChurnModel``; see the module."""

    def __init__(self, model: ChurnModel, *, horizons: Sequence[int] | None = None) -> None:
        """``horizons``: the subset of the model's horizons the score frames carry
        (``score --horizons``; default: every trained one). ConfigError when the model has
        none or was not trained on one of them."""
        self.model = model
        self.horizons = self._chosen_horizons(horizons)
        names = list(model.feature_names)
        self._numeric = [c for c in names if c not in model.categories]
        self._categorical = [c for c in names if c in model.categories]
        self._numeric_positions = [names.index(c) for c in self._numeric]
        self._categorical_positions = [names.index(c) for c in self._categorical]
        booster_categories = getattr(model.booster, "pandas_categorical", None) or []
        # The matrix needs the booster's category codes to be the features' codes.
        self.matrix_ok = len(booster_categories) == len(self._categorical) and all(
            list(map(str, cats)) == list(model.categories[c])
            for c, cats in zip(self._categorical, booster_categories, strict=False)
        )

    def _chosen_horizons(self, horizons: Sequence[int] | None) -> tuple[int, ...]:
        head = self.model.horizons
        if head is None:
            if horizons is not None:
                raise ConfigError(
                    f"--horizons {','.join(map(str, horizons))}: this model was trained "
                    "without horizons; retrain it with `churnml train --horizons 7,30,90` or "
                    "drop --horizons"
                )
            return ()
        if horizons is None:
            return head.horizons
        try:
            return head.check_horizons(horizons)
        except DataError as error:
            raise ConfigError(str(error)) from None

    @cached_property
    def _curve_columns(self) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Where each of the horizon model's features sits in this model's matrix, and for
        its categorical ones the map from this model's codes to its own (identity when
        both were trained on the same snapshot frame, as ``train --horizons`` does)."""
        head = self.model.horizons
        names = self.model.feature_names
        absent = [n for n in head.feature_names if n not in names]
        if absent:
            raise DataError(
                f"the horizons model reads {absent[0]!r}, which the churn model lacks; "
                "retrain with --horizons"
            )
        positions = np.asarray([names.index(n) for n in head.feature_names])
        recode = {}
        for j, name in enumerate(head.feature_names):
            if name in head.categories:
                ours = self.model.categories.get(name, [])
                lookup = pd.Index(head.categories[name]).get_indexer(pd.Index(ours))
                recode[j] = np.where(lookup < 0, np.nan, lookup).astype(np.float64)
        return positions, recode

    def curve(self, x: pd.DataFrame | np.ndarray, probability: np.ndarray) -> np.ndarray | None:
        """``P(churn within H)`` of the rows of ``x`` (``prepare``'s frame or ``matrix``'s
        array) for every trained H, anchored at this model's ``probability`` of them
        (``HorizonModel.anchored``); None for a model without horizons."""
        head = self.model.horizons
        if head is None:
            return None
        if isinstance(x, pd.DataFrame):
            matrix = head.matrix(x)
        else:
            positions, recode = self._curve_columns
            matrix = x[:, positions]
            for j, lookup in recode.items():
                codes = matrix[:, j]
                known = ~np.isnan(codes)
                mapped = np.full(len(codes), np.nan)
                mapped[known] = lookup[codes[known].astype(np.int64)]
                matrix[:, j] = mapped
        return head.anchored(head.curve_of_matrix(matrix), probability)

    def horizon_columns(self, curve: np.ndarray | None) -> dict[str, np.ndarray]:
        """``{churn_probability_<H>d: values}`` of the chosen horizons (empty without)."""
        head = self.model.horizons
        if head is None or curve is None:
            return {}
        return {column_name(h): curve[:, head.horizons.index(h)] for h in self.horizons}

    @property
    def input_schema(self) -> list[SchemaField]:
        """The profile fields the model was trained on: type, categories, missing share in
        training (``model.schema``)."""
        return self.model.input_schema

    def rows_lacking(
        self, customers: pd.DataFrame, ids: Sequence[str] | None = None
    ) -> dict[str, int]:
        """How many rows of a customers table (those of ``ids`` when given: the customers
        scored) lack each field the model was trained on almost always having
        (``model.schema.rows_lacking``, the fields ``POST /score`` warns about)."""
        if ids is not None:
            customers = customers[customers[CUSTOMER_ID].astype(str).isin(set(map(str, ids)))]
        return rows_lacking(self.input_schema, customers)

    @cached_property
    def attributions(self) -> PathAttributions | BlendedAttributions:
        """Per-leaf path attributions of the booster (plus the blend's linear shares),
        computed once; ``bias + explain_rows(booster, x).sum(axis=1)`` is the raw score."""
        trees = PathAttributions.from_booster(self.model.booster)
        blend = self.model.blend
        return trees if blend is None else BlendedAttributions(trees, blend)

    @cached_property
    def explainer(self) -> Explainer:
        model = self.model
        return Explainer.build(
            model.feature_names,
            {c: model.family_of(c) for c in model.feature_names},
            model.reference,
            model.categories,  # a value outside them is missing: never a reason
        )

    # -- inputs -------------------------------------------------------------------------
    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in training order, with the training categories."""
        names, categories = self.model.feature_names, self.model.categories
        missing = [c for c in names if c not in features.columns]
        if missing:
            raise DataError(
                f"the input lacks {len(missing)} feature column(s) of the model (first: "
                f"{missing[0]!r}); score with the features the model was trained on"
            )
        x = features[names].copy()
        for column in names:
            if column in categories:
                # As text ("string" keeps missing values missing), then the training codes.
                x[column] = pd.Categorical(
                    x[column].astype("string"), categories=categories[column]
                )
            else:
                x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
        return x

    def matrix(self, features: pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """Features as the booster reads them, in the model's column order: one float
        matrix, or ``prepare``'s frame when the booster's categories are not the model's."""
        if not self.matrix_ok:
            return self.prepare(features)
        out = np.empty((len(features), len(self.model.feature_names)), dtype=np.float64)
        out[:, self._numeric_positions] = features[self._numeric].to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        for j, column in zip(self._categorical_positions, self._categorical, strict=True):
            out[:, j] = self._codes(column, features[column])
        return out

    def matrix_of(self, arrays: FeatureArrays) -> np.ndarray:
        """``matrix`` of the arrays' rows (``matrix_ok`` models), without reading them
        back from a DataFrame."""
        rows = arrays.rows
        out = np.empty((len(rows), len(self.model.feature_names)), dtype=np.float64)
        position = {name: i for i, name in enumerate(arrays.names)}
        for j, column in zip(self._numeric_positions, self._numeric, strict=True):
            if column in position:
                out[:, j] = arrays.numeric[position[column]]
            else:  # a numeric profile column
                out[:, j] = arrays.profile[column].to_numpy(dtype=np.float64)[rows]
        for j, column in zip(self._categorical_positions, self._categorical, strict=True):
            values = arrays.profile[column].array
            out[:, j] = self._codes(
                column, values if len(values) == len(rows) else values.take(rows)
            )
        return out

    def _codes(self, column: str, values: pd.Series | pd.Categorical) -> np.ndarray:
        """A categorical feature's codes in the model's categories, NaN when unknown."""
        known = self.model.categories[column]
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            values = values.array
        if isinstance(values, pd.Categorical) and list(values.categories) == known:
            codes = values.codes.astype(np.float64)
        else:
            series = pd.Series(values)
            codes = pd.Categorical(
                series.astype("object").where(series.notna(), None), categories=known
            ).codes.astype(np.float64)
        codes[codes < 0] = np.nan
        return codes

    # -- numbers ------------------------------------------------------------------------
    def raw_score(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The uncalibrated log-odds: the booster's, or the blend of it and the linear term."""
        booster, blend = self.model.booster, self.model.blend
        trees = booster.predict(x, num_iteration=booster.best_iteration or None, raw_score=True)
        return trees if blend is None else blend.raw_score(trees, x)

    def probability(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probabilities of prepared features, from the booster's own prediction."""
        booster = self.model.booster
        if self.model.blend is None:
            raw = booster.predict(x, num_iteration=booster.best_iteration or None)
        else:
            raw = 1.0 / (1.0 + np.exp(-self.raw_score(x)))
        return self.model.calibrator.predict(raw)

    def shares(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Each feature's share of the raw score (log-odds), rows x features."""
        return self.attributions.explain_rows(self.model.booster, x)

    def probability_of_shares(self, shares: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from ``shares``: they add up to the raw score."""
        raw = 1.0 / (1.0 + np.exp(-(self.attributions.bias + shares.sum(axis=1))))
        return self.model.calibrator.predict(raw)

    def exact_shares(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Like ``shares`` with exact TreeSHAP (``pred_contrib``) for the trees: slower,
        for plots and for checking the served shares; rows x features."""
        booster, blend = self.model.booster, self.model.blend
        trees = booster.predict(x, num_iteration=booster.best_iteration or None, pred_contrib=True)[
            :, :-1
        ]
        if blend is None:
            return trees
        return blend.tree_weight * trees + blend.linear_weight * blend.linear.contributions(x)

    def reasons(
        self, shares: np.ndarray, values: Values, top: int = REASONS_PER_CUSTOMER
    ) -> list[list[dict[str, Any]]]:
        """The families that raise each row's risk most, in plain words with the row's
        own numbers (``values``: its features, a frame or a column getter)."""
        return self.explainer.explain(shares, values, top)

    # -- predictions --------------------------------------------------------------------
    def _prediction(
        self,
        probability: np.ndarray,
        reasons: list[list[dict[str, Any]]] | None,
        values: Values,
        top: int = REASONS_PER_CUSTOMER,
        x: pd.DataFrame | np.ndarray | None = None,
    ) -> Prediction:
        """Every head's answer for the rows of ``probability`` (features ``values``, the
        booster's input ``x``): the one place a head's computation goes."""
        tenure = self._tenure(values, len(probability))
        thin = thin_history(tenure, self.model.build_settings)
        if reasons is not None and thin.any():
            reasons = [
                _with_thin_history(row, thin_history_reason(tenure[i]), top) if thin[i] else row
                for i, row in enumerate(reasons)
            ]
        curve = None if x is None else self.curve(x, probability)
        return Prediction(probability, self.model.risk_band(probability), reasons, thin, curve)

    def _tenure(self, values: Values, rows: int) -> np.ndarray:
        """The rows' tenure_days, NaN for a model without it (a customer table's)."""
        if self.model.table_schema is not None or "tenure_days" not in self.model.feature_names:
            return np.full(rows, np.nan)
        if callable(values):
            column = values("tenure_days")
        elif isinstance(values, pd.DataFrame):
            column = values["tenure_days"]
        else:  # the feature matrix
            column = values[:, self.model.feature_names.index("tenure_days")]
        return np.asarray(column, dtype=np.float64)

    def predict(self, x: pd.DataFrame | np.ndarray, *, with_reasons: bool = True) -> Prediction:
        """The booster's own probabilities of prepared features ``x``, their bands and
        (``with_reasons``) the reasons of the path attributions."""
        reasons = self.reasons(self.shares(x), x) if with_reasons else None
        return self._prediction(self.probability(x), reasons, x, x=x)

    def explain(
        self,
        x: pd.DataFrame | np.ndarray,
        values: Values | None = None,
        *,
        top: int = REASONS_PER_CUSTOMER,
    ) -> Prediction:
        """Probabilities, bands and reasons with one tree traversal per row. ``values``
        holds the rows' features for the reasons' words (default: ``x``, a prepared
        frame). In chunks of rows, so that the (rows x trees x depth) work stays small."""
        values = x if values is None else values
        if 0 < len(x) <= EXPLAIN_CHUNK_ROWS:  # one chunk: no copies of the rows
            shares = self.shares(x)
            return self._prediction(
                self.probability_of_shares(shares),
                self.reasons(shares, values, top),
                values,
                top,
                x=x,
            )
        probabilities: list[np.ndarray] = []
        reasons: list[list[dict[str, Any]]] = []
        for start in range(0, len(x), EXPLAIN_CHUNK_ROWS):
            rows = slice(start, start + EXPLAIN_CHUNK_ROWS)
            shares = self.shares(_rows(x, rows))
            probabilities.append(self.probability_of_shares(shares))
            reasons += self.reasons(shares, _rows(values, rows), top)
        probability = np.concatenate(probabilities) if probabilities else np.array([])
        return self._prediction(probability, reasons, values, top, x=x)

    # -- the call-effect head -----------------------------------------------------------
    @property
    def has_call_effect(self) -> bool:
        return self.model.call_effect is not None

    def call_effect(
        self,
        features: pd.DataFrame,
        retention_contacts: pd.DataFrame | None,
        as_of: pd.Timestamp | str,
    ) -> np.ndarray | None:
        """The call effect (contract v1.1: P(churn | no call) - P(churn | call on the next
        day)) of the customers of ``features`` (this model's features as of ``as_of``,
        indexed by customer_id), with their retention history as of ``as_of`` from
        ``retention_contacts`` (None: nobody was ever picked); None for a model without
        a call-effect head."""
        head = self.model.call_effect
        if head is None:
            return None
        history = retention_history_features(
            retention_contacts, as_of=as_of, customer_ids=features.index
        )
        rows = features.copy()
        for column in history.columns:
            rows[column] = history[column].to_numpy()
        return head.predict(rows)

    @staticmethod
    def saved_revenue(effect: np.ndarray, monthly_revenue: np.ndarray, months: float) -> np.ndarray:
        """The revenue a call is expected to keep: call effect x monthly revenue x months
        (NaN where the revenue is unknown)."""
        revenue = np.asarray(monthly_revenue, dtype="float64")
        return np.asarray(effect, dtype="float64") * revenue * float(months)

    # -- score files --------------------------------------------------------------------
    def score_frame(
        self, features: pd.DataFrame, ids: pd.Index | np.ndarray, *, with_reasons: bool = True
    ) -> pd.DataFrame:
        """customer_id, churn_probability, risk_band (and reasons, reason_codes) per row."""
        prediction = self.predict(self.prepare(features), with_reasons=with_reasons)
        scores = pd.DataFrame(
            {
                CUSTOMER_ID: np.asarray(ids),
                "churn_probability": prediction.probability,
                "risk_band": prediction.band,
                "thin_history": prediction.thin_history,
                **self.horizon_columns(prediction.curve),
            }
        )
        if prediction.reasons is not None:
            drivers = prediction.reasons
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
        retention_contacts: pd.DataFrame | None = None,
        months: float = DEFAULT_REVENUE_MONTHS,
    ) -> pd.DataFrame:
        """Scores of every customer active on ``as_of``, from validated contract tables.

        A model with a call-effect head adds ``call_effect`` and ``saved_revenue``
        (call_effect x monthly_revenue x ``months``), reading each customer's retention
        history as of ``as_of`` from ``retention_contacts`` (None: no history); a model
        without one gives the v1 columns only, whatever ``retention_contacts`` holds."""
        as_of = pd.Timestamp(as_of).normalize()
        features = self.model.features_from_tables(customers, interactions, as_of)
        if features.empty:
            raise DataError(f"no customer is active on {as_of:%Y-%m-%d}; pick a later --as-of")
        scores = self.score_frame(features, features.index, with_reasons=with_reasons)
        self.add_call_effect(scores, features, customers, retention_contacts, as_of, months)
        scores["as_of"] = f"{as_of:%Y-%m-%d}"
        return scores

    def add_call_effect(
        self,
        scores: pd.DataFrame,
        features: pd.DataFrame,
        customers: pd.DataFrame,
        retention_contacts: pd.DataFrame | None,
        as_of: pd.Timestamp | str,
        months: float = DEFAULT_REVENUE_MONTHS,
    ) -> None:
        """``call_effect`` and ``saved_revenue`` added to the ``scores`` of the customers of
        ``features`` (same order) when the model has a call-effect head; nothing otherwise.
        The one place both score paths (``score_tables``, the engines' partitions) use."""
        effect = self.call_effect(features, retention_contacts, as_of)
        if effect is not None:
            revenue = _monthly_revenue(customers, features.index)
            scores["call_effect"] = effect
            scores["saved_revenue"] = self.saved_revenue(effect, revenue, months)

    def score_table(self, table: pd.DataFrame, *, with_reasons: bool = True) -> pd.DataFrame:
        """Scores of every row of a customer table (its label column, if present, is ignored)."""
        features = self.model.features_from_table(table)
        id_column = (self.model.table_schema or {}).get("id_column")
        if id_column and id_column in table.columns:
            ids = table[id_column].astype(str).to_numpy()
        else:
            ids = np.arange(len(table))
        scores = self.score_frame(features, ids, with_reasons=with_reasons)
        if id_column:
            scores = scores.rename(columns={CUSTOMER_ID: id_column})
        return scores


def _monthly_revenue(customers: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """The customers' monthly_revenue in the order of ``ids`` (NaN where unknown)."""
    if "monthly_revenue" not in customers:
        return np.full(len(ids), np.nan)
    revenue = pd.to_numeric(customers["monthly_revenue"], errors="coerce")
    revenue.index = customers[CUSTOMER_ID].astype(str).to_numpy()
    return revenue.reindex(np.asarray(ids).astype(str)).to_numpy(dtype="float64")


def _rows(values: Any, rows: slice) -> Any:
    """Some rows of a frame, a matrix or a column getter."""
    if isinstance(values, pd.DataFrame):
        return values.iloc[rows]
    if callable(values):
        return lambda name: values(name)[rows]
    return values[rows]


def _with_thin_history(row: list[dict[str, Any]], line: dict[str, Any], top: int) -> list:
    """``row`` with the little-history context line after its actions and before the other
    context, never cut: when the row is full it takes the place of the weakest reason."""
    actions = [r for r in row if r.get("kind") == "action"]
    context = [r for r in row if r.get("kind") != "action"]
    ordered = [*actions, line, *context]
    return ordered[:top] if line in ordered[:top] else [*ordered[: top - 1], line]
