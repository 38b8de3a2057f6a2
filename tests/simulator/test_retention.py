"""The retention team, what its calls do through the hidden state, and the oracle's
true call effect."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.contract import GROUPS, OUTCOMES
from churnml.errors import ConfigError
from churnml.simulator import SimulationParams, generate_world
from churnml.simulator.dynamics import Population, daily_hazard, retention_call
from churnml.simulator.world import _draw_kinds, _initial_population

from .conftest import World

# --- the team's table --------------------------------------------------------------------


def test_the_team_starts_on_its_day_and_picks_every_day_after(small_world: World) -> None:
    contacts = small_world.retention_contacts
    start = pd.Timestamp(small_world.summary.retention_start)
    assert start == pd.Timestamp(date(2025, 1, 1)) + pd.Timedelta(days=240 // 3)
    assert contacts["contacted_at"].min() == start
    days = contacts["contacted_at"].dt.normalize().nunique()
    assert days == (pd.Timestamp(small_world.summary.end_date) - start).days + 1
    assert len(contacts) == small_world.summary.retention_contacts > 1000


def test_about_a_fifth_of_the_picks_are_held_out_as_control(small_world: World) -> None:
    control = small_world.retention_contacts["group"] == "control"
    assert set(small_world.retention_contacts["group"]) == set(GROUPS)
    assert 0.16 < control.mean() < 0.24
    assert control.sum() == small_world.summary.retention_controls


def test_only_treated_picks_have_an_outcome_and_a_channel(small_world: World) -> None:
    contacts = small_world.retention_contacts
    treated = contacts[contacts["group"] == "treated"]
    control = contacts[contacts["group"] == "control"]
    assert set(treated["outcome"]) == set(OUTCOMES)
    assert (treated["channel"] == "phone").all()
    assert control["outcome"].isna().all() and control["channel"].isna().all()


def test_nobody_is_picked_again_within_the_horizon(small_world: World) -> None:
    contacts = small_world.retention_contacts.sort_values(["customer_id", "contacted_at"])
    gaps = contacts.groupby("customer_id")["contacted_at"].diff().dropna()
    assert len(gaps) > 0 and gaps.min() > pd.Timedelta(days=30)


def test_every_pick_is_an_active_customer(small_world: World) -> None:
    picks = small_world.retention_contacts.merge(small_world.customers, on="customer_id")
    assert len(picks) == len(small_world.retention_contacts)
    assert (picks["contacted_at"] >= picks["signup_date"]).all()
    churned = picks["churned_at"].notna()
    assert (picks.loc[churned, "contacted_at"] < picks.loc[churned, "churned_at"]).all()


def test_the_team_picks_customers_with_open_problems_more_than_chance(small_world: World) -> None:
    contacts = small_world.interactions
    recent = contacts.assign(day=contacts["started_at"].dt.tz_localize(None).dt.normalize())
    picks = small_world.retention_contacts
    week = picks.merge(recent[["customer_id", "day"]], on="customer_id")
    in_week = (week["day"] <= week["contacted_at"]) & (
        week["day"] > week["contacted_at"] - pd.Timedelta(days=7)
    )
    picked_with_contact = week[in_week].drop_duplicates(["customer_id", "contacted_at"])
    share_picked = len(picked_with_contact) / len(picks)
    # about 1 customer in 12 has a contact in any one week
    weekly = recent[recent["day"] > recent["day"].max() - pd.Timedelta(days=7)]
    share_all = weekly["customer_id"].nunique() / len(small_world.oracle)
    assert share_picked > 3 * share_all


# --- what a call does through the hidden state ------------------------------------------

CERTAIN = replace(
    SimulationParams(), retention_reach_probability=1.0, retention_offer_probability=0.0
)


def _customers(n: int, **state: object) -> Population:
    """``n`` alike customers (standard plan, monthly, consumer, long tenure) on day 400."""
    pop = _initial_population(n, 10, CERTAIN, np.random.default_rng(0)).take(np.arange(n))
    _draw_kinds(
        pop,
        replace(CERTAIN, lost_cause_share=0.0, sleeping_dog_share=(0.0, 0.0)),
        np.random.default_rng(1),
    )
    pop.signup_day[:] = -1000
    pop.base_hazard[:] = 0.0004
    pop.segment[:] = 0
    pop.frustration[:] = 0.0
    pop.goodwill[:] = 0.0
    for name, value in state.items():
        getattr(pop, name)[:] = value
    return pop


def _hazard_drop(pop: Population) -> float:
    """How much a reached call lowers today's hazard (mean over the rows)."""
    before = daily_hazard(pop, 400, CERTAIN).mean()
    retention_call(pop, np.arange(len(pop)), 400, CERTAIN, np.random.default_rng(2))
    return float(before - daily_hazard(pop, 400, CERTAIN).mean())


@pytest.mark.parametrize(
    ("helped", "less"),
    [
        ({"case_open": True}, {"case_open": False}),
        ({"frustration": 2.0}, {"frustration": 0.5}),
        ({"segment": 0}, {"segment": 1}),
        ({"lost_cause": False}, {"lost_cause": True}),
    ],
    ids=["open case", "just went badly", "consumer over business", "not a lost cause"],
)
def test_a_call_helps_some_customers_more_than_others(helped: dict, less: dict) -> None:
    base = {"frustration": 1.0}
    more = _hazard_drop(_customers(10, **{**base, **helped}))
    fewer = _hazard_drop(_customers(10, **{**base, **less}))
    assert more > fewer >= 0


def test_a_call_on_a_lost_cause_changes_little() -> None:
    lost = _hazard_drop(_customers(10, frustration=1.0, lost_cause=True))
    usual = _hazard_drop(_customers(10, frustration=1.0))
    assert 0 <= lost < 0.2 * usual


def test_a_call_wakes_a_content_sleeping_dog() -> None:
    dog = _customers(10, sleeping_dog=True)
    assert _hazard_drop(dog) < 0
    assert (dog.woken_until == 400 + 1 + CERTAIN.sleeping_dog_days).all()
    # the same dog with an open problem is not content: the call helps it
    assert _hazard_drop(_customers(10, sleeping_dog=True, case_open=True, frustration=1.0)) > 0


def test_an_open_case_stops_wearing_on_a_customer_once_a_call_says_where_it_stands() -> None:
    pop = _customers(5, case_open=True, frustration=1.0)
    retention_call(pop, np.arange(5), 400, CERTAIN, np.random.default_rng(0))
    assert pop.status_known.all()


def test_outcomes_follow_the_customers_state() -> None:
    params = replace(CERTAIN, retention_offer_probability=1.0)
    rng = np.random.default_rng(3)
    unhappy = retention_call(_customers(4000, frustration=3.0), np.arange(4000), 400, params, rng)
    content = retention_call(_customers(4000), np.arange(4000), 400, params, rng)
    lost = retention_call(
        _customers(4000, frustration=3.0, lost_cause=True), np.arange(4000), 400, params, rng
    )
    accepted = OUTCOMES.index("accepted_offer")
    assert (unhappy == accepted).mean() > (content == accepted).mean() + 0.2
    assert (lost == accepted).mean() < 0.1


# --- the oracle's true call effect -----------------------------------------------------


def test_true_call_effects_help_on_average_and_harm_some(small_world: World) -> None:
    effect = small_world.oracle["true_call_effect"]
    assert effect.mean() > 0
    assert (effect < 0).mean() > 0.02
    assert (effect > 0.02).mean() > 0.02
    # a call cannot take the risk below 0 or above 1
    probability = small_world.oracle["true_probability"]
    assert (effect <= probability + 1e-6).all() and (-effect <= 1 - probability + 1e-6).all()


def test_a_call_that_changes_nothing_has_exactly_no_effect(tmp_path: Path) -> None:
    """Common random numbers: both arms see the same loads, contacts and agents, so a
    call that never reaches anyone gives a difference of exactly zero, not Monte Carlo
    noise of two separate runs."""
    inert = replace(SimulationParams(oracle_replicates=20), retention_reach_probability=0.0)
    summary = generate_world(400, 120, 3, tmp_path, params=inert)
    assert (pd.read_csv(summary.files["oracle"])["true_call_effect"] == 0.0).all()


def test_separate_streams_give_separate_estimates_of_the_effect(tmp_path: Path) -> None:
    params = SimulationParams(oracle_replicates=30, oracle_streams=2)
    oracle = pd.read_csv(generate_world(500, 120, 4, tmp_path, params=params).files["oracle"])
    first, second = oracle["true_call_effect_1"], oracle["true_call_effect_2"]
    assert not np.allclose(first, second)
    assert np.corrcoef(first, second)[0, 1] > 0.5
    assert np.allclose((first + second) / 2, oracle["true_call_effect"], atol=2e-6)


def test_stream_one_is_the_single_stream_oracle(tmp_path: Path) -> None:
    one = generate_world(
        300, 100, 5, tmp_path / "one", params=SimulationParams(oracle_replicates=20)
    )
    two = generate_world(
        300,
        100,
        5,
        tmp_path / "two",
        params=SimulationParams(oracle_replicates=20, oracle_streams=2),
    )
    single = pd.read_csv(one.files["oracle"])["true_call_effect"]
    assert np.allclose(pd.read_csv(two.files["oracle"])["true_call_effect_1"], single)


# --- the world without or with a later team ----------------------------------------------


def test_no_retention_writes_no_table_and_leaves_the_days_before_the_team_alone(
    tmp_path: Path,
) -> None:
    without = generate_world(400, 100, 6, tmp_path / "without", retention=False)
    later = generate_world(400, 100, 6, tmp_path / "with", retention_start=date(2025, 3, 1))
    assert "retention_contacts" not in without.files and without.retention_contacts == 0
    assert not (tmp_path / "without" / "retention_contacts.csv").exists()
    before = "2025-03-01"
    a = pd.read_csv(without.files["interactions"])
    b = pd.read_csv(later.files["interactions"])
    pd.testing.assert_frame_equal(a[a["started_at"] < before], b[b["started_at"] < before])
    assert pd.read_csv(later.files["retention_contacts"])["contacted_at"].min() == before


@pytest.mark.parametrize("start", [date(2024, 12, 31), date(2025, 5, 1)])
def test_a_retention_start_outside_the_days_is_a_one_line_error(tmp_path: Path, start) -> None:
    with pytest.raises(ConfigError, match="--retention-start") as error:
        generate_world(100, 60, 1, tmp_path, retention_start=start)
    assert "\n" not in str(error.value)
