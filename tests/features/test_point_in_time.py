"""Nothing after the as-of day changes a feature, on the scoring path (``build_features``)
and on the training path (``build_feature_snapshots`` over many days, where the contacts
after D stay in the history for the later days); one customer alone equals the batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnml.contract import CHANNELS, STATUSES
from features import build_feature_snapshots, build_features, visible_end
from tests.oracles.reference_features import duckdb_features, pandas_features
from tests.oracles.world import make_world

AS_OF = pd.Timestamp("2024-06-30")
END = visible_end(AS_OF)
# Snapshot days around AS_OF: days after it keep later contacts in the shared history,
# so that only the per-day cut keeps them out of AS_OF's frame.
SNAPSHOT_DAYS = [AS_OF - pd.Timedelta(days=35), AS_OF, END, AS_OF + pd.Timedelta(days=60)]


def features_on_as_of(path: str, customers: pd.DataFrame, interactions: pd.DataFrame):
    """AS_OF's features by the scoring path or the training (snapshot) path."""
    if path == "build_features":
        return build_features(customers, interactions, AS_OF)
    return build_feature_snapshots(customers, interactions, SNAPSHOT_DAYS)[AS_OF]


PATHS = pytest.mark.parametrize("path", ["build_features", "snapshots"])


@pytest.fixture(scope="module")
def world():
    customers, interactions = make_world(300, 3000, end="2024-09-30", days=270, seed=7)
    return customers, interactions


def contact_rows(draw, n: int, customer_ids: list[str]) -> pd.DataFrame:
    """n contacts after the as-of day, drawn freely."""
    rows = []
    for _ in range(n):
        rows.append(
            {
                "interaction_id": f"X{len(rows)}",
                "customer_id": draw(st.sampled_from(customer_ids)),
                "started_at": END + pd.Timedelta(seconds=draw(st.integers(0, 200 * 86_400))),
                "channel": draw(st.sampled_from(CHANNELS)),
                "case_id": draw(st.sampled_from([None, "K1", "K2", "NEW"])),
                "topic": draw(st.sampled_from([None, "billing", "technical"])),
                "wait_seconds": draw(st.sampled_from([np.nan, 0.0, 5000.0])),
                "handle_seconds": np.nan,
                "agent_id": draw(st.sampled_from([None, "A1", "A9"])),
                "transfers": draw(st.sampled_from([np.nan, 0.0, 3.0])),
                "abandoned": draw(st.sampled_from([np.nan, 0.0, 1.0])),
                "status": draw(st.sampled_from([None, *STATUSES])),
                "csat": draw(st.sampled_from([np.nan, 1.0, 5.0])),
            }
        )
    return pd.DataFrame(rows)


def typed_like(frame: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=template.columns)
    for column in template.columns:
        frame[column] = frame[column].astype(template[column].dtype)
    return frame


@PATHS
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_contacts_after_as_of_change_nothing(world, path, data):
    customers, interactions = world
    expected = features_on_as_of(path, customers, interactions)
    ids = customers["customer_id"].tolist()[:20]
    later = interactions["started_at"] >= END
    action = data.draw(st.sampled_from(["add", "remove", "change"]))
    if action == "add":
        extra = typed_like(contact_rows(data.draw, data.draw(st.integers(1, 8)), ids), interactions)
        position = data.draw(st.integers(0, len(interactions)))
        changed = pd.concat(
            [interactions.iloc[:position], extra, interactions.iloc[position:]], ignore_index=True
        )
    elif action == "remove":
        drop = data.draw(st.lists(st.sampled_from(np.flatnonzero(later).tolist()), max_size=50))
        changed = interactions.drop(index=drop)
    else:
        changed = interactions.copy()
        rows = np.flatnonzero(later)[: data.draw(st.integers(1, 200))]
        changed.loc[rows, "status"] = "escalated"
        changed.loc[rows, "case_id"] = changed.loc[rows[::-1], "case_id"].to_numpy()
        changed.loc[rows, "csat"] = 1.0
        changed.loc[rows, "wait_seconds"] = 99_999.0
    pd.testing.assert_frame_equal(features_on_as_of(path, customers, changed), expected)


@PATHS
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(days_after=st.integers(1, 2000), share=st.floats(0.0, 1.0))
def test_moving_churned_at_past_as_of_changes_nothing(world, path, days_after, share):
    customers, interactions = world
    expected = features_on_as_of(path, customers, interactions)
    changed = customers.copy()
    future = changed["churned_at"].isna() | (changed["churned_at"] > AS_OF)
    pick = future & (np.random.default_rng(days_after).random(len(changed)) < share)
    changed.loc[pick, "churned_at"] = AS_OF + pd.Timedelta(days=days_after)
    pd.testing.assert_frame_equal(features_on_as_of(path, changed, interactions), expected)


def test_the_property_world_has_contacts_right_after_as_of():
    """The property above means something on the snapshot path: the world has contacts
    on the days after AS_OF that a cut one day late would let in."""
    _, interactions = make_world(300, 3000, end="2024-09-30", days=270, seed=7)
    next_day = (interactions["started_at"] >= END) & (
        interactions["started_at"] < END + pd.Timedelta(days=1)
    )
    assert next_day.sum() >= 5


@pytest.mark.parametrize(
    ("started_at", "visible_on_as_of"),
    [
        ("2024-06-30 23:59:59.999999999", True),  # the last instant of D
        ("2024-07-01 00:00:00", False),  # the first instant of D + 1
    ],
)
def test_snapshot_cut_is_the_end_of_the_day(started_at, visible_on_as_of):
    """A contact at 00:00 of D + 1 is not visible on D in any snapshot, one the instant
    before is; the scoring path agrees."""
    from tests.features.helpers import customers as customer_rows
    from tests.features.helpers import interactions as contact_rows_of

    customers = customer_rows({"customer_id": "C1"})
    contacts = contact_rows_of(
        {"started_at": started_at, "case_id": "K1", "status": "pending", "wait_seconds": 900.0}
    )
    snapshots = build_feature_snapshots(customers, contacts, SNAPSHOT_DAYS)
    alone = build_features(customers, contacts, AS_OF)
    for frame in (snapshots[AS_OF], alone):
        row = frame.loc["C1"]
        assert row["contacts_7d"] == float(visible_on_as_of)
        assert row["open_cases"] == float(visible_on_as_of)
        assert row["long_waits_90d"] == float(visible_on_as_of)
        assert np.isnan(row["days_since_last_contact"]) != visible_on_as_of
    # The day after sees it whatever side of midnight it started.
    assert snapshots[END].loc["C1", "contacts_7d"] == 1.0


def test_visible_end_is_the_next_midnight():
    assert visible_end("2024-06-30") == pd.Timestamp("2024-07-01")
    assert visible_end(pd.Timestamp("2024-06-30", tz="UTC")) == pd.Timestamp("2024-07-01")


def test_one_customer_alone_equals_the_customer_in_a_batch_of_thousands():
    customers, interactions = make_world(3000, 30_000, seed=3)
    batch = build_features(customers, interactions, "2024-12-31")
    counts = interactions["customer_id"].value_counts()
    for customer_id in [counts.index[0], counts.index[len(counts) // 2], counts.index[-1]]:
        alone_customers = customers[customers["customer_id"] == customer_id]
        alone = build_features(
            alone_customers,
            interactions[interactions["customer_id"] == customer_id],
            "2024-12-31",
        )
        numeric = batch.select_dtypes("number").columns
        pd.testing.assert_frame_equal(alone[numeric], batch.loc[[customer_id], numeric])
        for column in ("segment", "plan"):  # categories differ unless frozen; values agree
            assert str(alone.loc[customer_id, column]) == str(batch.loc[customer_id, column])


@pytest.mark.parametrize("as_of", ["2024-12-31", "2024-05-20"])
def test_pandas_duckdb_and_build_features_agree_on_every_feature(as_of):
    customers, interactions = make_world(800, 8000, seed=11)
    ours = build_features(customers, interactions, as_of)
    for reference in (
        pandas_features(customers, interactions, as_of),
        duckdb_features(customers, interactions, as_of),
    ):
        pd.testing.assert_frame_equal(
            ours, reference, check_exact=False, rtol=1e-9, check_index_type=False, check_dtype=False
        )
