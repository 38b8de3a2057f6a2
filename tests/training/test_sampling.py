"""Training at scale: the snapshot frame's storage and the seeded, weighted samples."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.training.helpers import load_world, simple_builder
from training import TrainingSettings, train_from_tables
from training.learners import training_sample
from training.snapshots import (
    EVALUATED,
    LABEL,
    SAMPLE_RATE,
    SNAPSHOT_DATE,
    build_snapshot_frame,
    labels_on,
    training_weights,
)

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
DAYS = [pd.Timestamp("2026-01-05"), pd.Timestamp("2026-02-02"), pd.Timestamp("2026-03-02")]


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_world(SAMPLE)


def test_below_max_train_rows_every_row_is_used_unweighted() -> None:
    y = np.array([0, 1, 0, 0, 1])
    assert training_sample(y, None, 5, seed=1) == (None, None)


def test_the_training_sample_keeps_every_churner_and_the_churn_rate() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(100_000) < 0.03).astype("int8")
    keep, weight = training_sample(y, None, 20_000, seed=7)
    assert keep is not None and weight is not None and len(keep) == 20_000
    assert np.all(np.diff(keep) > 0)
    assert y[keep].sum() == y.sum()  # every churner
    weighted_rate = np.sum(weight * y[keep]) / np.sum(weight)
    assert weighted_rate == pytest.approx(y.mean(), rel=1e-9)
    again, _ = training_sample(y, None, 20_000, seed=7)
    np.testing.assert_array_equal(keep, again)  # seeded


def test_the_training_sample_is_uniform_when_churners_would_fill_it() -> None:
    y = np.array([1, 0] * 50)
    keep, weight = training_sample(y, np.full(100, 2.0), 40, seed=1)
    assert keep is not None and len(keep) == 40
    np.testing.assert_array_equal(weight, np.full(40, 2.0))


def test_the_frame_stores_every_value_exactly_and_compactly(world) -> None:
    customers, interactions = world
    frame, sampling = build_snapshot_frame(
        customers, interactions, DAYS, simple_builder, TrainingSettings()
    )
    assert not sampling.active and sampling.kept_rows == sampling.active_rows == len(frame)
    built = simple_builder(customers, interactions, DAYS)
    for day in DAYS:
        part = frame[frame[SNAPSHOT_DATE] == day].set_index("customer_id")
        expected = built[day].loc[part.index]
        for column in expected.columns:
            if isinstance(expected[column].dtype, pd.CategoricalDtype):
                assert list(part[column].astype(object)) == list(expected[column].astype(object))
            else:
                np.testing.assert_array_equal(
                    part[column].to_numpy(dtype="float64"), expected[column].to_numpy(), column
                )
        labels = labels_on(customers, day, 30)
        np.testing.assert_array_equal(part[LABEL].to_numpy(), labels.loc[part.index].to_numpy())
    assert frame["contacts_7d"].dtype == np.float32  # counts: exact in float32
    assert frame["wait_mean_seconds_7d"].dtype == np.float64  # means: not
    assert frame[EVALUATED].all() and (frame[SAMPLE_RATE] == 1).all()
    assert training_weights(frame, np.arange(len(frame))) is None


def test_large_snapshots_keep_a_seeded_sample_and_every_churner(world) -> None:
    customers, interactions = world
    settings = TrainingSettings(max_snapshot_customers=600, seed=3)
    frame, sampling = build_snapshot_frame(customers, interactions, DAYS, simple_builder, settings)
    assert sampling.active and sampling.sampled_snapshots == len(DAYS)
    for day in DAYS:
        labels = labels_on(customers, day, 30)
        part = frame[frame[SNAPSHOT_DATE] == day]
        evaluated = part[part[EVALUATED]]
        assert len(evaluated) == pytest.approx(600, rel=0.15)  # about cap customers
        assert part[LABEL].sum() == labels.sum()  # every churner, for training
        rate = part[SAMPLE_RATE].iloc[0]
        assert rate == pytest.approx(600 / len(labels), rel=1e-6)
        # the uniform sample's churn rate, and the weighted rows', are the population's
        assert evaluated[LABEL].mean() == pytest.approx(labels.mean(), abs=0.05)
        rows = np.flatnonzero((frame[SNAPSHOT_DATE] == day).to_numpy())
        weight = training_weights(frame, rows)
        weighted = np.sum(weight * frame[LABEL].to_numpy()[rows]) / np.sum(weight)
        assert weighted == pytest.approx(labels.mean(), rel=0.1)
    # the same customers from one snapshot to the next, and from one run to the next
    first = set(frame.loc[frame[EVALUATED] & (frame[SNAPSHOT_DATE] == DAYS[0]), "customer_id"])
    second = set(frame.loc[frame[EVALUATED] & (frame[SNAPSHOT_DATE] == DAYS[1]), "customer_id"])
    assert len(first & second) > 0.8 * min(len(first), len(second))
    again, _ = build_snapshot_frame(customers, interactions, DAYS, simple_builder, settings)
    pd.testing.assert_frame_equal(frame, again)


@pytest.mark.slow
def test_a_sampled_training_run_stays_calibrated_and_logs_its_samples(world, tmp_path) -> None:
    customers, interactions = world
    settings = replace(
        TrainingSettings(home=tmp_path, backtest_folds=1),
        max_snapshot_customers=1_000,
        max_train_rows=20_000,
    )
    result = train_from_tables(customers, interactions, settings, builder=simple_builder)
    test = result.test["model"]
    assert test["ece"] < 0.03
    assert test["roc_auc"] > 0.6
    params = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id).data
    params = params.params
    assert params["setting.max_snapshot_customers"] == "1000"
    assert int(params["snapshot_sampling.sampled_snapshots"]) > 0
    assert params["snapshot_sampling.seed"] == str(settings.seed)
    assert params["fold1.train_rows"].startswith("20000 of ")
    assert params["fold1.train_rows"].endswith("weighted")


def test_customers_the_builder_leaves_out_are_left_out(world) -> None:
    customers, interactions = world

    def fewer(customers, interactions, days):
        return {
            day: frame.iloc[1:]
            for day, frame in simple_builder(customers, interactions, days).items()
        }

    frame, sampling = build_snapshot_frame(customers, interactions, DAYS, fewer, TrainingSettings())
    assert len(frame) == sampling.active_rows - len(DAYS)
    assert frame["customer_id"].notna().all() and frame[EVALUATED].all()
