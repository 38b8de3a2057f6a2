"""The daily risk list on the sample world, with a real SQLite store: ranking, capacity,
changes and departures, suppression, drift flags, idempotency, a crash in the middle of a
run, and two runs at once."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.validation import load_tables
from serving.risklist import make_risk_list
from serving.settings import RiskListSettings
from serving.store import RiskListStore
from tests.serving.helpers import SAMPLE

DAY1 = dt.date(2026, 6, 10)
DAY2 = dt.date(2026, 6, 17)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


def make(tables, served, store, day, **kwargs):
    settings = kwargs.pop("settings", RiskListSettings(capacity=50))
    customers = kwargs.pop("customers", tables.customers)
    interactions = kwargs.pop("interactions", tables.interactions)
    return make_risk_list(customers, interactions, day, served, store, settings, **kwargs)


def count(store: RiskListStore, sql: str) -> int:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


def test_the_list_ranks_by_revenue_at_risk_within_capacity(tables, served, store) -> None:
    result = make(tables, served, store, DAY1)
    frame = result.frame
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    assert int(frame["on_list"].sum()) == 50 and frame["on_list"].iloc[:50].all()
    known = frame["monthly_revenue"].notna()
    expected = frame["churn_probability"] * frame["monthly_revenue"] * 12
    assert np.allclose(frame.loc[known, "revenue_at_risk"], expected[known])
    key = frame["churn_probability"] * frame["monthly_revenue"].fillna(
        frame["monthly_revenue"].median()
    )
    assert (np.diff(key.to_numpy()) <= 1e-12).all()  # descending
    assert set(frame["risk_band"]) <= {"high", "medium", "low"}
    assert all(1 <= len(r) <= 3 for r in frame.loc[frame["on_list"], "reasons"])
    assert (frame.loc[frame["on_list"], "change"] == "new").all()
    # Stored: every scored customer, the header, and the run.
    assert count(store, "select count(*) from risk_list_rows") == len(frame)
    header = store.header(f"{DAY1}")
    assert header["model_version"] == served.version and header["on_list"] == 50
    assert header["fingerprint"]["customers_rows"] == len(tables.customers)


def test_probability_ranking_is_by_probability(tables, served, store) -> None:
    settings = RiskListSettings(capacity=20, rank_by="probability")
    frame = make(tables, served, store, DAY1, settings=settings).frame
    assert (np.diff(frame["churn_probability"].to_numpy()) <= 0).all()


def test_the_second_day_says_what_changed_and_who_left(tables, served, store) -> None:
    first = make(tables, served, store, DAY1).frame.set_index("customer_id")
    result = make(tables, served, store, DAY2)
    second = result.frame.set_index("customer_id")
    assert result.header["previous_date"] == f"{DAY1}"
    on = second[second["on_list"]]
    was_on = set(first.index[first["on_list"]])
    for customer, row in on.iterrows():
        if customer not in was_on:
            assert row["change"] == "new"
            continue
        delta = row["churn_probability"] - first.at[customer, "churn_probability"]
        expected = "risen" if delta >= 0.01 else "fallen" if delta <= -0.01 else "steady"
        assert row["change"] == expected, customer
        assert row["previous_rank"] == first.at[customer, "rank"]
    left = was_on - set(on.index)
    assert set(result.departures["customer_id"]) == left and left
    for departure in result.departures.itertuples():
        if departure.customer_id in second.index:
            assert departure.rank == second.at[departure.customer_id, "rank"] > 50
            assert "below the capacity" in departure.why
        else:
            assert departure.why.startswith(("churned on", "not active"))
    stored = store.departures(result.list_id)
    assert {d["customer_id"] for d in stored} == left


def test_rerunning_a_day_replaces_it_and_keeps_the_history(tables, served, store) -> None:
    make(tables, served, store, DAY1)
    again = make(tables, served, store, DAY1, settings=RiskListSettings(capacity=10))
    assert store.dates() == [f"{DAY1}"]
    assert count(store, "select count(*) from risk_list_rows") == len(again.frame)
    assert store.header(f"{DAY1}")["on_list"] == 10
    runs = store.runs(f"{DAY1}")
    assert [r["replaced_list"] for r in runs] == [True, False]  # newest first
    assert all(r["model_version"] == served.version for r in runs)


def test_suppressed_customers_are_marked_not_dropped(tables, served, store, tmp_path) -> None:
    base = make(tables, served, store, DAY1).frame
    top = base["customer_id"].iloc[:5].tolist()
    suppression = pd.DataFrame(
        {
            "customer_id": [*top[:3], top[3], "nobody"],
            "contacted_at": ["2026-06-09", "2026-06-01", "2026-05-28", "2026-04-01", "2026-06-09"],
        }
    )
    settings = RiskListSettings(capacity=50, suppress_days=14)
    result = make(tables, served, store, DAY1, settings=settings, retention_contacts=suppression)
    frame = result.frame.set_index("customer_id")
    assert frame.loc[top[:3], "suppressed"].all()  # 1, 9 and 13 days before
    assert not frame.at[top[3], "suppressed"]  # 70 days before: too long ago
    assert frame.at[top[3], "last_contacted"] == "2026-04-01"
    assert frame.loc[top[:3], "on_list"].all()
    on = frame[frame["on_list"]]
    assert len(on) == 53 and int((~on["suppressed"]).sum()) == 50
    assert any("not scored" in note for note in result.notes)  # "nobody": said, not hidden


def test_drift_flags_moved_features_and_bands(tables, served, store) -> None:
    calm = make(tables, served, store, DAY1)
    assert "wait_mean_seconds_30d" in calm.header["drift"]["psi"]
    assert calm.header["drift"]["psi"]["wait_mean_seconds_30d"] < 0.25
    slow = tables.interactions.copy()
    slow["wait_seconds"] = slow["wait_seconds"] * 6 + 600
    moved = make(tables, served, store, DAY2, interactions=slow)
    drift = moved.header["drift"]
    assert "wait_mean_seconds_30d" in drift["psi_over"]
    assert drift["psi"]["wait_mean_seconds_30d"] > 0.25
    assert moved.header["drift_warning"] and any(
        "how long customers wait" in w for w in drift["warnings"]
    )
    # Every customer waiting much longer moves the bands against the last lists.
    assert any("band holds" in w for w in drift["warnings"]), drift["warnings"]
    assert store.header(f"{DAY2}")["drift_warning"]


def test_the_store_needs_its_schema_and_a_real_url(tmp_path: Path) -> None:
    from churnml.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="SQLAlchemy URL"):
        RiskListStore("nonsense://x")
    with pytest.raises(DataError, match="run `churnml risk-list` first"):
        RiskListStore(f"sqlite:///{tmp_path / 'none.db'}", create=False)


CRASHING_RUN = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from churnml.validation import load_tables
    from serving.loading import load_served_model
    from serving.risklist import make_risk_list
    from serving.settings import RiskListSettings
    from serving.store import RiskListStore

    sample, tracking, url, crash = sys.argv[1:5]
    tables = load_tables(sample + "/customers.csv", sample + "/interactions.csv")
    served = load_served_model("models:/churn-risk@champion", tracking)

    def die(rows):
        if crash == "yes":
            os.kill(os.getpid(), signal.SIGKILL)  # a real crash, mid-transaction

    make_risk_list(tables.customers, tables.interactions, dt.date(2026, 6, 10), served,
                   RiskListStore(url), RiskListSettings(capacity=7), after_chunk=die)
    """
)


def run_job(registry_home: Path, url: str, crash: str) -> subprocess.Popen:
    tracking = f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    return subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(SAMPLE), tracking, url, crash],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("pragma integrity_check").fetchone()[0]


def test_a_crash_in_the_middle_leaves_the_previous_list(
    tables, served, registry_home, tmp_path
) -> None:
    path = tmp_path / "lists.db"
    store = RiskListStore(f"sqlite:///{path}")
    before = make(tables, served, store, DAY1)  # capacity 50
    process = run_job(registry_home, f"sqlite:///{path}", "yes")
    assert process.wait(timeout=300) == -9, process.stderr.read().decode()[-2000:]
    assert integrity(path) == "ok"
    after = RiskListStore(f"sqlite:///{path}")
    assert after.header(f"{DAY1}")["on_list"] == 50
    assert count(after, "select count(*) from risk_list_rows") == len(before.frame)
    assert len(after.runs()) == 1
    # And the next run goes through.
    process = run_job(registry_home, f"sqlite:///{path}", "no")
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()[-2000:]
    assert after.header(f"{DAY1}")["on_list"] == 7


def test_two_runs_at_once_do_not_corrupt_the_store(registry_home, tmp_path) -> None:
    path = tmp_path / "lists.db"
    url = f"sqlite:///{path}"
    RiskListStore(url)
    processes = [run_job(registry_home, url, "no") for _ in range(2)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read().decode()[-2000:]
    assert integrity(path) == "ok"
    store = RiskListStore(url)
    assert store.dates() == [f"{DAY1}"]
    header = store.header(f"{DAY1}")
    assert count(store, "select count(*) from risk_list_rows") == header["scored"]
    assert [r["replaced_list"] for r in store.runs()] == [True, False]
    assert json.loads(json.dumps(header["fingerprint"]))["interactions_rows"] > 0
