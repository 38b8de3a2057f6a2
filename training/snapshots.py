"""Training snapshots, their labels and the time folds they are split into.

A snapshot is the feature frame of the customers active on one day D together with
their label: 1 when ``D < churned_at <= D + horizon`` (shared/contract.md). Folds are
contiguous runs of snapshot dates; between two folds lies a gap of more than one
horizon, so that no label window of a fold reaches the first day of the next::

    train ... | gap > H | validation ... | gap > H | test ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import DataError
from churnml.progress import counted
from features.build import visible_end
from training.settings import TrainingSettings

if TYPE_CHECKING:
    from features import FeatureSettings

SNAPSHOT_DATE = "snapshot_date"
LABEL = "label"
SEGMENT = "segment"
RULE_CONTACTS = "rule_contacts_30d"
SEGMENT_EVAL = SEGMENT + "__eval"
SAMPLE_RATE = "snapshot__sample_rate"
EVALUATED = "snapshot__evaluated"
_ADDED = {CUSTOMER_ID, LABEL, RULE_CONTACTS, SEGMENT_EVAL, SNAPSHOT_DATE, SAMPLE_RATE, EVALUATED}
RULE_WINDOW_DAYS = 30

FeatureBuilder = Callable[
    [pd.DataFrame, pd.DataFrame, Sequence[pd.Timestamp]], Mapping[pd.Timestamp, pd.DataFrame]
]
"""``builder(customers, interactions, days) -> {day: features}``, as
``features.build_feature_snapshots`` with fixed settings."""


def default_builder(feature_settings: FeatureSettings | None = None) -> FeatureBuilder:
    """``features.build_feature_snapshots`` with the given FeatureSettings (None: defaults),
    but lazy: one ``ContactHistory`` is built at once and each day's frame only when it
    is read, so that the caller need not hold every day's frame at the same time."""
    import features

    def build(
        customers: pd.DataFrame, interactions: pd.DataFrame, days: Sequence[pd.Timestamp]
    ) -> Mapping[pd.Timestamp, pd.DataFrame]:
        settings = feature_settings or features.FeatureSettings()
        parsed = [features.parse_as_of(day) for day in days]
        if not parsed:
            return {}
        history = features.ContactHistory(customers, interactions, settings, until=max(parsed))
        return _LazyDays(history, parsed)

    return build


class _LazyDays(Mapping):
    """``{day: history.features_at(day)}``, each frame computed when it is read."""

    def __init__(self, history: Any, days: list[pd.Timestamp]) -> None:
        self._history = history
        self._days = {pd.Timestamp(day): day for day in days}

    def __getitem__(self, day: pd.Timestamp) -> pd.DataFrame:
        return self._history.features_at(self._days[pd.Timestamp(day)])

    def __iter__(self) -> Iterator[pd.Timestamp]:
        return iter(self._days)

    def __len__(self) -> int:
        return len(self._days)


@dataclass(frozen=True)
class Fold:
    """One time split: snapshot dates of train, validation and test. ``produces_model``:
    this fold's fit becomes the registered model (the fold that tests on the latest
    snapshots); the other folds only backtest the same recipe."""

    number: int
    train: tuple[pd.Timestamp, ...]
    validation: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]
    produces_model: bool = False

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
    """The rolling backtest folds; fold 1 holds the latest snapshots as its test fold and
    produces the model.

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
            covered = _months(_covered(dates, settings))
            every = settings.snapshot_every_days
            folds_used = counted(settings.backtest_folds, "backtest fold")
            raise DataError(
                f"as-of {as_of:%Y-%m-%d}: the contacts cover {covered} before it "
                f"({counted(len(dates), 'snapshot')}, every {every} days); training with "
                f"{folds_used} and a {settings.horizon_days}-day horizon needs "
                f"{_months(_days_needed(settings))} ({need} snapshots){_fewer(settings)}"
            )
        folds.append(Fold(k + 1, tuple(train), tuple(validation), tuple(test), k == 0))
    return folds


def snapshot_plan(
    first_contact: pd.Timestamp, as_of: pd.Timestamp, settings: TrainingSettings
) -> tuple[list[Fold], list[pd.Timestamp]]:
    """The backtest folds and every snapshot day they need, oldest first: with a refit
    (``settings.refit``), every day from the first the folds use to ``as_of - horizon``,
    the days in the gaps between folds too (the refit trains on every labelled day)."""
    dates = snapshot_dates(first_contact, as_of, settings)
    folds = time_folds(dates, settings, as_of=as_of)
    needed = sorted({d for f in folds for d in (*f.train, *f.validation, *f.test)})
    if settings.refit != "off":
        needed = [d for d in dates if d >= needed[0]]
    return folds, needed


def _covered(dates: Sequence[pd.Timestamp], settings: TrainingSettings) -> int:
    """Days of contacts the snapshots stand on: warm-up, the snapshots, the horizon."""
    if not dates:
        return settings.min_history_days
    span = (dates[-1] - dates[0]).days if len(dates) > 1 else 0
    return settings.min_history_days + span + settings.horizon_days


def _days_needed(settings: TrainingSettings) -> int:
    """Days of contacts training needs: the warm-up before the first snapshot, the snapshots
    the folds need, and the horizon after the last one."""
    return (
        settings.min_history_days
        + (_snapshots_needed(settings) - 1) * settings.snapshot_every_days
        + settings.horizon_days
    )


def _months(days: int) -> str:
    months = max(1, round(days / 30.44))
    return "1 month" if months == 1 else f"{months} months"


def _fewer(settings: TrainingSettings) -> str:
    """The advice for a shorter history: what one backtest fold needs, or nothing."""
    if settings.backtest_folds == 1:
        return "; load a longer history (--as-of later, or older contacts)"
    one = _days_needed(replace(settings, backtest_folds=1))
    return f"; load a longer history, or train with --backtest 1 (needs {_months(one)})"


def churners_needed(settings: TrainingSettings) -> str:
    """What training needs of churners, in words (the no-churner error's advice)."""
    parts = 3 * settings.backtest_folds
    return (
        f"training needs at least {parts} churners spread over the last "
        f"{_months(_days_needed(settings))} of the data: one who left within "
        f"{settings.horizon_days} days after the snapshots of each train, validation and "
        f"test part of {_the_folds(settings.backtest_folds)} (a model worth promoting "
        "needs a few hundred)"
    )


def _the_folds(count: int) -> str:
    return "the backtest fold" if count == 1 else f"the {count} backtest folds"


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
    end = visible_end(pd.Timestamp(day).normalize())
    start = end - pd.Timedelta(days=days)
    started = interactions["started_at"]
    window = interactions.loc[(started >= start) & (started < end), CUSTOMER_ID]
    return window.value_counts().astype("float64")


def customer_draws(ids: pd.Series, seed: int) -> np.ndarray:
    """A number in [0, 1) per customer: a seeded hash of its id, the same on every snapshot.

    Snapshot sampling keeps a customer when its draw is below the snapshot's rate, so
    that the sampled customers stay the same from week to week and from run to run.
    """
    hashed = pd.util.hash_pandas_object(
        pd.Series(ids).astype("object"), index=False, hash_key=f"{seed % 10**16:016d}"
    ).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class SnapshotSampling:
    """What ``build_snapshot_frame`` kept: every active customer, unless a snapshot has more
    than ``cap``. See ``build_snapshot_frame`` for the rule."""

    cap: int
    seed: int
    active_rows: int
    kept_rows: int
    evaluated_rows: int
    sampled_snapshots: int
    min_rate: float

    @property
    def active(self) -> bool:
        return self.sampled_snapshots > 0

    def params(self) -> dict[str, Any]:
        """MLflow parameters that describe the sampling."""
        rule = (
            "off: no snapshot has more active customers than the cap"
            if not self.active
            else (
                f"above {self.cap} active customers a snapshot keeps the customers whose seeded "
                f"hash (seed {self.seed}) falls below cap/active (for training, validation and "
                "test) and every churner of its horizon (training only, the others weighted "
                "by active/cap)"
            )
        )
        return {
            "snapshot_sampling": rule,
            "snapshot_sampling.cap": self.cap,
            "snapshot_sampling.seed": self.seed,
            "snapshot_sampling.sampled_snapshots": self.sampled_snapshots,
            "snapshot_sampling.min_rate": round(self.min_rate, 6),
            "snapshot_active_rows": self.active_rows,
            "snapshot_evaluated_rows": self.evaluated_rows,
        }


@dataclass(frozen=True)
class _Day:
    """The rows one snapshot stores: customers-table positions, labels, evaluation flags."""

    day: pd.Timestamp
    positions: np.ndarray
    label: np.ndarray
    evaluated: np.ndarray | None  # None: every row (no sampling)
    rate: float
    active: int


def _active(customers: pd.DataFrame, day: pd.Timestamp) -> np.ndarray:
    signup = customers["signup_date"]
    churned = customers["churned_at"]
    return ((signup <= day) & (churned.isna() | (churned > day))).to_numpy(dtype=bool)


def count_active(customers: pd.DataFrame, days: Sequence[pd.Timestamp]) -> np.ndarray:
    """Active customers of ``customers`` on each of ``days`` (what sampling decides on)."""
    return np.array([int(_active(customers, pd.Timestamp(d)).sum()) for d in days], dtype=np.int64)


def _plan_days(
    customers: pd.DataFrame,
    days: Sequence[pd.Timestamp],
    settings: TrainingSettings,
    active_counts: Sequence[int] | None = None,
) -> list[_Day]:
    churned = customers["churned_at"]
    draws = None
    plan = []
    for index, day in enumerate(days):
        active = _active(customers, day)
        leaves = (
            churned.notna()
            & (churned > day)
            & (churned <= day + pd.Timedelta(days=settings.horizon_days))
        ).to_numpy(dtype=bool)
        n_active = int(active.sum())
        # Sampling is decided on the whole table's count when these rows are a part of it.
        n_table = n_active if active_counts is None else int(active_counts[index])
        if n_table <= settings.max_snapshot_customers:
            positions = np.flatnonzero(active)
            plan.append(_Day(day, positions, leaves[positions].astype("int8"), None, 1.0, n_active))
            continue
        if draws is None:
            draws = customer_draws(customers[CUSTOMER_ID], settings.seed)
        rate = settings.max_snapshot_customers / n_table
        drawn = draws < rate
        positions = np.flatnonzero(active & (drawn | leaves))
        plan.append(
            _Day(day, positions, leaves[positions].astype("int8"), drawn[positions], rate, n_active)
        )
    return plan


def build_snapshots(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    dates: Sequence[pd.Timestamp],
    builder: FeatureBuilder,
    settings: TrainingSettings,
) -> pd.DataFrame:
    """``build_snapshot_frame`` without the sampling summary."""
    return build_snapshot_frame(customers, interactions, dates, builder, settings)[0]


def build_snapshot_frame(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    dates: Sequence[pd.Timestamp],
    builder: FeatureBuilder,
    settings: TrainingSettings,
    *,
    active_counts: Sequence[int] | None = None,
) -> tuple[pd.DataFrame, SnapshotSampling]:
    """One frame of all snapshots: features, label, segment and the rule's contact count.

    Rows are (snapshot_date, customer_id); feature columns come from ``builder`` alone.
    Text columns become categories with one category list (LightGBM codes agree across
    snapshots); numeric ones are float32 when that keeps every value exactly, else
    float64 (LightGBM refuses pyarrow-backed dtypes). The frame is filled one snapshot
    at a time, so that the builder's frames of other days need not be held.

    Sampling, for very large worlds only: a snapshot with more than
    ``settings.max_snapshot_customers`` active customers keeps the customers whose
    seeded hash (``customer_draws``) is below ``rate = cap / active``: a uniform sample,
    marked in the ``EVALUATED`` column, on which validation, calibration and test
    metrics stay unbiased. It also keeps every churner of its horizon for training,
    where the sampled non-churners get the weight ``1 / rate`` (``training_weights``),
    so that the weighted rows have the population's churn rate and a probability of 0.2
    still means 20%. ``SAMPLE_RATE`` holds the rate (1 without sampling). A snapshot with
    at most ``max_snapshot_customers`` active customers (150 k by default: every world of up
    to about 10^5 customers) keeps all of them, unweighted.

    ``active_counts`` (one per day of ``sorted(dates)``): when ``customers`` is a part of a
    table (the Dask engine's customer partitions), the active customers of the whole table,
    on which the sampling is decided; the rows and their draws stay this part's. The
    summary then counts this part's rows (sum them over the parts).
    """
    days = sorted(pd.Timestamp(d) for d in dates)
    plan = _plan_days(customers, days, settings, active_counts)
    ids = pd.Index(customers[CUSTOMER_ID])
    counts = _ContactCounts(interactions, ids)
    segments = customers["segment"] if "segment" in customers else None

    by_day = builder(_customers_kept(customers, plan), interactions, days)
    store = _FrameStore(sum(len(d.positions) for d in plan))
    for d in plan:
        features = by_day[d.day]
        if isinstance(by_day, dict):
            by_day[d.day] = None  # its rows are copied below: free the day's frame now
        rows, positions, slot = _kept_rows(features.index, ids, d)
        store.add(
            d.day,
            features.iloc[rows],
            ids=features.index[rows],
            label=d.label[slot],
            rule=counts.on(d.day)[positions],
            segment=None if segments is None else segments.iloc[positions],
            rate=d.rate,
            evaluated=True if d.evaluated is None else d.evaluated[slot],
        )
        del features
    return store.frame(), _sampling_summary(plan, settings)


def _sampling_summary(plan: list[_Day], settings: TrainingSettings) -> SnapshotSampling:
    sampled = [d for d in plan if d.evaluated is not None]
    return SnapshotSampling(
        cap=settings.max_snapshot_customers,
        seed=settings.seed,
        active_rows=sum(d.active for d in plan),
        kept_rows=sum(len(d.positions) for d in plan),
        evaluated_rows=sum(
            len(d.positions) if d.evaluated is None else int(d.evaluated.sum()) for d in plan
        ),
        sampled_snapshots=len(sampled),
        min_rate=min((d.rate for d in plan), default=1.0),
    )


def _customers_kept(customers: pd.DataFrame, plan: list[_Day]) -> pd.DataFrame:
    """The customers some snapshot of ``plan`` keeps (all of them without sampling).

    Features of the others are not needed: they are left out of the builder's input
    (each customer's features depend on its own contacts only)."""
    if all(d.evaluated is None for d in plan):
        return customers
    needed = np.zeros(len(customers), dtype=bool)
    for d in plan:
        needed[d.positions] = True
    return customers.iloc[np.flatnonzero(needed)]


def _kept_rows(
    feature_ids: pd.Index, ids: pd.Index, day: _Day
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The builder's rows that ``day`` keeps, in the builder's order: their positions in
    the builder's frame, in the customers table and in ``day.positions``."""
    feature_positions = ids.get_indexer(feature_ids)
    wanted = np.zeros(len(ids) + 1, dtype=bool)  # the last slot: unknown ids (-1)
    wanted[day.positions] = True
    rows = np.flatnonzero(wanted[feature_positions])
    positions = feature_positions[rows]
    return rows, positions, np.searchsorted(day.positions, positions)


class _ContactCounts:
    """Contacts per customer in the rule's window up to a day (``contacts_in_window``), as an
    array over the customers table."""

    def __init__(self, interactions: pd.DataFrame, ids: pd.Index) -> None:
        self.started = interactions["started_at"]
        self.customer = ids.get_indexer(interactions[CUSTOMER_ID])
        self.size = len(ids)

    def on(self, day: pd.Timestamp, days: int = RULE_WINDOW_DAYS) -> np.ndarray:
        end = visible_end(pd.Timestamp(day).normalize())
        start = end - pd.Timedelta(days=days)
        inside = ((self.started >= start) & (self.started < end)).to_numpy(dtype=bool)
        inside = inside & (self.customer >= 0)
        return np.bincount(self.customer[inside], minlength=self.size).astype("float64")


def _is_text(dtype: Any) -> bool:
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _is_number(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _as_text(values: pd.Series) -> pd.Categorical:
    """Values as a categorical of their text, missing values missing (``unify_categories``)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        labels = [str(v) for v in values.cat.categories]
        if len(set(labels)) == len(labels):
            return pd.Categorical.from_codes(values.cat.codes.to_numpy(), categories=labels)
    elif pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(
        values.dtype
    ):
        return pd.Categorical(values)
    objects = values.astype("object")
    objects = objects.where(objects.notna(), None)
    return pd.Categorical(objects.map(lambda v: None if v is None else str(v)).to_numpy())


class _FrameStore:
    """The snapshot frame, filled one snapshot at a time into preallocated columns.

    Numbers go to float32 columns while float32 holds every value exactly, else float64
    (a column that meets such a value is widened once); text goes to categories whose
    lists are united at the end. No full-size copy is made: ``frame()`` wraps the arrays.
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.filled = 0
        self.feature_columns: list[str] | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self.parts: dict[str, list[Any]] = {}

    def add(
        self,
        day: pd.Timestamp,
        features: pd.DataFrame,
        *,
        ids: pd.Index,
        label: np.ndarray,
        rule: np.ndarray,
        segment: pd.Series | None,
        rate: float,
        evaluated: bool | np.ndarray,
    ) -> None:
        columns = [c for c in features.columns if c not in _ADDED]
        if self.feature_columns is None:
            self.feature_columns = columns
        elif columns != self.feature_columns:
            raise DataError(
                f"snapshot {day:%Y-%m-%d}: the feature builder returned other columns than "
                "for the first snapshot"
            )
        at = slice(self.filled, self.filled + len(features))
        if at.stop > self.rows:
            raise DataError(
                f"snapshot {day:%Y-%m-%d}: the feature builder returned a customer twice"
            )
        for column in columns:
            values = features[column]
            if _is_text(values.dtype):
                self.parts.setdefault(column, []).append(_as_text(values))
            elif _is_number(values.dtype):
                self._number(column, values, at)
            else:
                self.parts.setdefault(column, []).append(values.reset_index(drop=True))
        self.parts.setdefault(CUSTOMER_ID, []).append(pd.Series(ids.array, copy=False))
        self._put(LABEL, label, at, np.int8)
        self._number(RULE_CONTACTS, pd.Series(rule), at)
        if segment is not None:
            self.parts.setdefault(SEGMENT_EVAL, []).append(_as_text(segment))
        self._put(SNAPSHOT_DATE, pd.Timestamp(day).as_unit("ns").to_datetime64(), at, "M8[ns]")
        self._put(SAMPLE_RATE, rate, at, np.float32)
        self._put(EVALUATED, evaluated, at, bool)
        self.filled = at.stop

    def _put(self, column: str, values: Any, at: slice, dtype: Any) -> None:
        if column not in self.arrays:
            self.arrays[column] = np.empty(self.rows, dtype=dtype)
        self.arrays[column][at] = values

    def _number(self, column: str, values: pd.Series, at: slice) -> None:
        array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        target = self.arrays.get(column)
        if target is None:
            target = self.arrays[column] = np.empty(self.rows, dtype=np.float32)
        if target.dtype == np.float32:
            narrow = array.astype(np.float32)
            if np.array_equal(narrow, array, equal_nan=True):
                target[at] = narrow
                return
            wide = np.empty(self.rows, dtype=np.float64)
            wide[: at.start] = target[: at.start]
            target = self.arrays[column] = wide
        target[at] = array

    def frame(self) -> pd.DataFrame:
        if self.feature_columns is None:
            raise DataError("no snapshot to train on")
        order = [CUSTOMER_ID, *self.feature_columns, LABEL, RULE_CONTACTS]
        order += [c for c in (SEGMENT_EVAL,) if c in self.parts]
        order += [SNAPSHOT_DATE, SAMPLE_RATE, EVALUATED]
        data: dict[str, Any] = {}
        for column in order:
            if column in self.arrays:
                # Short of the plan when the builder left out some active customers.
                data[column] = self.arrays.pop(column)[: self.filled]
                continue
            parts = self.parts.pop(column)
            if isinstance(parts[0], pd.Categorical):
                categories = sorted(set().union(*(p.categories for p in parts)))
                codes = [p.set_categories(categories).codes for p in parts]
                data[column] = pd.Categorical.from_codes(np.concatenate(codes), categories)
            else:
                data[column] = pd.concat(parts, ignore_index=True)
        return pd.DataFrame(data, copy=False)


def training_weights(snapshots: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """Weights of training rows: 1 / rate for the sampled non-churners, 1 for churners;
    None when no row is sampled (every weight would be 1)."""
    if SAMPLE_RATE not in snapshots:
        return None
    rate = snapshots[SAMPLE_RATE].to_numpy()[rows]
    if (rate == 1).all():
        return None
    label = snapshots[LABEL].to_numpy()[rows]
    return np.where(label == 1, 1.0, 1.0 / rate.astype(np.float64))


def evaluated_rows(snapshots: pd.DataFrame, dates: Sequence[pd.Timestamp]) -> np.ndarray:
    """Boolean rows of validation or test snapshots: the uniform sample when sampled."""
    rows = fold_rows(snapshots, dates)
    if EVALUATED in snapshots:
        rows = rows & snapshots[EVALUATED].to_numpy(dtype=bool)
    return rows


def fold_rows(snapshots: pd.DataFrame, dates: Sequence[pd.Timestamp]) -> np.ndarray:
    return snapshots[SNAPSHOT_DATE].isin(list(dates)).to_numpy()


def check_churners(snapshots: pd.DataFrame, fold: Fold, settings: TrainingSettings) -> None:
    """DataError when a part of the fold has no churner (or only churners)."""

    def labels_of(part: str, dates: Sequence[pd.Timestamp]) -> tuple[int, int]:
        rows = fold_rows(snapshots, dates) if part == "train" else evaluated_rows(snapshots, dates)
        labels = snapshots.loc[rows, LABEL]
        return int(labels.sum()), len(labels)

    check_fold_labels(fold, labels_of, settings)


def check_fold_labels(
    fold: Fold,
    labels_of: Callable[[str, Sequence[pd.Timestamp]], tuple[int, int]],
    settings: TrainingSettings,
) -> None:
    """``check_churners`` on counts: ``labels_of(part, dates)`` gives the churners and rows
    of the fold's part ("train": every row of its dates; else the evaluated rows);"""
    for part in ("train", "validation", "test"):
        dates = getattr(fold, part)
        churners, rows = labels_of(part, dates)
        if churners == 0 or churners == rows:
            if churners == 0:
                what, fix = "no customer churned", churners_needed(settings)
            else:
                what, fix = "every customer churned", "check churned_at in the customers table"
            raise DataError(
                f"fold {fold.number} {part} snapshots {_span(dates)}: {what} within "
                f"{settings.horizon_days} days of any of them; {fix}"
            )
