"""The retention-history features: what the team did to a customer up to a day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.retention import RETENTION_COLUMNS, retention_history_features


def _contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["A", "A", "A", "B", "C"], dtype="string"),
            "contacted_at": pd.to_datetime(
                ["2026-01-01", "2026-01-10", "2026-01-20", "2026-01-05", "2026-01-08"]
            ),
            "group": pd.Series(["treated", "control", "treated", "treated", "control"]),
            "outcome": pd.Series(["accepted_offer", pd.NA, "declined", "not_reached", pd.NA]),
        }
    )


def test_history_counts_picks_calls_and_outcomes_up_to_the_day() -> None:
    frame = retention_history_features(_contacts(), as_of="2026-01-15")
    assert list(frame.columns) == list(RETENTION_COLUMNS)
    a = frame.loc["A"]
    assert a["retention_picks_total"] == 2 and a["retention_calls_total"] == 1
    assert a["retention_reached_total"] == 1 and a["retention_accepted_total"] == 1
    assert a["retention_declined_total"] == 0
    assert a["retention_days_since_last_call"] == 14
    assert a["retention_days_since_last_pick"] == 5
    b = frame.loc["B"]
    assert b["retention_calls_total"] == 1 and b["retention_reached_total"] == 0
    c = frame.loc["C"]
    assert c["retention_calls_total"] == 0 and np.isnan(c["retention_days_since_last_call"])


def test_a_pick_after_the_day_changes_nothing() -> None:
    before = retention_history_features(_contacts(), as_of="2026-01-15", customer_ids=["A"])
    later = pd.concat(
        [
            _contacts(),
            pd.DataFrame(
                {
                    "customer_id": ["A"],
                    "contacted_at": pd.to_datetime(["2026-01-16"]),
                    "group": ["treated"],
                    "outcome": ["reached"],
                }
            ),
        ],
        ignore_index=True,
    )
    after = retention_history_features(later, as_of="2026-01-15", customer_ids=["A"])
    pd.testing.assert_frame_equal(before, after)


def test_a_pick_on_the_day_is_seen() -> None:
    frame = retention_history_features(_contacts(), as_of="2026-01-20", customer_ids=["A"])
    assert frame.loc["A", "retention_days_since_last_call"] == 0


@pytest.mark.parametrize("contacts", [None, _contacts().iloc[:0]])
def test_customers_never_picked_get_zero_counts_and_no_days(contacts) -> None:
    frame = retention_history_features(contacts, as_of="2026-01-15", customer_ids=["X", "Y"])
    assert list(frame.index) == ["X", "Y"]
    assert (frame[list(RETENTION_COLUMNS[:5])] == 0).all().all()
    assert frame["retention_days_since_last_pick"].isna().all()


def test_the_input_is_not_mutated_and_one_customer_alone_equals_the_batch() -> None:
    contacts = _contacts()
    copy = contacts.copy()
    batch = retention_history_features(contacts, as_of="2026-01-31")
    alone = retention_history_features(
        contacts[contacts["customer_id"] == "B"], as_of="2026-01-31", customer_ids=["B"]
    )
    pd.testing.assert_frame_equal(contacts, copy)
    pd.testing.assert_frame_equal(batch.loc[["B"]], alone)
