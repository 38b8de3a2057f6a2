"""Tiny typed tables for feature tests, written as the validated contract frames look."""

from __future__ import annotations

import numpy as np
import pandas as pd

AS_OF = "2024-03-31"


def customers(*rows: dict) -> pd.DataFrame:
    """Customers; every row defaults to an active customer since 2023-01-01."""
    rows = rows or ({"customer_id": "C1"},)
    base = {
        "signup_date": "2023-01-01",
        "churned_at": None,
        "segment": "consumer",
        "plan": "basic",
        "monthly_revenue": 10.0,
    }
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["customer_id"] = frame["customer_id"].astype("str")
    for column in ("signup_date", "churned_at"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[ns]")
    for column in ("segment", "plan"):
        frame[column] = frame[column].astype("str")
    frame["monthly_revenue"] = frame["monthly_revenue"].astype(float)
    return frame


def interactions(*rows: dict) -> pd.DataFrame:
    """Contacts; every row defaults to a phone contact of C1 with nothing else known."""
    base = {
        "interaction_id": None,
        "customer_id": "C1",
        "started_at": "2024-03-30 10:00",
        "channel": "phone",
        "case_id": None,
        "topic": None,
        "wait_seconds": np.nan,
        "handle_seconds": np.nan,
        "agent_id": None,
        "transfers": np.nan,
        "abandoned": np.nan,
        "status": None,
        "csat": np.nan,
    }
    frame = pd.DataFrame([{**base, **row} for row in rows], columns=list(base))
    frame["interaction_id"] = [f"I{i}" for i in range(len(frame))]
    frame["started_at"] = pd.to_datetime(frame["started_at"], format="ISO8601").astype(
        "datetime64[ns]"
    )
    for column in (
        "interaction_id",
        "customer_id",
        "channel",
        "case_id",
        "topic",
        "agent_id",
        "status",
    ):
        frame[column] = frame[column].astype("str")
    for column in ("wait_seconds", "handle_seconds", "transfers", "abandoned", "csat"):
        frame[column] = frame[column].astype(float)
    return frame
