"""The churn model's target is the risk without a call: customers a call kept do not teach
it that customers like them stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.loading import load_model
from model.predictor import Predictor
from tests.training.helpers import load_world, simple_builder
from training import TrainingSettings, train_from_tables

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = pytest.mark.slow


def _with_saved_clones(
    customers: pd.DataFrame, interactions: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The world plus a copy of each customer who churned in the training period, whose
    churn a retention call ten days before prevented; and the originals (uncalled)."""
    churned = customers["churned_at"]
    chosen = customers[
        (churned >= "2025-08-01")
        & (churned <= "2026-04-15")
        & (customers["signup_date"] < churned - pd.Timedelta(days=15))
    ]
    clones = chosen.copy()
    clones["customer_id"] = "K" + clones["customer_id"].astype(str)
    clones["churned_at"] = pd.NaT
    contacts = interactions[interactions["customer_id"].isin(chosen["customer_id"])].copy()
    contacts["customer_id"] = "K" + contacts["customer_id"].astype(str)
    contacts["interaction_id"] = "K" + contacts["interaction_id"].astype(str)
    calls = pd.DataFrame(
        {
            "customer_id": clones["customer_id"].astype("string").to_numpy(),
            "contacted_at": (chosen["churned_at"] - pd.Timedelta(days=10)).to_numpy(),
            "group": "treated",
            "outcome": pd.Series("accepted_offer", index=range(len(clones)), dtype="string"),
        }
    )
    world = pd.concat([customers, clones], ignore_index=True)
    logs = pd.concat([interactions, contacts], ignore_index=True)
    return world, logs, calls, chosen


def _risk_of_originals(result, settings, customers, interactions, chosen) -> float:
    """Mean risk the model gives the uncalled originals 15 days before they left."""
    predictor = Predictor(load_model(result.model_uri, settings.resolved_tracking_uri()).model)
    risks = []
    for day, group in chosen.groupby(chosen["churned_at"] - pd.Timedelta(days=15)):
        frame = simple_builder(customers, interactions, [day])[day]
        rows = frame.loc[group["customer_id"].astype(str)]
        risks.append(predictor.probability(predictor.prepare(rows)))
    return float(np.mean(np.concatenate(risks)))


def test_customers_a_call_kept_do_not_lower_the_risk_of_similar_uncalled_ones(
    tmp_path: Path,
) -> None:
    customers, interactions = load_world(SAMPLE)
    world, logs, calls, chosen = _with_saved_clones(customers, interactions)
    settings = TrainingSettings(
        home=tmp_path, backtest_folds=1, tuning_budget_seconds=0, refit="off", blend="none"
    )

    def risk(customers_, interactions_, contacts) -> float:
        result = train_from_tables(
            customers_,
            interactions_,
            settings,
            builder=simple_builder,
            retention_contacts=contacts,
        )
        return _risk_of_originals(result, settings, customers, interactions, chosen)

    without_clones = risk(customers, interactions, None)
    with_clones = risk(world, logs, calls)
    contaminated = risk(world, logs, None)  # the saved clones' labels taken as churn-free
    assert with_clones >= 0.9 * without_clones
    assert contaminated < 0.8 * without_clones  # the test can see the harm it guards against
