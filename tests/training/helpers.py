"""Small shared helpers for the training tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnml.validation import load_tables
from features import visible_end


def load_world(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validated customers and interactions of a simulator world folder."""
    tables = load_tables(folder / "customers.csv", folder / "interactions.csv")
    return tables.customers, tables.interactions


def simple_builder(
    customers: pd.DataFrame, interactions: pd.DataFrame, days: list[pd.Timestamp]
) -> dict[pd.Timestamp, pd.DataFrame]:
    """A small stand-in for features.build_feature_snapshots: a few point-in-time counts.

    Passed to ``train_from_tables(builder=...)`` where a test is about training, not
    about the feature set; it follows the contract's point-in-time rule.
    """
    result = {}
    ids = customers["customer_id"]
    for day in days:
        end = visible_end(day)
        active = (customers["signup_date"] <= day) & (
            customers["churned_at"].isna() | (customers["churned_at"] > day)
        )
        frame = pd.DataFrame(index=pd.Index(ids[active].to_numpy(), name="customer_id"))
        seen = interactions[interactions["started_at"] < end]
        for window in (7, 30, 90):
            recent = seen[seen["started_at"] >= end - pd.Timedelta(days=window)]
            frame[f"contacts_{window}d"] = (
                recent["customer_id"].value_counts().reindex(frame.index).fillna(0.0)
            )
            bad = recent[recent["status"].isin(["unresolved", "escalated"])]
            frame[f"unresolved_contacts_{window}d"] = (
                bad["customer_id"].value_counts().reindex(frame.index).fillna(0.0)
            )
            frame[f"wait_mean_seconds_{window}d"] = (
                recent.groupby("customer_id")["wait_seconds"].mean().reindex(frame.index)
            )
            frame[f"csat_mean_{window}d"] = (
                recent.groupby("customer_id")["csat"].mean().reindex(frame.index)
            )
        signup = customers.loc[active, "signup_date"].to_numpy()
        frame["tenure_days"] = (day - pd.DatetimeIndex(signup)).days.to_numpy(dtype="float64")
        frame["monthly_revenue"] = customers.loc[active, "monthly_revenue"].to_numpy()
        for column in ("segment", "plan"):
            frame[column] = pd.Categorical(
                customers.loc[active, column].astype("object").to_numpy()
            )
        result[day] = frame
    return result
