"""The list of whom a call keeps (contract v1.1), on the sample world with the served model
and its call-effect head (trained with the sample's retention contacts), in a real SQLite
store: the ranking and why, the call-effect floor and its reasons, the control group
(random, reproducible, independent of rank) and the promise it makes to later lists,
suppression by the retention contacts, the export's columns, and a v3 store upgraded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.errors import ConfigError
from churnml.validation import load_tables
from model.predictor import Predictor
from serving.export import csv_text
from serving.lists import Filters, Lists
from serving.risklist import (
    CONTROL_ACTION,
    MAY_DO_HARM,
    WHATEVER_WE_DO,
    choose_ranking,
    control_split,
    export_frame,
    make_risk_list,
)
from serving.settings import RiskListSettings
from serving.store import SCHEMA_VERSION, RiskListStore
from tests.serving.helpers import SAMPLE
from tests.serving.test_freshness import as_version

DAY1 = dt.date(2026, 6, 10)
DAY2 = dt.date(2026, 6, 17)
SAVED = RiskListSettings(capacity=50, rank_by="saved-revenue")


@pytest.fixture(scope="module")
def tables():
    return load_tables(
        SAMPLE / "customers.csv",
        SAMPLE / "interactions.csv",
        retention_contacts_path=SAMPLE / "retention_contacts.csv",
    )


SAMPLE_CONTACTS = object()  # make's default: the sample world's retention contacts


def make(tables, served, store, day, settings=SAVED, contacts=SAMPLE_CONTACTS):
    return make_risk_list(
        tables.customers,
        tables.interactions,
        day,
        served,
        store,
        settings,
        retention_contacts=tables.retention_contacts if contacts is SAMPLE_CONTACTS else contacts,
    )


def with_gate(served, gate: dict | None, *, head: bool = True):
    """The served model with another gate record (or without its head): what training
    records when the head passes, or when it was never fitted."""
    model = dataclasses.replace(
        served.model,
        call_effect=served.model.call_effect if head else None,
        call_effect_gate=gate,
    )
    return dataclasses.replace(served, model=model, predictor=Predictor(model))


# -- the ranking --------------------------------------------------------------------------------
def test_the_sample_models_head_did_not_pass_so_the_default_ranks_by_revenue(served) -> None:
    assert served.model.call_effect is not None  # trained with the retention contacts
    gate = served.model.call_effect_gate
    assert gate["rank_by"] == "risk" and gate["reason"].startswith("keep ranking by risk")
    ranking = choose_ranking(None, served.model)
    assert ranking.rank_by == "revenue"
    assert "did not pass its gate" in ranking.reason and gate["reason"] in ranking.reason


def test_a_head_that_passed_its_gate_makes_saved_revenue_the_default(tables, served, store) -> None:
    passed = with_gate(served, {"rank_by": "saved-revenue", "reason": "beats risk at K=100"})
    result = make(tables, passed, store, DAY1, RiskListSettings(capacity=50))
    assert result.header["rank_by"] == "saved-revenue"
    assert "passed its gate: beats risk at K=100" in result.header["rank_by_reason"]
    page = Lists(Path("."), store.url).page(Filters(), 5)
    assert page["rank_by"] == "saved-revenue"
    assert page["rank_by_reason"] == result.header["rank_by_reason"]
    assert f"ranking: {result.header['rank_by_reason']}" in result.summary()


def test_saved_revenue_asked_of_a_model_without_a_head_is_one_line(tables, served, store) -> None:
    headless = with_gate(served, None, head=False)
    assert choose_ranking(None, headless.model).rank_by == "revenue"
    assert "no call-effect head" in choose_ranking(None, headless.model).reason
    with pytest.raises(ConfigError) as error:
        make(tables, headless, store, DAY1)
    message = str(error.value)
    assert error.value.exit_code == 2 and "\n" not in message
    assert message.startswith("--rank-by saved-revenue: the model has no call-effect head")
    assert store.dates() == []


def test_saved_revenue_ranks_by_the_revenue_a_call_keeps(tables, served, store) -> None:
    result = make(tables, served, store, DAY1)
    frame = result.frame
    assert "as asked" in result.header["rank_by_reason"]
    revenue = frame["monthly_revenue"]
    assert np.allclose(
        frame.loc[revenue.notna(), "saved_revenue"],
        (frame["call_effect"] * revenue * 12)[revenue.notna()],
    )
    key = frame["call_effect"] * revenue.fillna(revenue.median())
    assert (np.diff(key.to_numpy()) <= 1e-12).all()  # descending


# -- the call-effect floor ----------------------------------------------------------------------
@pytest.mark.parametrize("floor", [0.0, 0.03])
def test_customers_a_call_does_not_help_are_not_picked_and_say_why(
    tables, served, store, floor: float
) -> None:
    settings = dataclasses.replace(SAVED, min_call_effect=floor, control_share=0.0)
    result = make(tables, served, store, DAY1, settings)
    frame = result.frame
    below = frame["call_effect"] < floor
    callable_ = frame["on_list"] & ~frame["suppressed"]  # the sample team's calls suppress
    assert below.any() and int((~below & callable_).sum()) == 50
    assert not frame.loc[below, "on_list"].any()
    assert frame.loc[below, "group"].isna().all()
    high = below & (frame["risk_band"] == "high")
    assert high.any()
    effect = frame["call_effect"]
    reasons = frame["not_listed_because"]
    assert (reasons[high & (effect.abs() <= 0.01)] == WHATEVER_WE_DO).all()
    assert (reasons[high & (effect < -0.01)] == MAY_DO_HARM).all()
    assert reasons[high & (effect > 0.01)].str.startswith("a call helps too little").all()
    unsuppressed = ~frame["suppressed"]  # those the sample team held out say so instead
    assert reasons[high].notna().all() and reasons[~high & below & unsuppressed].isna().all()
    # Stored and exported as they were decided.
    rows = Lists(Path("."), store.url).page(Filters(scope="all"), 100_000)["rows"]
    kept = {r["customer_id"]: r["not_listed_because"] for r in rows}
    assert kept == dict(zip(frame["customer_id"], reasons, strict=True))
    exported = export_frame(result).set_index("customer_id")["not_listed_because"]
    assert exported.reindex(frame["customer_id"]).tolist() == reasons.tolist()


def test_the_floor_applies_only_to_the_saved_revenue_ranking(tables, served, store) -> None:
    settings = RiskListSettings(capacity=50, rank_by="revenue", control_share=0.0)
    frame = make(tables, served, store, DAY1, settings).frame
    assert frame["call_effect"].notna().all()  # the head still scores the call effect
    reasons = frame["not_listed_because"].dropna()
    assert reasons.str.startswith("held out as a control").all()  # the sample team's only
    assert int((frame["on_list"] & ~frame["suppressed"]).sum()) == 50
    assert frame["on_list"].iloc[: int(frame["on_list"].sum())].all()


# -- the control group --------------------------------------------------------------------------
def test_the_control_split_is_random_reproducible_and_independent_of_rank() -> None:
    ids = [f"C{n:06d}" for n in range(200)]
    first = control_split("2026-06-10", ids, 0.1)
    assert int(first.sum()) == 20  # round(0.1 x 200)
    assert (control_split("2026-06-10", ids, 0.1) == first).all()  # same day, same controls
    shuffled = list(np.random.default_rng(7).permutation(ids))
    again = control_split("2026-06-10", shuffled, 0.1)
    assert {c for c, k in zip(shuffled, again, strict=True) if k} == {
        c for c, k in zip(ids, first, strict=True) if k
    }  # the rank order changes nothing
    digests = sorted(ids, key=lambda c: hashlib.sha256(f"2026-06-10:{c}".encode()).hexdigest())
    assert {c for c, k in zip(ids, first, strict=True) if k} == set(digests[:20])
    other = control_split("2026-06-17", ids, 0.1)
    assert (other != first).any()  # another day, another draw
    assert int(control_split("d", ids[:15], 0.1).sum()) == 2  # 1.5 rounds half up
    assert not control_split("d", ids, 0.0).any()


def test_the_days_picks_hold_out_a_control_share_not_to_be_called(tables, served, store) -> None:
    settings = RiskListSettings(capacity=50, control_share=0.2)
    result = make(tables, served, store, DAY1, settings)
    frame = result.frame
    picks = frame["on_list"] & ~frame["suppressed"]
    assert int(picks.sum()) == 50
    control = frame["group"] == "control"
    assert int(control.sum()) == 10 and (frame.loc[picks & ~control, "group"] == "treated").all()
    assert frame.loc[~picks, "group"].isna().all()
    assert (frame.loc[control, "action"] == CONTROL_ACTION).all()
    assert not frame.loc[picks & ~control, "action"].eq(CONTROL_ACTION).any()
    # Not the top of the list: the ranks of the controls spread over the picks.
    ranks = frame.loc[control, "rank"]
    assert ranks.min() < frame.loc[picks, "rank"].median() < ranks.max()
    # Made again, the day holds out the same customers.
    again = make(tables, served, store, DAY1, settings).frame
    assert set(again.loc[again["group"] == "control", "customer_id"]) == set(
        frame.loc[control, "customer_id"]
    )
    assert "10 controls not to be called" in result.summary()


def test_a_control_share_of_zero_keeps_no_control(tables, served, store) -> None:
    settings = RiskListSettings(capacity=50, control_share=0.0)
    frame = make(tables, served, store, DAY1, settings).frame
    assert (frame.loc[frame["on_list"] & ~frame["suppressed"], "group"] == "treated").all()


def test_todays_controls_are_not_called_on_later_lists_within_the_horizon(
    tables, served, store
) -> None:
    settings = RiskListSettings(capacity=50, control_share=0.2)
    # Without the team's own table: the promises here are the stored lists' alone.
    day, within, after = dt.date(2026, 5, 20), dt.date(2026, 6, 10), dt.date(2026, 6, 24)
    first = make(tables, served, store, day, settings, contacts=None).frame
    controls = set(first.loc[first["group"] == "control", "customer_id"])
    later = make(tables, served, store, within, settings, contacts=None).frame
    later = later.set_index("customer_id")
    held = later.loc[sorted(c for c in controls if c in later.index)]
    assert len(held) >= 8 and held["suppressed"].all() and held["group"].isna().all()
    assert held["not_listed_because"].str.startswith(f"held out as a control on {day}").all()
    assert held["not_listed_because"].str.endswith("until 2026-06-19").all()  # 30 days
    # After the horizon (35 days on) the promise is kept: they may be picked again.
    past = make(tables, served, store, after, settings, contacts=None).frame
    past = past.set_index("customer_id")
    still = [c for c in controls if c in past.index]
    assert (
        still
        and not past.loc[still, "not_listed_because"].fillna("").str.startswith("held out").any()
    )


# -- suppression by the retention contacts ------------------------------------------------------
def test_the_retention_contacts_suppress_treated_calls_and_control_promises(
    tables, served, store
) -> None:
    base = make(tables, served, store, DAY1, RiskListSettings(capacity=50), contacts=None)
    top = base.frame["customer_id"].iloc[:3].tolist()
    contacts = pd.DataFrame(
        {
            "customer_id": top,
            "contacted_at": pd.to_datetime(["2026-06-05", "2026-05-20", "2026-05-20"]),
            "group": ["treated", "treated", "control"],
            "outcome": [None, None, None],
            "channel": [None, None, None],
        }
    )
    settings = RiskListSettings(capacity=50, suppress_days=14)
    frame = make(tables, served, store, DAY1, settings, contacts=contacts).frame
    frame = frame.set_index("customer_id")
    assert frame.at[top[0], "suppressed"]  # treated 5 days before
    assert not frame.at[top[1], "suppressed"]  # treated 21 days before: too long ago
    assert frame.at[top[2], "suppressed"]  # a control 21 days before: within the horizon
    assert frame.at[top[2], "not_listed_because"].startswith("held out as a control on 2026-05-20")
    assert frame.at[top[1], "last_contacted"] == "2026-05-20"


# -- the export and the store -------------------------------------------------------------------
def test_the_export_carries_group_call_effect_and_saved_revenue(
    tables, served, store, tmp_path
) -> None:
    result = make(tables, served, store, DAY1, dataclasses.replace(SAVED, control_share=0.1))
    table = export_frame(result, scope="list")
    columns = list(table.columns)
    at = columns.index("revenue_at_risk")
    assert columns[at + 1 : at + 5] == [
        "call_effect",
        "saved_revenue",
        "group",
        "not_listed_because",
    ]
    assert set(table["group"].dropna()) == {"treated", "control"}
    assert table.loc[table["group"].isna(), "suppressed"].all()  # on the list, not picked
    assert (table.loc[table["group"] == "control", "action"] == CONTROL_ACTION).all()
    assert table["call_effect"].notna().all()
    # GET /risk-list.csv writes the same from the stored rows.
    _, text = Lists(tmp_path, store.url).csv(Filters(day=f"{DAY1}"), None, "EUR")
    assert text == csv_text(table)


def test_the_export_has_no_call_effect_columns_without_a_head(tables, served, store) -> None:
    headless = with_gate(served, None, head=False)
    result = make(tables, headless, store, DAY1, RiskListSettings(capacity=50))
    columns = list(export_frame(result).columns)
    assert "group" in columns
    assert not {"call_effect", "saved_revenue", "not_listed_because"} & set(columns)


def test_a_version_3_store_is_upgraded_in_place_and_then_stores_the_groups(
    tables, served, store, tmp_path
) -> None:
    old = make(tables, served, store, DAY1, RiskListSettings(capacity=50))
    as_version(store, "3")
    with store.engine.connect() as conn:
        columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(risk_list_rows)")]
    assert "group" not in columns and "call_effect" not in columns
    opened = RiskListStore(store.url, create=False)
    with opened.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM store_meta").scalar()
    assert version == SCHEMA_VERSION == "4"
    page = Lists(tmp_path, store.url).page(Filters(), 100)
    assert page["date"] == f"{DAY1}" and page["rank_by_reason"] is None
    assert all(r["group"] is None and r["call_effect"] is None for r in page["rows"])
    assert len(page["rows"]) == old.header["on_list"]
    made = make(tables, served, opened, DAY2, RiskListSettings(capacity=50, control_share=0.1))
    rows = Lists(tmp_path, store.url).page(Filters(), 100)["rows"]
    assert sum(r["group"] == "control" for r in rows) == 5
    assert made.header["rank_by_reason"] == opened.header()["rank_by_reason"]


@pytest.mark.parametrize("groups", [[], ["control"]], ids=["no rows", "controls only"])
def test_a_retention_table_without_treated_rows_suppresses_only_its_promises(
    tables, served, store, groups: list[str]
) -> None:
    base = make(tables, served, store, DAY1, RiskListSettings(capacity=50), contacts=None)
    ids = base.frame["customer_id"].iloc[: len(groups)].tolist()
    contacts = pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="str"),
            "contacted_at": pd.to_datetime(pd.Series(["2026-06-01"] * len(ids), dtype="str")),
            "group": pd.Series(groups, dtype="str"),
        }
    )
    frame = make(tables, served, store, DAY1, RiskListSettings(capacity=50), contacts=contacts)
    assert frame.frame["customer_id"][frame.frame["suppressed"]].tolist() == ids
