"""From a request's customers to scores with reasons: the work behind ``POST /score``.

``Scorer.score(customers, as_of)`` builds the contract tables from the request (typed as
``churnml.validation`` types files), checks the rules across rows, builds features with
the same ``features.build_features`` as training and batch scoring, and scores:

* one tree traversal per row (``pred_leaf``) gives both the probability and the reasons:
  the per-leaf path attributions of ``features.reasons`` add up to the raw score, so the
  probability is ``calibrator(sigmoid(bias + sum of shares))``;
* features go to the booster as one float matrix (categories as the booster's codes),
  avoiding a DataFrame round trip per request.

Problems a caller can fix raise ``RequestProblems`` (answered 422 with every field path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churnml.io import TEXT
from features.build import build_features
from features.model import ChurnModel
from features.reasons import REASONS_PER_CUSTOMER, next_step
from features.settings import FeatureSettings
from serving.schemas import Customer

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class RequestProblems(Exception):
    """Rules across rows that the request breaks; each names its field path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        where = ".".join(str(part) for part in first.loc)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{where}: {first.msg}{more}")


def check_rows(customers: Sequence[Customer], as_of: dt.date) -> list[Problem]:
    """The contract's rules across rows (``churnml.validation``'s unique ids and timeline
    rules) plus the service's own: every customer active on as_of, no contact after it."""
    problems: list[Problem] = []
    seen_customers: dict[str, int] = {}
    seen_contacts: dict[str, tuple[int, int]] = {}
    end_of_day = dt.datetime.combine(as_of, dt.time()) + dt.timedelta(days=1)
    for i, customer in enumerate(customers):
        here = ("customers", i)
        if customer.customer_id in seen_customers:
            problems.append(
                Problem(
                    (*here, "customer_id"),
                    f"customer_id {customer.customer_id!r} repeats "
                    f"customers[{seen_customers[customer.customer_id]}]; "
                    "expected each customer_id once",
                    "duplicate",
                )
            )
        else:
            seen_customers[customer.customer_id] = i
        signup, churned = customer.signup_date, customer.churned_at
        if churned is not None and churned < signup:
            problems.append(
                Problem(
                    (*here, "churned_at"),
                    f"churned_at {churned} is before signup_date {signup}; expected "
                    "churned_at on or after signup_date",
                    "timeline",
                )
            )
        if signup > as_of:
            problems.append(
                Problem(
                    (*here, "signup_date"),
                    f"signup_date {signup} is after as_of {as_of}; the customer is "
                    "not a customer yet on as_of",
                    "not_active",
                )
            )
        if churned is not None and churned <= as_of:
            problems.append(
                Problem(
                    (*here, "churned_at"),
                    f"the customer left on {churned}, on or before as_of {as_of}; "
                    "score only current customers",
                    "not_active",
                )
            )
        signup_start = dt.datetime.combine(signup, dt.time())
        churn_end = (
            None
            if churned is None
            else dt.datetime.combine(churned, dt.time()) + dt.timedelta(days=1)
        )
        for j, contact in enumerate(customer.interactions):
            at = (*here, "interactions", j)
            if contact.interaction_id in seen_contacts:
                first = seen_contacts[contact.interaction_id]
                problems.append(
                    Problem(
                        (*at, "interaction_id"),
                        f"interaction_id {contact.interaction_id!r} repeats "
                        f"customers[{first[0]}].interactions[{first[1]}]; "
                        "expected each interaction_id once",
                        "duplicate",
                    )
                )
            else:
                seen_contacts[contact.interaction_id] = (i, j)
            started = contact.started_at
            if started >= end_of_day:
                problems.append(
                    Problem(
                        (*at, "started_at"),
                        f"started_at {started.isoformat()} is after as_of {as_of}; "
                        "send contacts up to the end of the as_of day only",
                        "after_as_of",
                    )
                )
            if started < signup_start:
                problems.append(
                    Problem(
                        (*at, "started_at"),
                        f"started_at {started.isoformat()} is before the customer's "
                        f"signup_date {signup}; expected started_at on or after it",
                        "timeline",
                    )
                )
            elif churn_end is not None and started >= churn_end:
                problems.append(
                    Problem(
                        (*at, "started_at"),
                        f"started_at {started.isoformat()} is after the customer's "
                        f"churned_at day {churned}",
                        "timeline",
                    )
                )
            if len(problems) >= MAX_PROBLEMS:
                return problems
    return problems


def _datetimes(values: list[Any]) -> np.ndarray:
    return np.array(values, dtype="datetime64[us]").astype("datetime64[ns]")


def _moments(values: list[dt.datetime]) -> np.ndarray:
    """UTC-naive datetimes (pydantic's ``Moment``) as datetime64[ns]; pyarrow converts
    them ~6x faster than ``np.array(..., dtype="datetime64[us]")``."""
    micro = pa.array(values, type=pa.timestamp("us")).to_numpy(zero_copy_only=False)
    return micro.astype("datetime64[ns]")


def _numbers(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")


def _texts(values: list[str | None]) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.array(values, type=pa.string()), dtype=TEXT)


def tables(
    customers: Sequence[Customer], profile_columns: Sequence[str], categorical_profile: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The request as the contract's typed tables (the dtypes of ``churnml.validation``)."""
    customer_frame: dict[str, Any] = {
        "customer_id": pd.array([c.customer_id for c in customers], dtype=TEXT),
        "signup_date": _datetimes([c.signup_date for c in customers]),
        "churned_at": _datetimes([c.churned_at for c in customers]),
        "segment": pd.array([c.segment for c in customers], dtype=TEXT),
        "plan": pd.array([c.plan for c in customers], dtype=TEXT),
        "monthly_revenue": _numbers([c.monthly_revenue for c in customers]),
    }
    for name in profile_columns:
        values = [(c.model_extra or {}).get(name) for c in customers]
        if name in categorical_profile:
            customer_frame[name] = pd.array(
                [None if v is None else _profile_text(v) for v in values], dtype=TEXT
            )
        else:
            customer_frame[name] = np.array([_profile_number(v) for v in values], dtype="float64")
    # One flat list of contacts, then one comprehension per column: a loop per contact
    # appending to 13 lists cost ~4 ms for 2,000 contacts.
    contacts = [contact for customer in customers for contact in customer.interactions]
    owners = [customer.customer_id for customer in customers for _ in customer.interactions]
    interaction_frame: dict[str, Any] = {
        "interaction_id": _texts([c.interaction_id for c in contacts]),
        "customer_id": _texts(owners),
        "started_at": _moments([c.started_at for c in contacts]),
        "channel": _texts([c.channel for c in contacts]),
        "case_id": _texts([c.case_id for c in contacts]),
        "topic": _texts([c.topic for c in contacts]),
        "wait_seconds": _numbers([c.wait_seconds for c in contacts]),
        "handle_seconds": _numbers([c.handle_seconds for c in contacts]),
        "agent_id": _texts([c.agent_id for c in contacts]),
        "transfers": _numbers([c.transfers for c in contacts]),
        "abandoned": _numbers([c.abandoned for c in contacts]),
        "status": _texts([c.status for c in contacts]),
        "csat": _numbers([c.csat for c in contacts]),
    }
    return pd.DataFrame(customer_frame), pd.DataFrame(interaction_frame)


def _profile_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _profile_number(value: Any) -> float:
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return np.nan


class Scorer:
    """Scores requests with one ``ChurnModel``; built once per loaded model."""

    def __init__(self, model: ChurnModel, *, name: str, version: str) -> None:
        self.model = model
        self.name = name
        self.version = version
        self.feature_settings = FeatureSettings.from_dict(model.feature_settings or {})
        self.profile_columns = tuple(self.feature_settings.profile_columns or ())
        self.categorical_profile = {
            c[len("profile_") :] for c in model.categories if c.startswith("profile_")
        }
        self.attributions = model.attributions
        self.explainer = model.explainer
        self._categorical = [c for c in model.feature_names if c in model.categories]
        names = list(model.feature_names)
        self._numeric = [c for c in names if c not in model.categories]
        self._numeric_positions = [names.index(c) for c in self._numeric]
        self._categorical_positions = [names.index(c) for c in self._categorical]
        booster_categories = getattr(model.booster, "pandas_categorical", None) or []
        # The matrix path needs the booster's category codes to be the features' codes.
        self.matrix_ok = len(booster_categories) == len(self._categorical) and all(
            list(map(str, cats)) == list(model.categories[c])
            for c, cats in zip(self._categorical, booster_categories, strict=False)
        )

    def features(self, customers: Sequence[Customer], as_of: dt.date) -> pd.DataFrame:
        customer_table, interaction_table = tables(
            customers, self.profile_columns, self.categorical_profile
        )
        return build_features(
            customer_table, interaction_table, pd.Timestamp(as_of), self.feature_settings
        )

    def matrix(self, features: pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """Features as the booster reads them, in the model's column order."""
        if not self.matrix_ok:
            return self.model.prepare(features)
        out = np.empty((len(features), len(self.model.feature_names)), dtype=np.float64)
        out[:, self._numeric_positions] = features[self._numeric].to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        for j, column in zip(self._categorical_positions, self._categorical, strict=True):
            values = features[column]
            known = self.model.categories[column]
            if (
                isinstance(values.dtype, pd.CategoricalDtype)
                and list(values.cat.categories) == known
            ):
                codes = values.cat.codes.to_numpy().astype(np.float64)
            else:
                codes = pd.Categorical(
                    values.astype("object").where(values.notna(), None), categories=known
                ).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        return out

    def score(
        self, customers: Sequence[Customer], as_of: dt.date, *, top: int = REASONS_PER_CUSTOMER
    ) -> list[dict[str, Any]]:
        problems = check_rows(customers, as_of)
        if problems:
            raise RequestProblems(problems)
        features = self.features(customers, as_of)
        ids = [c.customer_id for c in customers]
        features = features.reindex(pd.Index(ids, dtype=features.index.dtype))
        x = self.matrix(features)
        contributions = self.attributions.explain_rows(self.model.booster, x)
        raw = 1.0 / (1.0 + np.exp(-(self.attributions.bias + contributions.sum(axis=1))))
        probability = self.model.calibrator.predict(raw)
        bands = self.model.risk_band(probability)
        reasons = self.explainer.explain(contributions, features, top)
        day = as_of.isoformat()
        return [
            {
                "customer_id": ids[row],
                "churn_probability": float(probability[row]),
                "risk_band": str(bands[row]),
                "reasons": reasons[row],
                "action": next_step([r["family"] for r in reasons[row]], str(bands[row])),
                "model_name": self.name,
                "model_version": self.version,
                "as_of": day,
            }
            for row in range(len(ids))
        ]
