"""A retention team planted in the sample world, for the call-effect tests.

``picks_with_planted_effect`` draws the team's picks (random active customers every few
days, 20% held out as control) and plants a known effect: a treated consumer who would
have churned within the horizon stays with probability ``saved`` (business customers:
no effect). The customers table comes back with those churn days cleared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HORIZON = 30


def picks_with_planted_effect(
    customers: pd.DataFrame,
    *,
    first: str = "2025-07-01",
    last: str = "2026-05-20",
    every_days: int = 2,
    per_day: int = 40,
    control_share: float = 0.2,
    saved: float = 0.8,
    seed: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(customers with the prevented churn cleared, retention_contacts)."""
    rng = np.random.default_rng(seed)
    customers = customers.copy()
    rows = []
    for c in pd.date_range(first, last, freq=f"{every_days}D"):
        d = c - pd.Timedelta(days=1)
        churned = customers["churned_at"]
        active = np.flatnonzero(
            ((customers["signup_date"] <= d) & (churned.isna() | (churned > d))).to_numpy()
        )
        chosen = rng.choice(active, size=min(per_day, len(active)), replace=False)
        control = rng.random(len(chosen)) < control_share
        for position, held in zip(chosen, control, strict=True):
            rows.append((customers["customer_id"].iloc[position], c, held))
            leaves = customers["churned_at"].iloc[position]
            consumer = customers["segment"].iloc[position] == "consumer"
            within = pd.notna(leaves) and d < leaves <= d + pd.Timedelta(days=HORIZON)
            if not held and consumer and within and rng.random() < saved:
                customers.iloc[position, customers.columns.get_loc("churned_at")] = pd.NaT
    contacts = pd.DataFrame(rows, columns=["customer_id", "contacted_at", "control"])
    contacts["group"] = np.where(contacts.pop("control"), "control", "treated")
    contacts["outcome"] = np.where(contacts["group"] == "treated", "reached", None)
    contacts["customer_id"] = contacts["customer_id"].astype("string")
    contacts["outcome"] = contacts["outcome"].astype("string")
    contacts = contacts.drop_duplicates(["customer_id", "contacted_at"]).reset_index(drop=True)
    return customers, contacts
