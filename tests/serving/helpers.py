"""A trained, promoted churn model in a throwaway registry, shared by the serving tests.

Training on the committed sample world takes about 20 s; it runs once per test session
(``trained_home``) and every serving test, unit or integration, reads the same registry.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
AS_OF = "2026-06-01"
API_KEY = "test-api-key-0123456789abcdef"
ADMIN_KEY = "test-admin-key-0123456789abcdef"


@functools.cache
def trained_home() -> Path:
    """A CHURNML_HOME whose SQLite registry holds churn-risk v1 as champion, trained as
    ``./run.sh`` trains it: with the sample's retention contacts (the churn target leaves
    out the rows a call changed)."""
    from churnml.validation import load_tables
    from training import TrainingSettings, promote, train_from_tables

    home = Path(tempfile.mkdtemp(prefix="churnml-serving-"))
    tables = load_tables(
        SAMPLE / "customers.csv",
        SAMPLE / "interactions.csv",
        retention_contacts_path=SAMPLE / "retention_contacts.csv",
    )
    settings = TrainingSettings(home=home, backtest_folds=1)
    result = train_from_tables(
        tables.customers,
        tables.interactions,
        settings,
        retention_contacts=tables.retention_contacts,
    )
    if result.champion_version is None:
        promote(result.model_version, settings, reason="serving tests")
    return home


def service_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        "CHURNML_HOME": str(home),
        "CHURNML_API_KEYS": API_KEY,
        "CHURNML_ADMIN_KEYS": ADMIN_KEY,
    }
    env.update(extra)
    return env


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@functools.cache
def _sample_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    customers = pd.read_csv(SAMPLE / "customers.csv", dtype=str, keep_default_na=False)
    interactions = pd.read_csv(SAMPLE / "interactions.csv", dtype=str, keep_default_na=False)
    interactions = interactions[interactions["started_at"] < "2026-06-02"]
    active = (customers["signup_date"] <= AS_OF) & (
        (customers["churned_at"] == "") | (customers["churned_at"] > AS_OF)
    )
    return customers[active].reset_index(drop=True), interactions


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v == "" else v) for k, v in record.items()}


def payload_customers(
    count: int, *, offset: int = 0, min_contacts: int = 5
) -> list[dict[str, Any]]:
    """``count`` active customers of the sample world with their contacts, as JSON objects."""
    customers, interactions = _sample_tables()
    per_customer = interactions["customer_id"].value_counts()
    busy = customers[customers["customer_id"].map(per_customer).fillna(0) >= min_contacts]
    chosen = busy.iloc[offset : offset + count]
    grouped = {k: g for k, g in interactions.groupby("customer_id")}
    out = []
    for record in chosen.to_dict("records"):
        customer = _clean(record)
        customer.pop("churned_at", None)
        if customer.get("monthly_revenue") is not None:
            customer["monthly_revenue"] = float(customer["monthly_revenue"])
        contacts = grouped[customer["customer_id"]].drop(columns=["customer_id"])
        customer["interactions"] = [_clean(r) for r in contacts.to_dict("records")]
        out.append(customer)
    return json.loads(json.dumps(out))
