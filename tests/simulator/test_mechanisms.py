"""The mechanisms the world must carry, measured on a small world.

Each test compares groups a broken mechanism would make equal (or reverse).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.simulator import SimulationParams, generate_world

from .conftest import World


def _recent(world: World, days: int) -> pd.DataFrame:
    """Contacts in the ``days`` up to and including the oracle date."""
    as_of = pd.Timestamp(world.summary.oracle_dates[0], tz="UTC")
    contacts = world.interactions
    window = (contacts["started_at"] < as_of + pd.Timedelta(days=1)) & (
        contacts["started_at"] >= as_of - pd.Timedelta(days=days - 1)
    )
    return contacts[window]


def _oracle_with(world: World, flag: pd.Series) -> pd.DataFrame:
    oracle = world.oracle.merge(world.customers, on="customer_id")
    oracle["flag"] = oracle["customer_id"].map(flag).fillna(False).astype(bool)
    return oracle


def test_abandonment_rises_with_the_wait(small_world: World) -> None:
    phone = small_world.interactions.query("channel == 'phone'")
    long = phone["wait_seconds"] > phone["wait_seconds"].quantile(0.75)
    short = phone["wait_seconds"] < phone["wait_seconds"].quantile(0.25)
    assert phone.loc[long, "abandoned"].mean() > 3 * phone.loc[short, "abandoned"].mean()


def test_busy_days_have_longer_waits_and_more_abandoned_calls(small_world: World) -> None:
    phone = small_world.interactions.query("channel == 'phone'")
    daily = phone.groupby(phone["started_at"].dt.date).agg(
        volume=("interaction_id", "size"),
        wait=("wait_seconds", "median"),
        abandoned=("abandoned", "mean"),
    )
    busy = daily["volume"] >= daily["volume"].quantile(0.8)
    quiet = daily["volume"] <= daily["volume"].quantile(0.2)
    assert daily.loc[busy, "wait"].mean() > 1.5 * daily.loc[quiet, "wait"].mean()
    assert daily.loc[busy, "abandoned"].mean() > daily.loc[quiet, "abandoned"].mean() + 0.03


def test_unresolved_cases_bring_customers_back_on_other_channels(small_world: World) -> None:
    contacts = small_world.interactions.sort_values("started_at")
    per_case = contacts.groupby("case_id").agg(
        contacts=("interaction_id", "size"),
        first_status=("status", "first"),
        channels=("channel", "nunique"),
        agents=("agent_id", "nunique"),
    )
    unresolved = per_case["first_status"] != "resolved"
    assert per_case.loc[unresolved, "contacts"].mean() > 1.5
    assert per_case.loc[~unresolved, "contacts"].mean() == 1.0
    repeated = per_case[per_case["contacts"] > 1]
    assert (repeated["channels"] > 1).mean() > 0.2
    assert (repeated["agents"] > 1).mean() > 0.3


def test_pending_and_escalated_cases_stay_open_for_days(small_world: World) -> None:
    contacts = small_world.interactions.sort_values("started_at")
    cases = contacts.groupby("case_id").agg(
        first=("started_at", "first"), last=("started_at", "last"), status=("status", "first")
    )
    waiting = cases[cases["status"].isin(["pending", "escalated"])]
    days_open = (waiting["last"] - waiting["first"]).dt.days
    assert days_open[days_open > 0].median() >= 3


def test_novice_agents_resolve_less_and_transfer_more(small_world: World) -> None:
    served = small_world.interactions.dropna(subset=["agent_id"])
    by_agent = served.groupby("agent_id").agg(
        resolved=("status", lambda s: (s == "resolved").mean()),
        transfers=("transfers", "mean"),
        contacts=("interaction_id", "size"),
    )
    by_agent = by_agent[by_agent["contacts"] >= 100]
    assert len(by_agent) >= 8  # turnover added agents beside the starting pool
    assert by_agent["resolved"].std() > 0.03
    assert np.corrcoef(by_agent["resolved"], by_agent["transfers"])[0, 1] < -0.3


def test_customers_with_long_waits_and_unresolved_cases_are_at_higher_risk(
    small_world: World,
) -> None:
    recent = _recent(small_world, 30)
    tolerance = {"phone": 300, "chat": 120, "store": 600}
    bad = (
        recent["abandoned"]
        | (recent["status"] == "unresolved")
        | (recent["wait_seconds"] > recent["channel"].map(tolerance).fillna(np.inf) * 2)
    )
    oracle = _oracle_with(small_world, bad.groupby(recent["customer_id"]).any())
    mean = oracle.groupby("flag")["true_probability"].mean()
    assert mean[True] > 2 * mean[False]
    realised = oracle.groupby("flag")["label"].mean()
    assert realised[True] > realised[False]


def test_business_customers_react_less_than_consumers(tmp_path: Path) -> None:
    """Letting business customers react like consumers raises their risk, not consumers'.

    Without the retention team: its calls (relief, woken sleeping dogs) go to other
    customers in the two worlds and would blur what the reaction alone does."""
    base = SimulationParams(oracle_replicates=20)
    worlds = {}
    for name, params in {
        "default": base,
        "same_reaction": replace(base, segment_reaction=(1.0, 1.0)),
    }.items():
        summary = generate_world(2000, 150, 8, tmp_path / name, params=params, retention=False)
        oracle = pd.read_csv(summary.files["oracle"]).merge(
            pd.read_csv(summary.files["customers"]), on="customer_id"
        )
        worlds[name] = oracle.groupby("segment")["true_probability"].mean()
    business_rise = worlds["same_reaction"]["business"] / worlds["default"]["business"]
    consumer_rise = worlds["same_reaction"]["consumer"] / worlds["default"]["consumer"]
    assert business_rise > 1.25
    assert abs(consumer_rise - 1.0) < 0.1


def test_first_contact_resolution_lowers_the_risk(small_world: World) -> None:
    recent = _recent(small_world, 45).sort_values("started_at")
    cases = recent.groupby("case_id").agg(
        customer_id=("customer_id", "first"),
        contacts=("interaction_id", "size"),
        status=("status", "first"),
        abandoned=("abandoned", "any"),
    )
    only_fcr = cases.assign(fcr=(cases["contacts"] == 1) & (cases["status"] == "resolved"))
    per_customer = only_fcr.groupby("customer_id")["fcr"].agg(["all", "size"])
    oracle = small_world.oracle.merge(per_customer, left_on="customer_id", right_index=True)
    mean = oracle.groupby("all")["true_probability"].mean()
    assert mean[True] < 0.7 * mean[False]


def test_new_customers_and_basic_plans_churn_more(small_world: World) -> None:
    oracle = small_world.oracle.merge(small_world.customers, on="customer_id")
    tenure = (oracle["as_of"] - oracle["signup_date"]).dt.days
    assert (
        oracle.loc[tenure < 90, "true_probability"].mean()
        > oracle.loc[tenure > 730, "true_probability"].mean()
    )
    by_plan = oracle.groupby("plan")["true_probability"].mean()
    assert by_plan["basic"] > by_plan["premium"]


def test_some_customers_leave_the_day_after_a_very_bad_contact(small_world: World) -> None:
    customers = small_world.customers.dropna(subset=["churned_at"])
    last_contact = small_world.interactions.groupby("customer_id")["started_at"].max()
    last_day = last_contact.dt.tz_localize(None).dt.normalize()
    gap = (customers.set_index("customer_id")["churned_at"] - last_day).dt.days.dropna()
    # churn right after a contact is far more common than the contact rate alone explains
    assert (gap == 1).mean() > 0.1


@pytest.mark.parametrize(
    ("change", "direction"),
    [
        ({"frustration_hazard_coef": 0.0}, "lower"),
        ({"goodwill_hazard_coef": 0.0}, "higher"),
        ({"wait_load_exponent": 4.0}, "higher"),
    ],
)
def test_switching_a_mechanism_moves_the_churn_rate(
    tmp_path: Path, change: dict, direction: str
) -> None:
    base = SimulationParams(oracle_replicates=1)
    default = generate_world(1500, 150, 4, tmp_path / "a", params=base)
    changed = generate_world(1500, 150, 4, tmp_path / "b", params=replace(base, **change))
    if direction == "lower":
        assert changed.churn_rate_30d < 0.8 * default.churn_rate_30d
    else:
        assert changed.churn_rate_30d > 1.05 * default.churn_rate_30d
