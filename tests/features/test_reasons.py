"""The words of reasons: the customer's own numbers, in plain language; a reason only
where the customer's value is unusual in the risky direction, never a missing value;
what the team can act on first, and the next step only from that."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_features
from features.columns import (
    LESS_IS_RISKIER,
    MORE_IS_RISKIER,
    RISK_FALLING,
    RISK_RISING,
    RISKY_DIRECTION,
    SNAPSHOT_FEATURES,
    WINDOWED_FEATURES,
    family_kind,
    feature_families,
    risky_direction,
)
from features.reasons import (
    DEFAULT_STEP,
    NEXT_STEPS,
    Explainer,
    describe,
    next_step,
    reference_statistics,
)
from tests.features.helpers import AS_OF, customers, interactions


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("long_waits_30d", 1.0, "had 1 long wait in the last 30 days"),
        ("long_waits_30d", 3.0, "had 3 long waits in the last 30 days"),
        ("open_cases", 1.0, "has 1 case still open"),
        ("open_cases", 2.0, "has 2 cases still open"),
        ("transfers_7d", 1.0, "was transferred once in the last 7 days"),
        ("bad_experiences_90d", 1.0, "had 1 bad experience (long wait"),
        ("days_since_last_bad_experience", 0.0, "had a bad experience today"),
        ("days_since_last_bad_experience", 1.0, "had a bad experience 1 day ago"),
        ("days_since_last_contact", 0.2, "last contacted service today"),
    ],
)
def test_counts_read_as_plain_words(column, value, text):
    assert describe(column, value).startswith(text)


def test_a_value_far_above_the_usual_says_how_many_times():
    reference = {"wait_mean_seconds_30d": {"median": 280.0}}
    text = describe("wait_mean_seconds_30d", 840.0, reference)
    assert text.startswith("waited 14 minutes on average in the last 30 days")
    assert "3 times the usual" in text


def test_a_row_alone_gets_the_reasons_and_numbers_it_gets_inside_a_batch() -> None:
    # Dense shares over many features, as a booster stacked with a linear term gives.
    rng = np.random.default_rng(11)
    bases = ["contacts", "transfers", "wait_mean_seconds", "repeat_contacts", "csat_mean"]
    names = [f"{base}_{window}d" for base in bases for window in range(1, 19)]
    families = {name: name.rsplit("_", 1)[0] for name in names}
    explainer = Explainer.build(names, families)
    shares = rng.normal(0, 0.3, (300, len(names)))
    values = pd.DataFrame(rng.integers(0, 5, (300, len(names))).astype(float), columns=names)
    batch = explainer.explain(shares, values)
    for row in range(0, 300, 7):
        assert explainer.explain(shares[row : row + 1], values.iloc[row : row + 1]) == [batch[row]]


# --------------------------------------------------------------------------- reasons that are reasons
# A tiny world: the customer under test (C1) and four usual customers (U1..U4), each with
# one resolved phone contact (a one-minute wait, rated 4 out of 5), customers since 2023.
# "The usual" is the median over the usual customers (``reference_statistics``, as at
# training). The model is a fake passed in as an argument: ``shares`` names the features
# it says push C1's risk up; every other share is 0.

USUAL_CUSTOMERS = [f"U{i}" for i in range(1, 5)]
KNOWN = {"segment": ["business", "consumer"], "plan": ["basic", "premium"]}
KNOWN_CONTRACTS = {"profile_contract_type": ["annual", "monthly"]}


def usual_contact(customer_id: str) -> dict:
    return {
        "customer_id": customer_id,
        "case_id": f"K{customer_id}",
        "started_at": "2024-03-10 10:00",
        "wait_seconds": 60.0,
        "status": "resolved",
        "csat": 4.0,
        "transfers": 0.0,
        "abandoned": 0.0,
    }


def contact(**fields) -> dict:
    """A contact of C1 on 2024-03-25 about case K1, with only what is given known."""
    return {"case_id": "K1", "started_at": "2024-03-25 10:00", "status": "resolved", **fields}


def world(contacts: list[dict], **profile) -> pd.DataFrame:
    """The features of C1 and the usual customers; ``profile``: C1's customer fields."""
    usual_profile = {"contract_type": "annual"} if "contract_type" in profile else {}
    people = customers(
        {"customer_id": "C1", **profile},
        *({"customer_id": c, **usual_profile} for c in USUAL_CUSTOMERS),
    )
    if "contract_type" in profile:
        people["contract_type"] = people["contract_type"].astype("object")
    table = interactions(*contacts, *(usual_contact(c) for c in USUAL_CUSTOMERS))
    return build_features(people, table, AS_OF)


def reasons_of(
    contacts: list[dict], shares: dict[str, float], top: int = 20, **profile
) -> list[dict]:
    frame = world(contacts, **profile)
    explainer = Explainer.build(
        list(frame.columns),
        feature_families(frame.columns),
        reference_statistics(frame.loc[USUAL_CUSTOMERS]),
        {**KNOWN, **KNOWN_CONTRACTS},
    )
    contributions = np.zeros((1, len(frame.columns)))
    for name, share in shares.items():
        contributions[0, frame.columns.get_loc(name)] = share
    (reasons,) = explainer.explain(contributions, frame.loc[["C1"]], top)
    return reasons


PENDING_CASE = [
    contact(channel="phone", started_at="2024-03-20 10:00", status="pending"),
    contact(channel="chat", started_at="2024-03-25 10:00", status="pending"),
    contact(channel="chat", started_at="2024-03-28 10:00", status="pending", transfers=2.0),
]


@pytest.mark.parametrize(
    ("contacts", "feature", "family", "text"),
    [
        (
            [contact(wait_seconds=1500.0), contact(wait_seconds=1500.0)],
            "wait_mean_seconds_30d",
            "waiting",
            "waited 25 minutes on average in the last 30 days, 25 times the usual",
        ),
        (
            [contact(wait_seconds=1500.0), contact(wait_seconds=1500.0)],
            "long_waits_30d",
            "waiting",
            "had 2 long waits in the last 30 days (usually none)",
        ),
        (
            [contact(abandoned=1.0), contact(abandoned=1.0)],
            "abandoned_contacts_30d",
            "waiting",
            "gave up waiting twice in the last 30 days (usually never)",
        ),
        (
            PENDING_CASE,
            "repeat_contacts_30d",
            "repeating yourself",
            "had to contact service again about the same problem twice in the last 30 days "
            "(usually never)",
        ),
        (
            PENDING_CASE,
            "channel_switches_30d",
            "repeating yourself",
            "had to switch channels on the same problem once in the last 30 days (usually never)",
        ),
        (
            PENDING_CASE,
            "transfers_30d",
            "transfers",
            "was transferred twice in the last 30 days (usually never)",
        ),
        (PENDING_CASE, "open_cases", "unresolved case", "has 1 case still open (usually none)"),
        (
            [contact(status="escalated")],
            "escalated_contacts_30d",
            "unresolved case",
            "had 1 contact escalated in the last 30 days (usually none)",
        ),
        (
            [contact(csat=1.0), contact(csat=5.0)],
            "csat_min_30d",
            "satisfaction",
            "rated a contact as low as 1 out of 5 in the last 30 days (usually 4 out of 5)",
        ),
        (
            [contact(csat=2.0)],
            "csat_last",
            "satisfaction",
            "rated the last contact 2 out of 5 (usually 4 out of 5)",
        ),
    ],
)
def test_each_family_speaks_of_the_customers_own_problem(contacts, feature, family, text):
    (reason,) = reasons_of(contacts, {feature: 0.5})
    assert reason["text"] == text
    assert (reason["family"], reason["kind"], reason["feature"]) == (family, "action", feature)


def test_a_short_tenure_is_context_in_the_words_of_the_account():
    (reason,) = reasons_of([contact()], {"tenure_days": 0.5}, signup_date="2024-03-01")
    assert reason["text"] == "has been a customer for 30 days (usually 15 months)"
    assert (reason["kind"], reason["code"]) == ("context", "profile")


def test_a_known_contract_type_is_context():
    (reason,) = reasons_of([contact()], {"profile_contract_type": 0.5}, contract_type="monthly")
    assert (reason["text"], reason["kind"]) == ("contract type is monthly", "context")


@pytest.mark.parametrize(
    ("contacts", "feature", "profile"),
    [
        # "gave 0 satisfaction ratings in the last 90 days, as usual": a count of zero
        ([contact()], "csat_answers_90d", {}),
        # how many ratings a customer gave says nothing of their mood, either way
        ([contact(csat=4.0), contact(csat=4.0)], "csat_answers_30d", {}),
        # "rated a contact as low as 5 out of 5 (usually 4 out of 5)": the best rating
        ([contact(csat=5.0)], "csat_min_30d", {}),
        ([contact(csat=5.0)], "csat_last", {}),
        ([contact()], "long_waits_30d", {}),  # no long wait
        ([contact(wait_seconds=10.0)], "wait_mean_seconds_30d", {}),  # shorter than usual
        ([contact(wait_seconds=63.0)], "wait_mean_seconds_30d", {}),  # within 10% of it
        ([contact()], "open_cases", {}),  # none open
        ([contact()], "first_contact_resolution_rate_30d", {}),  # all solved at once
        ([contact()], "tenure_days", {"signup_date": "2019-01-01"}),  # longer than usual
        ([contact(started_at="2024-01-02 10:00")], "days_since_last_contact", {}),  # long ago
        ([contact()], "contacts_trend_per_day", {}),  # no rise
    ],
)
def test_a_value_in_the_safe_direction_is_never_a_reason(contacts, feature, profile):
    assert reasons_of(contacts, {feature: 0.5}, **profile) == []


@pytest.mark.parametrize(
    ("contacts", "feature", "profile"),
    [
        ([contact()], "profile_contract_type", {"contract_type": None}),  # not in the input
        ([contact()], "profile_contract_type", {"contract_type": "weekly"}),  # never seen
        ([contact()], "segment", {"segment": None}),
        ([contact()], "monthly_revenue", {"monthly_revenue": np.nan}),
        ([contact()], "wait_mean_seconds_30d", {}),  # no recorded wait
        ([contact()], "csat_mean_30d", {}),  # no rating
        ([], "days_since_last_contact", {}),  # never contacted service
        ([contact()], "oldest_open_case_age_days", {}),  # no open case
    ],
)
def test_a_missing_value_is_never_a_reason(contacts, feature, profile):
    assert reasons_of(contacts, {feature: 2.0}, **profile) == []


def test_missing_profile_fields_never_show_even_when_they_push_hardest():
    shares = {"profile_contract_type": 3.0, "segment": 2.0, "long_waits_30d": 0.5}
    reasons = reasons_of([contact(wait_seconds=1500.0)], shares, contract_type=None, segment=None)
    assert [r["feature"] for r in reasons] == ["long_waits_30d"]
    assert not any("unknown" in r["text"] or "on record" in r["text"] for r in reasons)


def test_what_the_team_can_act_on_comes_before_stronger_context():
    shares = {"tenure_days": 3.0, "long_waits_30d": 0.2, "open_cases": 0.4}
    reasons = reasons_of(
        [contact(wait_seconds=1500.0, status="pending")], shares, signup_date="2024-03-01"
    )
    assert [(r["code"], r["kind"]) for r in reasons] == [
        ("unresolved_case", "action"),
        ("waiting", "action"),
        ("profile", "context"),
    ]
    assert next_step([r["family"] for r in reasons], "high") == NEXT_STEPS["unresolved case"]


def test_a_familys_strength_is_what_its_unusual_values_add():
    # A long wait (unusual) and a count of zero abandoned contacts (usual) both push.
    shares = {"long_waits_30d": 0.3, "abandoned_contacts_30d": 1.0}
    (reason,) = reasons_of([contact(wait_seconds=1500.0)], shares)
    assert reason["feature"] == "long_waits_30d" and reason["contribution"] == pytest.approx(0.3)


def test_the_next_step_comes_only_from_actionable_reasons():
    assert all(family_kind(family) == "action" for family in NEXT_STEPS)
    assert next_step(["profile"], "high") == DEFAULT_STEP
    assert next_step(["profile", "transfers"], "high") == NEXT_STEPS["transfers"]
    reasons = reasons_of([contact()], {"tenure_days": 1.0}, signup_date="2024-03-01")
    assert [r["kind"] for r in reasons] == ["context"]
    assert next_step([r["family"] for r in reasons], "high") == DEFAULT_STEP
    assert "plan" not in DEFAULT_STEP and "deal" not in DEFAULT_STEP


def test_every_service_feature_declares_its_risky_direction():
    undeclared = [
        base
        for base, family in {**WINDOWED_FEATURES, **SNAPSHOT_FEATURES}.items()
        if family_kind(family) == "action" and base not in RISKY_DIRECTION
    ]
    assert undeclared == []
    assert risky_direction("wait_p90_seconds_30d") == MORE_IS_RISKIER
    assert risky_direction("csat_mean_7d") == LESS_IS_RISKIER
    assert risky_direction("profile_contract_type") is None


def test_the_trees_known_directions_agree_with_the_reasons_directions():
    """The monotone constraints (RISK_RISING / RISK_FALLING) are a part of the reasons'
    directions and never contradict them."""
    assert {RISKY_DIRECTION[base] for base in RISK_RISING} == {MORE_IS_RISKIER}
    assert {RISKY_DIRECTION[base] for base in RISK_FALLING} == {LESS_IS_RISKIER}
