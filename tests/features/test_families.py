"""Hand-computed features on tiny tables, one behaviour per test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features import FeatureSettings, build_features, feature_columns, feature_family
from tests.features.helpers import AS_OF, customers, interactions


def feature(name: str, *contacts: dict, settings: FeatureSettings | None = None) -> float:
    frame = build_features(customers(), interactions(*contacts), AS_OF, settings)
    return frame.loc["C1", name]


def same(a: float, b: float) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(
    ("name", "contacts", "expected"),
    [
        ("contacts_7d", [{"started_at": "2024-03-31 23:59"}, {"started_at": "2024-03-25"}], 2),
        ("contacts_7d", [{"started_at": "2024-03-24 23:59"}], 0),  # 8 days back
        ("contacts_30d", [{"started_at": "2024-03-02"}, {"started_at": "2024-03-01 23:00"}], 1),
        ("contacts_chat_30d", [{"channel": "chat"}, {"channel": "phone"}], 1),
        ("contacts_7d", [{"started_at": "2024-04-01 00:00"}], 0),  # the next day is unseen
    ],
)
def test_contact_counts(name, contacts, expected):
    assert feature(name, *contacts) == expected


@pytest.mark.parametrize(
    ("name", "waits", "expected"),
    [
        ("wait_mean_seconds_7d", [10, 20, np.nan], 15.0),
        ("wait_max_seconds_7d", [10, 20, np.nan], 20.0),
        ("wait_p90_seconds_7d", [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 90.0),
        ("wait_p90_seconds_7d", [10, 20], 19.0),  # linear interpolation
        ("wait_mean_seconds_7d", [np.nan], float("nan")),  # no recorded wait: no data
    ],
)
def test_wait_statistics(name, waits, expected):
    assert same(feature(name, *({"wait_seconds": w} for w in waits)), expected)


@pytest.mark.parametrize(
    ("channel", "wait", "long"),
    [
        ("phone", 600, 0),
        ("phone", 601, 1),
        ("chat", 301, 1),
        ("email", 3600, 0),
        ("email", 90_000, 1),
        ("store", 901, 1),
    ],
)
def test_long_wait_is_beyond_the_channel_threshold(channel, wait, long):
    assert feature("long_waits_7d", {"channel": channel, "wait_seconds": wait}) == long


def test_long_wait_thresholds_come_from_settings():
    settings = FeatureSettings(
        long_wait_seconds=(*FeatureSettings().long_wait_seconds[1:], ("phone", 30.0))
    )
    assert feature("long_waits_7d", {"wait_seconds": 31}, settings=settings) == 1


def test_abandoned_contacts_are_counted():
    assert feature("abandoned_contacts_30d", {"abandoned": 1.0}, {"abandoned": 0.0}, {}) == 1


def test_repeat_contacts_are_contacts_beyond_the_first_of_a_case():
    contacts = [{"case_id": "K1", "started_at": f"2024-03-2{d}"} for d in (1, 2, 3)]
    assert feature("repeat_contacts_30d", *contacts) == 2


@pytest.mark.parametrize(("gap_days", "expected"), [(6, 1), (7, 1), (8, 0)])
def test_contact_without_case_repeats_a_topic_within_seven_days(gap_days, expected):
    first = {"topic": "billing", "started_at": "2024-03-10 09:00"}
    again = {
        "topic": "billing",
        "started_at": str(np.datetime64("2024-03-10T09:00") + np.timedelta64(gap_days, "D")),
    }
    assert feature("repeat_contacts_30d", first, again) == expected


def test_topic_repeat_needs_the_same_topic():
    contacts = [{"topic": "billing", "started_at": "2024-03-28"}, {"topic": "technical"}]
    assert feature("repeat_contacts_30d", *contacts) == 0


def test_channel_switches_count_new_channels_of_a_case():
    contacts = [
        {"case_id": "K1", "channel": "chat", "started_at": "2024-03-20"},
        {"case_id": "K1", "channel": "phone", "started_at": "2024-03-21"},
        {"case_id": "K1", "channel": "chat", "started_at": "2024-03-22"},
        {"case_id": "K1", "channel": "email", "started_at": "2024-03-23"},
    ]
    assert feature("channel_switches_30d", *contacts) == 2


def test_multi_agent_cases_count_cases_handled_by_several_agents():
    contacts = [
        {"case_id": "K1", "agent_id": "A", "started_at": "2024-03-20"},
        {"case_id": "K1", "agent_id": "B", "started_at": "2024-03-21"},
        {"case_id": "K1", "agent_id": "C", "started_at": "2024-03-22"},
        {"case_id": "K2", "agent_id": "A", "started_at": "2024-03-22"},
        {"case_id": "K2", "agent_id": "A", "started_at": "2024-03-23"},
    ]
    assert feature("multi_agent_cases_30d", *contacts) == 1


def test_transfers_are_summed_and_transferred_contacts_counted():
    contacts = [{"transfers": 2.0}, {"transfers": 1.0}, {"transfers": 0.0}, {}]
    assert feature("transfers_7d", *contacts) == 3
    assert feature("transferred_contacts_7d", *contacts) == 2


def test_escalated_contacts_are_counted():
    assert feature("escalated_contacts_7d", {"status": "escalated"}, {"status": "pending"}) == 1


def test_open_cases_are_cases_whose_last_status_is_not_resolved():
    contacts = [
        {"case_id": "K1", "status": "pending", "started_at": "2024-03-01"},
        {"case_id": "K1", "status": "resolved", "started_at": "2024-03-02"},
        {"case_id": "K2", "status": "resolved", "started_at": "2024-03-03"},
        {"case_id": "K2", "status": "escalated", "started_at": "2024-03-04"},
        {"case_id": "K3", "status": "pending", "started_at": "2024-03-10"},
    ]
    assert feature("open_cases", *contacts) == 2
    assert feature("open_escalated_cases", *contacts) == 1
    assert feature("oldest_open_case_age_days", *contacts) == 28  # K2 opened on 03-03


def test_no_open_case_has_no_oldest_age():
    assert math.isnan(feature("oldest_open_case_age_days", {"case_id": "K1", "status": "resolved"}))


def test_case_status_on_the_day_is_the_status_of_its_last_contact_up_to_the_day():
    contacts = [
        {"case_id": "K1", "status": "pending", "started_at": "2024-03-30"},
        {"case_id": "K1", "status": "resolved", "started_at": "2024-04-02"},  # after as_of
    ]
    assert feature("open_cases", *contacts) == 1


@pytest.mark.parametrize(
    ("first_statuses", "expected"),
    [(["resolved", "pending"], 0.5), (["resolved", None], 1.0), ([None], float("nan"))],
)
def test_first_contact_resolution_rate_is_over_cases_with_a_known_first_status(
    first_statuses, expected
):
    contacts = [{"case_id": f"K{i}", "status": s} for i, s in enumerate(first_statuses)]
    assert same(feature("first_contact_resolution_rate_30d", *contacts), expected)


def test_first_contact_resolution_looks_at_the_first_contact_only():
    contacts = [
        {"case_id": "K1", "status": "pending", "started_at": "2024-03-20"},
        {"case_id": "K1", "status": "resolved", "started_at": "2024-03-21"},
    ]
    assert feature("first_contact_resolution_rate_30d", *contacts) == 0.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [("csat_mean_30d", 3.0), ("csat_min_30d", 1.0), ("csat_last", 5.0), ("csat_answers_30d", 3)],
)
def test_csat_statistics(name, expected):
    contacts = [
        {"csat": 3.0, "started_at": "2024-03-20"},
        {"csat": 1.0, "started_at": "2024-03-21"},
        {"csat": 5.0, "started_at": "2024-03-22"},
        {"started_at": "2024-03-23"},
    ]
    assert feature(name, *contacts) == expected


def test_days_since_last_contact_counts_calendar_days():
    assert feature("days_since_last_contact", {"started_at": "2024-03-29 23:00"}) == 2
    assert feature("days_since_last_contact", {"started_at": "2024-03-31 23:59"}) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"wait_seconds": 4000.0},
        {"abandoned": 1.0},
        {"csat": 2.0},
        {"transfers": 2.0},
        {"status": "unresolved"},
        {"status": "escalated"},
    ],
)
def test_each_bad_sign_makes_a_bad_experience(bad):
    contacts = [{**bad, "started_at": "2024-03-21"}, {"started_at": "2024-03-30", "csat": 5.0}]
    assert feature("bad_experiences_30d", *contacts) == 1
    assert feature("days_since_last_bad_experience", *contacts) == 10


def test_trend_compares_the_last_30_days_with_the_60_before():
    contacts = [{"started_at": "2024-03-20"}] * 3 + [{"started_at": "2024-01-20"}] * 2
    assert feature("contacts_trend_per_day", *contacts) == pytest.approx(3 / 30 - 2 / 60)
    assert feature("contacts_trend_ratio", *contacts) == pytest.approx(4 / 2)


def test_customer_without_contacts_has_zero_counts_and_missing_statistics():
    frame = build_features(customers(), interactions(), AS_OF)
    row = frame.loc["C1"]
    assert row["contacts_90d"] == 0 and row["open_cases"] == 0
    assert row["contacts_trend_ratio"] == 1.0 and row["contacts_trend_per_day"] == 0.0
    for name in (
        "wait_mean_seconds_90d",
        "csat_last",
        "days_since_last_contact",
        "first_contact_resolution_rate_90d",
    ):
        assert math.isnan(row[name])


def test_profile_columns():
    table = customers(
        {"customer_id": "C1", "signup_date": "2024-03-01", "plan": "plus"},
        {"customer_id": "C2", "plan": None},
    )
    table["region"] = ["north", "south"]
    table["age"] = [30.0, np.nan]
    frame = build_features(table, interactions(), AS_OF)
    assert frame.loc["C1", "tenure_days"] == 30
    assert list(frame["plan"].cat.categories) == ["plus"]
    assert pd.isna(frame.loc["C2", "plan"])
    assert frame["profile_region"].dtype == "category"
    assert frame["profile_age"].dtype == np.float64
    assert frame.columns.tolist() == feature_columns(FeatureSettings(), ["region", "age"])


def test_frozen_categories_give_the_same_codes_for_one_customer():
    table = customers({"customer_id": "C1", "plan": "plus"}, {"customer_id": "C2"})
    settings = FeatureSettings().freeze(build_features(table, interactions(), AS_OF))
    alone = build_features(table.iloc[:1], interactions(), AS_OF, settings)
    assert list(alone["plan"].cat.categories) == ["basic", "plus"]
    assert FeatureSettings.from_dict(settings.to_dict()) == settings


def test_excluded_profile_columns_are_left_out():
    table = customers()
    table["email"] = ["a@example.com"]
    settings = FeatureSettings(exclude_profile_columns=("email",))
    assert "profile_email" not in build_features(table, interactions(), AS_OF, settings)


def test_only_active_customers_get_a_row_in_table_order():
    table = customers(
        {"customer_id": "C3"},
        {"customer_id": "C1", "churned_at": "2024-03-31"},  # left on the day: not active
        {"customer_id": "C2", "signup_date": "2024-04-01"},  # not yet a customer
        {"customer_id": "C0", "churned_at": "2024-04-01"},
    )
    frame = build_features(table, interactions(), AS_OF)
    assert frame.index.tolist() == ["C3", "C0"] and frame.index.name == "customer_id"


def test_every_column_has_a_family():
    frame = build_features(customers(), interactions({}), AS_OF)
    families = {feature_family(c) for c in frame.columns}
    assert {
        "waiting",
        "repeating yourself",
        "unresolved case",
        "transfers",
        "satisfaction",
        "resolution",
        "recency",
        "trend",
        "profile",
    } <= families
