"""A customer's detail on a stored list (``Lists.customer``, the page's detail view): the
contacts and cases behind each reason, kept with the list when it is written, the
probability over the last lists, the retention team's contacts, and a one-line 404."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa

from churnml.validation import load_tables
from features.settings import FeatureSettings
from serving.evidence import customer_evidence
from serving.lists import Lists, NoList
from serving.risklist import make_risk_list
from serving.settings import RiskListSettings
from serving.store import SCHEMA_VERSION, RiskListStore
from tests.serving.helpers import SAMPLE

DAY1, DAY2 = dt.date(2026, 6, 10), dt.date(2026, 6, 17)


@pytest.fixture(scope="module")
def tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


@pytest.fixture(scope="module")
def stored(tables, served, tmp_path_factory):
    """Two days of lists in one store, and the service's reader of it."""
    folder = tmp_path_factory.mktemp("detail")
    store = RiskListStore(f"sqlite:///{folder / 'lists.db'}")
    settings = RiskListSettings(capacity=40)
    results = [
        make_risk_list(tables.customers, tables.interactions, day, served, store, settings)
        for day in (DAY1, DAY2)
    ]
    return store, Lists(folder, store.url), results


# -- the evidence of a customer, from contacts ------------------------------------------------
def _contacts(*rows: tuple) -> pd.DataFrame:
    names = ["interaction_id", "customer_id", "started_at", "channel", "case_id", "status"]
    frame = pd.DataFrame(rows, columns=[*names, "wait_seconds", "transfers", "csat"])
    frame["started_at"] = pd.to_datetime(frame["started_at"])
    frame["abandoned"] = 0.0
    return frame


def test_evidence_sees_only_the_contacts_up_to_the_day() -> None:
    contacts = _contacts(
        ("I1", "C1", "2026-06-01 09:00", "phone", "K1", "pending", 900.0, 0.0, None),
        ("I2", "C1", "2026-06-05 09:00", "chat", "K1", "escalated", 30.0, 2.0, 1.0),
        ("I3", "C1", "2026-06-11 09:00", "phone", "K1", "resolved", 10.0, 0.0, None),
    )
    evidence = json.loads(
        customer_evidence(contacts, ["C1"], dt.date(2026, 6, 10), FeatureSettings())["C1"]
    )
    assert [c["interaction_id"] for c in evidence["contacts"]] == ["I2", "I1"]  # newest first
    newest, first = evidence["contacts"]
    assert first["long_wait"] and not first["repeat"]  # 900 s on the phone: over 600
    assert newest["repeat"] and newest["transferred"] and newest["low_csat"]
    assert not newest["long_wait"]
    # the case is open on the 10th (the resolving contact came later), 9 days old
    (case,) = evidence["cases"]
    assert case == {
        "case_id": "K1",
        "topic": None,
        "first_contact": "2026-06-01",
        "last_contact": "2026-06-05",
        "contacts": 2,
        "status": "escalated",
        "open": True,
        "age_days": 9,
    }


def test_a_customer_without_contacts_gets_empty_evidence() -> None:
    contacts = _contacts(("I1", "C1", "2026-06-01", "phone", None, "resolved", 1.0, 0.0, 5.0))
    found = customer_evidence(contacts, ["C2"], dt.date(2026, 6, 10), FeatureSettings())
    assert json.loads(found["C2"]) == {
        "contacts": [],
        "cases": [],
        "contacts_in_window": 0,
        "window_days": 90,
    }


# -- the detail of a stored list ----------------------------------------------------------------
def test_every_customer_on_the_list_has_its_contacts_kept(stored) -> None:
    store, lists, results = stored
    on = results[1].frame[results[1].frame["on_list"]]
    for customer in on["customer_id"]:
        detail = lists.customer(customer, None)
        assert detail["evidence_kept"] and detail["evidence_note"] is None, customer
        assert detail["date"] == f"{DAY2}" and detail["window_days"] == 90


def test_the_evidence_stands_behind_each_reason(stored) -> None:
    store, lists, results = stored
    on = results[1].frame[results[1].frame["on_list"]]
    families_seen = set()
    for customer in on["customer_id"]:
        detail = lists.customer(customer, None)
        contacts = {c["interaction_id"]: c for c in detail["contacts"]}
        cases = {c["case_id"]: c for c in detail["cases"]}
        raw = {
            r["family"]: r
            for r in results[1].frame.set_index("customer_id").at[customer, "reasons"]
        }
        for reason in detail["reasons"]:
            assert set(reason["contacts"]) <= set(contacts)
            assert set(reason["cases"]) <= set(cases)
            family = reason["family"]
            families_seen.add(family)
            if family == "waiting":
                assert reason["contacts"], customer
                assert all(
                    contacts[i]["long_wait"] or contacts[i]["abandoned"] for i in reason["contacts"]
                )
            if family == "unresolved case":
                assert reason["cases"] and all(cases[c]["open"] for c in reason["cases"])
                if raw[family]["feature"] == "oldest_open_case_age_days":
                    oldest = max(cases[c]["age_days"] for c in reason["cases"])
                    assert abs(oldest - float(raw[family]["value"])) <= 1, customer
            if family == "repeating yourself":
                assert all(contacts[i]["repeat"] for i in reason["contacts"])
            if reason["kind"] == "context":
                assert reason["contacts"] == [] and reason["cases"] == []
        assert detail["action"] == detail["row"]["action"]
    # the checks above ran on some actionable family (which ones depends on the model)
    assert families_seen & {"waiting", "unresolved case", "repeating yourself"}


def test_the_probability_over_the_last_lists(stored) -> None:
    store, lists, results = stored
    first = results[0].frame.set_index("customer_id")
    second = results[1].frame.set_index("customer_id")
    customer = second.index[0]
    history = lists.customer(customer, None)["history"]
    assert [h["list_date"] for h in history] == [f"{DAY2}", f"{DAY1}"]
    assert history[0]["churn_probability"] == second.at[customer, "churn_probability"]
    assert history[1]["churn_probability"] == first.at[customer, "churn_probability"]
    assert history[1]["rank"] == first.at[customer, "rank"]
    # the list of an earlier day shows the lists up to that day only
    earlier = lists.customer(customer, f"{DAY1}")
    assert [h["list_date"] for h in earlier["history"]] == [f"{DAY1}"]


def test_an_unknown_customer_is_a_one_line_404(stored) -> None:
    _, lists, _ = stored
    with pytest.raises(NoList) as error:
        lists.customer("NOBODY", None)
    message = str(error.value)
    assert error.value.status == 404 and "\n" not in message
    assert message.startswith(f"customer 'NOBODY' is not on the list of {DAY2}")


def test_a_low_customer_off_the_list_says_why_no_contacts_are_shown(stored) -> None:
    _, lists, results = stored
    frame = results[1].frame
    low = frame[~frame["on_list"] & (frame["risk_band"] == "low")]["customer_id"].iloc[-1]
    detail = lists.customer(low, None)
    assert not detail["evidence_kept"] and detail["contacts"] == []
    assert "kept with the list for the customers on it" in detail["evidence_note"]


def test_retention_contacts_are_none_until_the_store_keeps_them(stored, tmp_path) -> None:
    store, lists, results = stored
    customer = results[1].frame["customer_id"].iloc[0]
    detail = lists.customer(customer, None)
    assert detail["retention_contacts_recorded"] is False and detail["retention_contacts"] == []
    store.store_contacts(
        [
            {
                "customer_id": customer,
                "contacted_at": "2026-06-12",
                "group": "treated",
                "outcome": "reached",
                "channel": "phone",
            }
        ],
        source="test",
    )
    try:
        detail = lists.customer(customer, None)
        assert detail["retention_contacts_recorded"] is True
        assert detail["retention_contacts"] == [
            {
                "contacted_at": "2026-06-12",
                "group": "treated",
                "outcome": "reached",
                "channel": "phone",
            }
        ]
        other = results[1].frame["customer_id"].iloc[1]
        detail = lists.customer(other, None)  # a log is kept, nothing about this customer
        assert detail["retention_contacts_recorded"] is True
        assert detail["retention_contacts"] == []
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM retention_contacts")


def test_a_version_2_store_gets_the_evidence_table(tables, served, tmp_path) -> None:
    store = RiskListStore(f"sqlite:///{tmp_path / 'v2.db'}")
    settings = RiskListSettings(capacity=20)
    old = make_risk_list(tables.customers, tables.interactions, DAY1, served, store, settings)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE risk_list_evidence")
        conn.exec_driver_sql("UPDATE store_meta SET value = '2' WHERE key = 'schema_version'")
    store.engine.dispose()
    lists = Lists(tmp_path, store.url)  # the service's reader upgrades it
    customer = old.frame["customer_id"].iloc[0]
    detail = lists.customer(customer, None)
    assert not detail["evidence_kept"] and "lists stored before" in detail["evidence_note"]
    assert sa.inspect(lists.store().engine).has_table("risk_list_evidence")
    with lists.store().engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM store_meta").scalar() == SCHEMA_VERSION
    again = RiskListStore(store.url)
    make_risk_list(tables.customers, tables.interactions, DAY2, served, again, settings)
    assert not lists.customer(customer, f"{DAY1}")["evidence_kept"]
    new = again.header()
    kept = again.evidence(new["list_id"], customer)
    assert kept is not None or again.rows_of(new["list_id"], [customer]) == {}
