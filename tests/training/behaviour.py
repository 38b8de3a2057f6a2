"""Changes to one customer's history whose direction the domain knows, for the model's
behaviour tests (``test_behaviour.py``) and ``benchmarks/monotone_bench.py``.

Each change adds one contact on the as-of day to every chosen customer. The added contact
changes only what its name says: a contact without a wait, for instance, leaves the wait
features as they were. (A pending case *with a short wait* also shortens the customer's
mean wait, a fact the model may rightly read as better service: that contact is two
changes, not one.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnml.settings import tracking_uri_for
from features.columns import risk_direction
from model.artifact import ChurnModel
from model.loading import load_model
from model.predictor import Predictor

AS_OF = pd.Timestamp("2026-06-01")
SAMPLE_CUSTOMERS = 300
SEED = 12

# name -> the added contact's fields (the others: a phone contact with nothing known).
CHANGES: dict[str, dict[str, Any]] = {
    "pending case": {"case_id": "new-case", "status": "pending"},
    "unresolved case": {"case_id": "new-case", "status": "unresolved"},
    "escalated case": {"case_id": "new-case", "status": "escalated", "transfers": 2.0},
    "long wait": {"wait_seconds": 3 * 3600.0},
    "abandoned call": {"abandoned": True, "agent_id": None},
    "abandoned after a long wait": {"abandoned": True, "agent_id": None, "wait_seconds": 1800.0},
}


def load_trained(home: Path, uri: str = "models:/churn-risk@champion") -> ChurnModel:
    return load_model(uri, tracking_uri_for(home, None)).model


def chosen_customers(features: pd.DataFrame, *also: str) -> list[str]:
    """A seeded sample of the active customers, and ``also``."""
    ids = features.index.to_numpy()
    rng = np.random.default_rng(SEED)
    picked = rng.choice(ids, min(SAMPLE_CUSTOMERS, len(ids)), replace=False).tolist()
    return picked + [c for c in also if c not in picked and c in features.index]


def with_contact(
    interactions: pd.DataFrame, customer_ids: list[str], change: dict[str, Any]
) -> pd.DataFrame:
    """``interactions`` and one added contact per customer, at 10:00 on the as-of day."""
    base = {
        "interaction_id": None,
        "customer_id": None,
        "started_at": AS_OF + pd.Timedelta(hours=10),
        "channel": "phone",
        "case_id": None,
        "topic": "billing",
        "wait_seconds": np.nan,
        "handle_seconds": np.nan,
        "agent_id": "A-new",
        "transfers": 0.0,
        "abandoned": False,
        "status": None,
        "csat": np.nan,
    }
    rows = []
    for k, customer_id in enumerate(customer_ids):
        row = {**base, **change, "interaction_id": f"added-{k}", "customer_id": customer_id}
        if row["case_id"] is not None:
            row["case_id"] = f"{row['case_id']}-{k}"
        rows.append(row)
    added = pd.DataFrame(rows, columns=list(interactions.columns))
    for column in interactions.columns:
        added[column] = added[column].astype(interactions[column].dtype)
    return pd.concat([interactions, added], ignore_index=True)


def probabilities(
    model: ChurnModel, customers: pd.DataFrame, interactions: pd.DataFrame
) -> pd.Series:
    """The served probability of every customer active on the as-of day, by id."""
    predictor = Predictor(model)
    features = model.features_from_tables(customers, interactions, AS_OF)
    x = predictor.prepare(features)
    return pd.Series(predictor.explain(x).probability, index=features.index)


def change_in_probability(
    model: ChurnModel,
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    change: dict[str, Any],
    *also: str,
) -> pd.Series:
    """Probability after the change minus before, for the chosen customers."""
    before = probabilities(model, customers, interactions)
    ids = chosen_customers(before.to_frame(), *also)
    after = probabilities(model, customers, with_contact(interactions, ids, change))
    return (after - before)[ids]


# Two changes at once: a pending case, and a short wait that lowers the mean wait.
SHORT_WAIT_PENDING = {"case_id": "new-case", "status": "pending", "wait_seconds": 60.0}


def largest_drops(
    model: ChurnModel, customers: pd.DataFrame, interactions: pd.DataFrame
) -> dict[str, float]:
    """Per change, the largest fall of a chosen customer's probability (0: none fell)."""
    changes = {**CHANGES, "pending case with a 60 s wait": SHORT_WAIT_PENDING}
    return {
        name.replace(" ", "_"): max(
            0.0, -float(change_in_probability(model, customers, interactions, change).min())
        )
        for name, change in changes.items()
    }


def against_direction(model: ChurnModel) -> dict[str, float]:
    """The linear term's numeric coefficients whose sign contradicts the feature's known
    direction (empty: none, or no linear term)."""
    if model.blend is None:
        return {}
    return {
        column: values["coef"]
        for column, values in model.blend.linear.numeric.items()
        if values["coef"] * risk_direction(column) < 0
    }


def trees_falling(model: ChurnModel, customers: pd.DataFrame, interactions: pd.DataFrame) -> int:
    """(customer, feature) pairs of the chosen customers where raising one feature of known
    direction (to 1 + 2 x its value) moves the trees' raw score against that direction by
    more than 1e-9. Missing values are left alone (the constraint orders numbers only)."""
    predictor = Predictor(model)
    features = model.features_from_tables(customers, interactions, AS_OF)
    x = predictor.prepare(features.loc[chosen_customers(features)])
    booster = model.booster

    def raw(frame: pd.DataFrame) -> np.ndarray:
        return booster.predict(frame, num_iteration=booster.best_iteration or None, raw_score=True)

    base = raw(x)
    falling = 0
    for column in model.feature_names:
        direction = risk_direction(column)
        if direction == 0:
            continue
        raised = x.copy()
        known = raised[column].notna()
        raised.loc[known, column] = 1.0 + 2.0 * raised.loc[known, column].abs()
        moved = (raw(raised) - base) * direction
        falling += int((moved[known.to_numpy()] < -1e-9).sum())
    return falling
