"""Empty inputs, inactive customers, untouched inputs, settings."""

from __future__ import annotations

import pandas as pd
import pytest

from churnml.errors import ConfigError, ContractError
from features import FeatureSettings, build_features, feature_columns
from tests.features.helpers import AS_OF, customers, interactions


def test_empty_interactions_table_gives_a_row_per_active_customer():
    frame = build_features(
        customers({"customer_id": "C1"}, {"customer_id": "C2"}), interactions(), AS_OF
    )
    assert frame.index.tolist() == ["C1", "C2"]
    assert (frame["contacts_90d"] == 0).all()


def test_no_active_customer_gives_an_empty_frame_with_the_columns():
    frame = build_features(
        customers({"customer_id": "C1", "signup_date": "2025-01-01"}), interactions({}), AS_OF
    )
    assert len(frame) == 0
    assert frame.columns.tolist() == feature_columns(FeatureSettings())


def test_inputs_are_not_modified():
    table = customers({"customer_id": "C1"}, {"customer_id": "C2"})
    contacts = interactions(
        {"case_id": "K1", "started_at": "2024-04-02"},
        {"case_id": "K1", "wait_seconds": 5.0},
        {"customer_id": "C2", "topic": "billing"},
    )
    before = (table.copy(deep=True), contacts.copy(deep=True))
    build_features(table, contacts, AS_OF)
    pd.testing.assert_frame_equal(table, before[0])
    pd.testing.assert_frame_equal(contacts, before[1])


def test_contacts_of_unknown_customers_are_ignored():
    frame = build_features(customers(), interactions({"customer_id": "C9"}), AS_OF)
    assert frame.loc["C1", "contacts_7d"] == 0


def test_an_unknown_channel_is_named_by_its_row_in_the_table():
    # Contacts are dropped (an unknown customer, after as_of) and put in time order before
    # the check: the row named must still be the table's.
    contacts = interactions(
        {"customer_id": "C9"},
        {"started_at": "2024-04-02"},
        {"started_at": "2024-03-30 12:00"},
        {"started_at": "2024-03-29", "channel": "pigeon"},
    )
    with pytest.raises(ContractError, match=r"^interactions: channel 'pigeon' in row 3 "):
        build_features(customers(), contacts, AS_OF)


@pytest.mark.parametrize("as_of", ["2024-03-31T12:00", "yesterday"])
def test_as_of_must_be_a_day(as_of):
    with pytest.raises(ConfigError):
        build_features(customers(), interactions(), as_of)


def test_settings_round_trip_through_a_plain_dict():
    settings = FeatureSettings(windows=(14, 3), exclude_profile_columns=("email",))
    assert settings.windows == (3, 14)
    assert FeatureSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize(
    "raw", [{"windows": [0]}, {"long_wait_seconds": {"phone": 1.0}}, {"colour": "red"}]
)
def test_bad_settings_are_config_errors(raw):
    with pytest.raises(ConfigError):
        FeatureSettings.from_dict(raw)


def test_custom_windows_name_the_columns():
    frame = build_features(customers(), interactions({}), AS_OF, FeatureSettings(windows=(14,)))
    assert "contacts_14d" in frame and "contacts_7d" not in frame
