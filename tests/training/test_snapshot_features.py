"""The training snapshots see what ``build_features`` sees on their day, for every customer.

The snapshot path builds one contact history for many days and cuts it per day; scoring
builds features for one day. Both take the cut from ``features.visible_end``; these tests
hold the snapshot frame to the scoring path's numbers, so that a cut of its own (one day
late, say) would fail here rather than leak the future into training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_features, visible_end
from tests.features.helpers import customers as customer_rows
from tests.features.helpers import interactions as contact_rows
from tests.oracles.world import make_world
from training.settings import TrainingSettings
from training.snapshots import (
    RULE_CONTACTS,
    SNAPSHOT_DATE,
    build_snapshot_frame,
    contacts_in_window,
    default_builder,
)

END = "2024-12-31"
DAYS = [pd.Timestamp(d) for d in ("2024-06-30", "2024-09-01", "2024-09-02", "2024-11-17")]


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_world(400, 6000, end=END, days=365, seed=5)


@pytest.fixture(scope="module")
def snapshots(world) -> pd.DataFrame:
    customers, interactions = world
    frame, _ = build_snapshot_frame(
        customers, interactions, DAYS, default_builder(), TrainingSettings()
    )
    return frame


def as_comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float64 (snapshots store float32 where it is exact), text as text."""
    out = {}
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            out[column] = values.astype("object").where(values.notna(), None).astype("object")
        else:
            out[column] = values.to_numpy(dtype=np.float64)
    return pd.DataFrame(out, index=frame.index)


@pytest.mark.parametrize("day", DAYS, ids=[f"{d:%Y-%m-%d}" for d in DAYS])
def test_a_snapshot_equals_build_features_on_its_day_for_every_customer(world, snapshots, day):
    customers, interactions = world
    expected = build_features(customers, interactions, day)
    rows = snapshots[snapshots[SNAPSHOT_DATE] == day].set_index("customer_id")
    assert len(rows) == len(expected) > 100
    got = rows.loc[expected.index, list(expected.columns)]
    pd.testing.assert_frame_equal(as_comparable(got), as_comparable(expected), check_names=False)


@pytest.mark.parametrize("day", DAYS, ids=[f"{d:%Y-%m-%d}" for d in DAYS])
def test_the_rule_baseline_counts_the_contacts_build_features_counts(world, snapshots, day):
    customers, interactions = world
    expected = build_features(customers, interactions, day)["contacts_30d"]
    rows = snapshots[snapshots[SNAPSHOT_DATE] == day].set_index("customer_id")
    np.testing.assert_array_equal(
        rows.loc[expected.index, RULE_CONTACTS].to_numpy(dtype=np.float64), expected.to_numpy()
    )
    counted = contacts_in_window(interactions, day).reindex(expected.index).fillna(0.0)
    np.testing.assert_array_equal(counted.to_numpy(), expected.to_numpy())


def test_the_world_has_contacts_on_the_day_after_each_snapshot(world):
    """The tests above can see a cut one day late: each snapshot day is followed by
    contacts that such a cut would let in."""
    _, interactions = world
    for day in DAYS:
        end = visible_end(day)
        started = interactions["started_at"]
        assert ((started >= end) & (started < end + pd.Timedelta(days=1))).sum() > 0


@pytest.mark.parametrize(
    ("started_at", "visible_on_day"),
    [("2024-03-31 23:59:59", True), ("2024-04-01 00:00:00", False)],
)
def test_a_contact_at_midnight_after_the_day_is_not_in_its_snapshot(started_at, visible_on_day):
    day = pd.Timestamp("2024-03-31")
    customers = customer_rows({"customer_id": "C1"})
    contacts = contact_rows({"started_at": started_at, "case_id": "K1", "status": "pending"})
    later = [day, day + pd.Timedelta(days=1), day + pd.Timedelta(days=14)]
    frame, _ = build_snapshot_frame(
        customers, contacts, later, default_builder(), TrainingSettings()
    )
    on_day = frame[frame[SNAPSHOT_DATE] == day].iloc[0]
    assert on_day["contacts_7d"] == float(visible_on_day)
    assert on_day["open_cases"] == float(visible_on_day)
    assert on_day[RULE_CONTACTS] == float(visible_on_day)
    next_day = frame[frame[SNAPSHOT_DATE] == later[1]].iloc[0]
    assert next_day["contacts_7d"] == 1.0
