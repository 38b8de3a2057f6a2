"""Customers with less history than the feature windows are flagged ``thin_history`` in
every output, computed once (``model.predictor.Prediction``): ``churnml score``, the risk
list (store, export, the service's list reader) and the reasons' first line."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.cli import main
from churnml.validation import load_tables
from features import FeatureSettings, thin_history
from features.reasons import THIN_HISTORY_CODE, thin_history_reason
from serving.lists import Filters, Lists
from serving.loading import load_served_model
from serving.risklist import export_frame, make_risk_list
from serving.settings import RiskListSettings
from serving.store import SCHEMA_VERSION, RiskListStore
from tests.serving.helpers import AS_OF, SAMPLE, environment, service_env

LINE = r"joined (\d+ days? ago|today): little history yet"

LONGEST = max(FeatureSettings().windows)
LIST_DAY = dt.date(2026, 6, 10)


def expected_thin(customers: pd.DataFrame, day: pd.Timestamp) -> set[str]:
    """The active customers of ``day`` who joined fewer than LONGEST days before it."""
    active = (customers["signup_date"] <= day) & (
        customers["churned_at"].isna() | (customers["churned_at"] > day)
    )
    new = (day - customers["signup_date"]).dt.days < LONGEST
    return set(customers.loc[active & new, "customer_id"])


@pytest.fixture(scope="module")
def tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


@pytest.mark.parametrize(
    ("tenure", "thin"), [(0.0, True), (LONGEST - 1.0, True), (LONGEST, False), (np.nan, False)]
)
def test_thin_history_is_less_tenure_than_the_longest_window(tenure, thin):
    assert thin_history(np.array([tenure]), FeatureSettings()).tolist() == [thin]


def test_the_longest_window_of_the_settings_decides():
    settings = FeatureSettings(windows=(7, 30, 180))
    assert thin_history(np.array([120.0]), settings).tolist() == [True]


@pytest.mark.parametrize(
    ("tenure", "text"),
    [
        (23.0, "joined 23 days ago: little history yet"),
        (1.0, "joined 1 day ago: little history yet"),
        (0.0, "joined today: little history yet"),
    ],
)
def test_the_reason_says_how_new_the_customer_is(tenure, text):
    reason = thin_history_reason(tenure)
    assert reason["text"] == text and reason["code"] == THIN_HISTORY_CODE


def test_churnml_score_flags_new_customers_and_says_so(registry_home, tables, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    with environment(service_env(registry_home)):
        with pytest.raises(SystemExit) as exited:
            main(
                [
                    "score",
                    "--customers",
                    str(SAMPLE / "customers.csv"),
                    "--interactions",
                    str(SAMPLE / "interactions.csv"),
                    "--as-of",
                    AS_OF,
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
    assert exited.value.code == 0, capsys.readouterr().err
    scores = pd.read_csv(out, keep_default_na=False)
    thin = expected_thin(tables.customers, pd.Timestamp(AS_OF))
    assert len(thin) > 50
    flagged = scores["thin_history"].astype(bool)
    assert set(scores.loc[flagged, "customer_id"]) == thin
    said = (
        scores["reasons"]
        .str.split("; ")
        .map(lambda texts: sum(bool(re.fullmatch(LINE, text)) for text in texts))
    )
    assert (said[flagged] == 1).all()  # the little-history line, once, among the reasons
    assert scores.loc[flagged, "reason_codes"].str.contains(THIN_HISTORY_CODE).all()
    assert not scores.loc[~flagged, "reasons"].str.contains("little history").any()


def test_the_risk_list_flags_them_in_the_store_the_export_and_the_reader(
    registry_home, tables, tmp_path
):
    url = f"sqlite:///{tmp_path / 'lists.db'}"
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )
    result = make_risk_list(
        tables.customers,
        tables.interactions,
        LIST_DAY,
        served,
        RiskListStore(url),
        RiskListSettings(capacity=3000),
    )
    thin = expected_thin(tables.customers, pd.Timestamp(LIST_DAY))
    exported = export_frame(result)
    assert set(exported.loc[exported["thin_history"], "customer_id"]) == thin
    assert (
        exported.loc[exported["thin_history"], ["reason_1", "reason_2", "reason_3"]]
        .fillna("")
        .apply(lambda row: any(str(text).endswith("little history yet") for text in row), axis=1)
        .all()
    )
    with sqlite3.connect(tmp_path / "lists.db") as conn:
        stored = {
            r[0] for r in conn.execute("SELECT customer_id FROM risk_list_rows WHERE thin_history")
        }
    assert stored == thin
    lists = Lists(tmp_path, url)
    page = lists.page(Filters(scope="all"), 5000)
    assert {r["customer_id"] for r in page["rows"] if r["thin_history"]} == thin
    one = sorted(thin)[0]
    scores = lists.scores([one])["scores"]
    assert scores[0]["thin_history"] is True
    codes = [r["code"] for r in scores[0]["reasons"]]
    assert THIN_HISTORY_CODE in codes
    kinds = [r["kind"] for r in scores[0]["reasons"]]
    assert kinds == sorted(kinds)  # actions first, then the history line and other context
    # The action comes from the drivers, not from the history line.
    assert all(r["action"] for r in page["rows"])


def test_a_v1_store_gets_the_column_and_keeps_its_lists(tmp_path: Path):
    path = tmp_path / "old.db"
    RiskListStore(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # make it a v1 store: no thin_history yet
        conn.execute("ALTER TABLE risk_list_rows DROP COLUMN thin_history")
        conn.execute("UPDATE store_meta SET value = '1' WHERE key = 'schema_version'")
    RiskListStore(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(risk_list_rows)")}
        version = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'")
        assert "thin_history" in columns and version.fetchone()[0] == SCHEMA_VERSION
