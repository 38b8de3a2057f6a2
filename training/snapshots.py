"""Training snapshots, their labels and the time folds they are split into.

A snapshot is the feature frame of the customers active on one day D together with
their label: 1 when ``D < churned_at <= D + horizon`` (shared/contract.md). Folds are
contiguous runs of snapshot dates; between two folds lies a gap of more than one
horizon, so that no label window of a fold reaches the first day of the next::

    train ... | gap > H | validation ... | gap > H | test ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import DataError
from training.settings import TrainingSettings

SNAPSHOT_DATE = "snapshot_date"
LABEL = "label"
SEGMENT = "segment"
RULE_CONTACTS = "rule_contacts_30d"
RULE_WINDOW_DAYS = 30

FeatureBuilder = Callable[
    [pd.DataFrame, pd.DataFrame, Sequence[pd.Timestamp]], Mapping[pd.Timestamp, pd.DataFrame]
]
"""``builder(customers, interactions, days) -> {day: features}``, as
``features.build_feature_snapshots`` with fixed settings."""


@dataclass(frozen=True)
class Fold:
    """One time split: snapshot dates of train, validation and test."""

    number: int
    train: tuple[pd.Timestamp, ...]
    validation: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]

    def describe(self) -> str:
        return (
            f"fold {self.number}: train {_span(self.train)}, validation {_span(self.validation)}, "
            f"test {_span(self.test)}"
        )


def _span(dates: Sequence[pd.Timestamp]) -> str:
    return f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d} ({len(dates)})"


def default_as_of(interactions: pd.DataFrame) -> pd.Timestamp:
    """The contract's default as-of: the day of the latest contact."""
    if interactions.empty:
        raise DataError("interactions: the table has no contacts; train needs service contacts")
    return pd.Timestamp(interactions["started_at"].max()).normalize()


def snapshot_dates(
    first_contact: pd.Timestamp, as_of: pd.Timestamp, settings: TrainingSettings
) -> list[pd.Timestamp]:
    """Snapshot days, oldest first, ending at the last day whose labels are complete.

    The last is ``as_of - horizon``; the others step back every ``snapshot_every_days``
    within ``lookback_days``, but none earlier than ``min_history_days`` after the
    first contact, so that every snapshot has full feature windows behind it.
    """
    last = pd.Timestamp(as_of).normalize() - pd.Timedelta(days=settings.horizon_days)
    earliest = max(
        last - pd.Timedelta(days=settings.lookback_days),
        pd.Timestamp(first_contact).normalize() + pd.Timedelta(days=settings.min_history_days),
    )
    step = pd.Timedelta(days=settings.snapshot_every_days)
    dates: list[pd.Timestamp] = []
    day = last
    while day >= earliest:
        dates.append(day)
        day -= step
    return dates[::-1]


def time_folds(
    dates: Sequence[pd.Timestamp], settings: TrainingSettings, *, as_of: pd.Timestamp
) -> list[Fold]:
    """The rolling backtest folds; fold 1 holds the latest snapshots as its test fold.

    Raises DataError naming the fix when the history cannot hold them all.
    """
    dates = sorted(pd.Timestamp(d) for d in dates)
    horizon = pd.Timedelta(days=settings.horizon_days)
    folds: list[Fold] = []
    for k in range(settings.backtest_folds):
        end = len(dates) - k * settings.test_snapshots
        test = dates[max(end - settings.test_snapshots, 0) : end]
        validation = [d for d in dates if d + horizon < (test[0] if test else dates[0])]
        validation = validation[-settings.validation_snapshots :]
        train = [d for d in dates if validation and d + horizon < validation[0]]
        if (
            len(test) < settings.test_snapshots
            or len(validation) < settings.validation_snapshots
            or not train
        ):
            need = _snapshots_needed(settings)
            raise DataError(
                f"as-of {as_of:%Y-%m-%d}: {len(dates)} snapshots (every "
                f"{settings.snapshot_every_days} days, from {settings.min_history_days} days after "
                f"the first contact to as-of minus the {settings.horizon_days}-day horizon) cannot "
                f"hold {settings.backtest_folds} backtest folds, which need about {need}; "
                "use a later --as-of, a shorter --horizon or fewer --backtest folds"
            )
        folds.append(Fold(k + 1, tuple(train), tuple(validation), tuple(test)))
    return folds


def _snapshots_needed(settings: TrainingSettings) -> int:
    gap = settings.horizon_days // settings.snapshot_every_days + 1
    return (
        settings.test_snapshots * settings.backtest_folds
        + settings.validation_snapshots
        + 2 * gap
        + 1
    )


def labels_on(customers: pd.DataFrame, day: pd.Timestamp, horizon_days: int) -> pd.Series:
    """Labels of the customers active on ``day``, indexed by customer_id."""
    day = pd.Timestamp(day).normalize()
    signup = customers["signup_date"]
    churned = customers["churned_at"]
    active = (signup <= day) & (churned.isna() | (churned > day))
    leaves = churned.notna() & (churned > day) & (churned <= day + pd.Timedelta(days=horizon_days))
    label = leaves[active].astype("int8")
    label.index = pd.Index(customers.loc[active, CUSTOMER_ID].to_numpy(), name=CUSTOMER_ID)
    return label


def contacts_in_window(
    interactions: pd.DataFrame, day: pd.Timestamp, days: int = RULE_WINDOW_DAYS
) -> pd.Series:
    """Contacts per customer in the ``days`` days up to the end of ``day`` (the rule baseline)."""
    end = pd.Timestamp(day).normalize() + pd.Timedelta(days=1)
    start = end - pd.Timedelta(days=days)
    started = interactions["started_at"]
    window = interactions.loc[(started >= start) & (started < end), CUSTOMER_ID]
    return window.value_counts().astype("float64")


def build_snapshots(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    dates: Sequence[pd.Timestamp],
    builder: FeatureBuilder,
    settings: TrainingSettings,
) -> pd.DataFrame:
    """One frame of all snapshots: features, label, segment and the rule's contact count.

    Rows are (snapshot_date, customer_id); feature columns come from ``builder`` alone.
    """
    frames = []
    segments = customers.set_index(CUSTOMER_ID)["segment"] if "segment" in customers else None
    days = sorted(pd.Timestamp(d) for d in dates)
    by_day = builder(customers, interactions, days)
    for day in days:
        features = by_day[day]
        label = labels_on(customers, day, settings.horizon_days)
        features = features.loc[features.index.isin(label.index)]
        frame = features.copy()
        frame[LABEL] = label.reindex(frame.index).to_numpy()
        frame[RULE_CONTACTS] = (
            contacts_in_window(interactions, day).reindex(frame.index).fillna(0.0).to_numpy()
        )
        if segments is not None:
            frame[SEGMENT + "__eval"] = segments.reindex(frame.index).astype("object").to_numpy()
        frame[SNAPSHOT_DATE] = day
        frames.append(frame.reset_index())
    snapshots = pd.concat(frames, ignore_index=True)
    return unify_categories(snapshots)


def unify_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every text column one category list, so that LightGBM codes agree across snapshots,
    and make every numeric column float64 (LightGBM refuses pyarrow-backed dtypes)."""
    frame = frame.copy()
    for column in frame.columns:
        if column in (CUSTOMER_ID, SNAPSHOT_DATE):
            continue
        dtype = frame[column].dtype
        if (
            isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
        ):
            values = frame[column].astype("object")
            values = values.where(values.notna(), None)
            categories = sorted({str(v) for v in values.dropna().unique()})
            frame[column] = pd.Categorical(
                values.map(lambda v: None if v is None else str(v)), categories=categories
            )
        elif column != LABEL and (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def fold_rows(snapshots: pd.DataFrame, dates: Sequence[pd.Timestamp]) -> np.ndarray:
    return snapshots[SNAPSHOT_DATE].isin(list(dates)).to_numpy()


def check_churners(snapshots: pd.DataFrame, fold: Fold, settings: TrainingSettings) -> None:
    """DataError when a part of the fold has no churner (or only churners)."""
    for part in ("train", "validation", "test"):
        dates = getattr(fold, part)
        labels = snapshots.loc[fold_rows(snapshots, dates), LABEL]
        if labels.sum() == 0 or labels.sum() == len(labels):
            if labels.sum() == 0:
                what, fix = (
                    "no customer churned",
                    "use a longer --horizon, fewer --backtest folds or a later --as-of",
                )
            else:
                what, fix = "every customer churned", "check churned_at in the customers table"
            raise DataError(
                f"fold {fold.number} {part} snapshots {_span(dates)}: {what} within "
                f"{settings.horizon_days} days of any snapshot; {fix}"
            )
