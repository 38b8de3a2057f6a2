"""Snapshots, labels and time folds: the time rules of the contract."""

from __future__ import annotations

import pandas as pd
import pytest

from churnml.errors import DataError
from training.settings import TrainingSettings
from training.snapshots import (
    LABEL,
    SNAPSHOT_DATE,
    Fold,
    check_churners,
    labels_on,
    snapshot_dates,
    time_folds,
)

DAY = pd.Timestamp("2025-06-01")


def customers(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "signup_date": pd.to_datetime([r[1] for r in rows]),
            "churned_at": pd.to_datetime([r[2] for r in rows]),
        }
    )


@pytest.mark.parametrize(
    ("churned_at", "expected"),
    [
        (None, 0),
        ("2025-06-02", 1),  # the day after D
        ("2025-07-01", 1),  # D + 30, the last day of the window
        ("2025-07-02", 0),  # D + 31
    ],
)
def test_label_is_one_when_churn_falls_in_the_horizon(
    churned_at: str | None, expected: int
) -> None:
    labels = labels_on(customers(("C1", "2024-01-01", churned_at)), DAY, 30)
    assert labels.to_dict() == {"C1": expected}


def test_customers_gone_or_not_yet_signed_up_get_no_label() -> None:
    table = customers(
        ("gone", "2024-01-01", "2025-06-01"),  # churned on D: not active
        ("later", "2025-06-02", None),
        ("here", "2025-06-01", None),
    )
    assert list(labels_on(table, DAY, 30).index) == ["here"]


def test_snapshots_end_one_horizon_before_as_of_and_step_weekly() -> None:
    settings = TrainingSettings(horizon_days=30, lookback_days=365, min_history_days=0)
    dates = snapshot_dates(pd.Timestamp("2024-01-01"), pd.Timestamp("2025-12-31"), settings)
    assert dates[-1] == pd.Timestamp("2025-12-01")
    assert {(b - a).days for a, b in zip(dates, dates[1:], strict=False)} == {7}
    assert dates[0] >= pd.Timestamp("2025-12-01") - pd.Timedelta(days=365)


@pytest.mark.parametrize(
    ("horizon", "every", "test_n", "validation_n", "folds"),
    [(30, 7, 4, 4, 3), (14, 7, 2, 3, 4), (60, 7, 4, 4, 3), (30, 14, 2, 2, 3), (30, 1, 10, 5, 3)],
)
def test_no_label_window_of_a_fold_reaches_the_next_folds_features(
    horizon: int, every: int, test_n: int, validation_n: int, folds: int
) -> None:
    settings = TrainingSettings(
        horizon_days=horizon,
        snapshot_every_days=every,
        test_snapshots=test_n,
        validation_snapshots=validation_n,
        backtest_folds=folds,
        lookback_days=500,
        min_history_days=0,
    )
    as_of = pd.Timestamp("2025-12-31")
    dates = snapshot_dates(pd.Timestamp("2024-01-01"), as_of, settings)
    window = pd.Timedelta(days=horizon)
    for fold in time_folds(dates, settings, as_of=as_of):
        # a label of day D covers (D, D + H]; the next fold's features see up to its first day
        assert max(fold.train) + window < min(fold.validation)
        assert max(fold.validation) + window < min(fold.test)
        assert max(fold.test) + window <= as_of  # every test label is complete
        assert len(fold.test) == test_n and len(fold.validation) == validation_n


def test_the_first_fold_tests_on_the_latest_snapshots() -> None:
    settings = TrainingSettings(min_history_days=0)
    as_of = pd.Timestamp("2025-12-31")
    dates = snapshot_dates(pd.Timestamp("2024-01-01"), as_of, settings)
    folds = time_folds(dates, settings, as_of=as_of)
    assert folds[0].test[-1] == dates[-1]
    assert folds[1].test[-1] < folds[0].test[0]


def test_only_the_fold_of_the_latest_snapshots_produces_the_model() -> None:
    settings = TrainingSettings(min_history_days=0)
    as_of = pd.Timestamp("2025-12-31")
    dates = snapshot_dates(pd.Timestamp("2024-01-01"), as_of, settings)
    folds = time_folds(dates, settings, as_of=as_of)
    assert [fold.produces_model for fold in folds] == [True] + [False] * (len(folds) - 1)
    assert next(f for f in folds if f.produces_model).test[-1] == dates[-1]


def test_too_little_history_for_the_as_of_names_the_fix() -> None:
    settings = TrainingSettings()
    as_of = pd.Timestamp("2025-06-30")
    dates = snapshot_dates(pd.Timestamp("2025-01-01"), as_of, settings)
    with pytest.raises(DataError) as error:
        time_folds(dates, settings, as_of=as_of)
    message = str(error.value)
    assert "the contacts cover 6 months before it" in message
    assert "3 backtest folds and a 30-day horizon needs 10 months (27 snapshots)" in message
    assert message.endswith("or train with --backtest 1 (needs 8 months)")


def test_a_fold_without_churners_is_a_one_line_error() -> None:
    days = [pd.Timestamp("2025-01-01") + pd.Timedelta(days=7 * k) for k in range(3)]
    snapshots = pd.DataFrame(
        {
            SNAPSHOT_DATE: [day for day in days for _ in range(2)],
            LABEL: [1, 0, 0, 1, 0, 0],  # the test day has no churner
            "customer_id": ["a", "b"] * 3,
        }
    )
    fold = Fold(1, (days[0],), (days[1],), (days[2],))
    with pytest.raises(DataError, match="no customer churned") as error:
        check_churners(snapshots, fold, TrainingSettings())
    assert "\n" not in str(error.value)
    # What it needs, not a circle of flags: how many churners, over how many months.
    assert "training needs at least 9 churners spread over the last 10 months" in str(error.value)
