"""Point-in-time features per customer from the contract's typed tables.

How it is fast (the same code serves training, batch scoring and one customer):

* string ids are encoded once with pyarrow hashing (in two threads for big tables);
* the contacts are put in time order once (a no-op for logs already in time order);
  every window "the w days up to D" is then a contiguous slice of the arrays, and
  "everything up to D" a prefix, so windows cost nothing to select;
* every per-contact fact that only looks at the past (is it a repeat, does it bring
  a new channel to its case, is it a bad experience) is computed once; it does not
  depend on the as-of day, so snapshots for many days share it (``ContactHistory``);
* per-customer results are segment reductions: ``np.bincount`` for counts and sums,
  ``ufunc.at`` for minima, maxima and "last", one sort by (customer, wait) for the
  percentiles of all windows. There is no pandas groupby in the hot path.

Ties in ``started_at`` are broken by row order in the interactions table.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnml.contract import CHANNELS, CUSTOMER_COLUMNS, STATUSES
from churnml.errors import ConfigError, ContractError
from churnml.io import TEXT
from features.columns import (
    CATEGORICAL_FEATURES,
    PROFILE_PREFIX,
    SNAPSHOT_FEATURES,
    WINDOWED_FEATURES,
    windowed_columns,
)
from features.settings import FeatureSettings

DAY_NS = 86_400 * 10**9
_ONE_DAY = pd.Timedelta(days=1)
_NAT = np.iinfo(np.int64).min
_CHANNEL_SET = pa.array(CHANNELS, type=pa.string())
_STATUS_SET = pa.array(STATUSES, type=pa.string())
_RESOLVED = STATUSES.index("resolved")
_ESCALATED = STATUSES.index("escalated")
# Below this many contacts, threads cost more than they save.
_THREADS_FROM_ROWS = 200_000

# A table is a DataFrame, or (the scoring service) its columns as arrays: text as pyarrow
# strings, numbers as float64, times as datetime64[ns]. Arrays skip pandas' per-column
# overhead, ~3 ms of a one-customer request.
Column = pd.Series | pa.Array | np.ndarray
Table = pd.DataFrame | Mapping[str, Column]

_CONTRACT_CUSTOMER_COLUMNS = {column.name for column in CUSTOMER_COLUMNS}
INTERACTION_COLUMNS_USED = (
    "customer_id",
    "started_at",
    "channel",
    "case_id",
    "topic",
    "wait_seconds",
    "agent_id",
    "transfers",
    "abandoned",
    "status",
    "csat",
)


def build_features(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> pd.DataFrame:
    """Features of every customer active on ``as_of``, from contacts up to the end of that day.

    Returns one row per active customer (``signup_date <= as_of`` and ``churned_at``
    empty or later), indexed by ``customer_id`` in the customers table's order, with
    the columns of ``features.feature_columns`` (float64, and pandas ``category`` for
    segment, plan and text profile columns). Neither input is modified.
    """
    settings = settings or FeatureSettings()
    day = parse_as_of(as_of)
    history = ContactHistory(customers, interactions, settings, until=day)
    return history.features_at(day)


def build_feature_arrays(
    customers: Table,
    interactions: Table,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> FeatureArrays:
    """``build_features`` before its result becomes a DataFrame: the same values as arrays,
    for a caller that reads them as arrays (the scoring service, ~2 ms a request less).

    Either table may also be given as a mapping of column name to array (see ``Table``),
    typed as ``churnml.validation`` types a DataFrame's columns."""
    settings = settings or FeatureSettings()
    day = parse_as_of(as_of)
    history = ContactHistory(customers, interactions, settings, until=day)
    return history.arrays_at(day)


def build_feature_snapshots(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of_days: list[dt.date | str | pd.Timestamp],
    settings: FeatureSettings | None = None,
) -> dict[pd.Timestamp, pd.DataFrame]:
    """``build_features`` for several days, sharing the work that does not depend on the day."""
    settings = settings or FeatureSettings()
    days = [parse_as_of(d) for d in as_of_days]
    if not days:
        return {}
    history = ContactHistory(customers, interactions, settings, until=max(days))
    return {day: history.features_at(day) for day in days}


def visible_end(as_of: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The end of day ``as_of`` (UTC), exclusive: what is visible on D started before it.

    The one point-in-time cut of churnml (shared/contract.md, "Time and labels"):
    ``build_features``, every day of ``build_feature_snapshots`` and the training
    snapshots, the rule baseline's window and the service's check of a request's
    contacts all take it from here. A window of w days as of D is
    ``[visible_end(D) - w days, visible_end(D))``.
    """
    return parse_as_of(as_of) + _ONE_DAY


def thin_history(tenure_days: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """True where a customer has less history than the feature windows: joined fewer than
    ``max(settings.windows)`` days (90 by default) before the as-of day, so that the longest
    window still reaches back before the signup and its counts are not comparable with the
    others'. ``tenure_days`` is the feature of that name (NaN: unknown, not thin).

    Few contacts alone is not thin history: a customer who has been with us the whole
    window and called once has told the model something (quiet customers are a pattern
    it learned), while a customer of 20 days has not had the time to."""
    tenure = np.asarray(tenure_days, dtype=np.float64)
    return tenure < max(settings.windows)


@functools.lru_cache(maxsize=64)  # ~50 us a call, twice per scoring request
def parse_as_of(as_of: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The as-of day as a UTC-naive midnight Timestamp."""
    try:
        day = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise ConfigError(f"as_of {as_of!r}: expected a date YYYY-MM-DD") from None
    if day is pd.NaT:
        raise ConfigError(f"as_of {as_of!r}: expected a date YYYY-MM-DD")
    if day.tzinfo is not None:
        day = day.tz_convert("UTC").tz_localize(None)
    if day != day.normalize():
        raise ConfigError(f"as_of {as_of!r}: expected a day, got a time of day; drop the time")
    return day.as_unit("ns")


# --------------------------------------------------------------------------- encoding


def _arrow(values: Column) -> pa.Array:
    if isinstance(values, pa.Array):
        array = values
    elif isinstance(values, np.ndarray):
        array = pa.array(values, from_pandas=True)
    else:
        array = pa.array(values.array) if hasattr(values.array, "__arrow_array__") else None
    if array is None:
        array = pa.array(values.to_numpy(dtype=object), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    return array


def _lookup(values: pa.Array, known: pa.Array) -> np.ndarray:
    """Position of each value in ``known`` (int64), -1 when absent or missing."""
    return _int_codes(pc.index_in(values, value_set=known))


def _index_in(values: pa.Array, known: pa.Array, pool: ThreadPoolExecutor | None) -> np.ndarray:
    if pool is None or len(values) < _THREADS_FROM_ROWS:
        parts = [values]
    else:
        half = len(values) // 2
        parts = [values.slice(0, half), values.slice(half)]
    mapped = (pool.map if pool is not None else map)(lambda p: _lookup(p, known), parts)
    return np.concatenate(list(mapped))


def _factorize(values: pa.Array) -> tuple[np.ndarray, int]:
    """Integer codes (-1 when missing) and the number of distinct values."""
    encoded = pc.dictionary_encode(values)
    return _int_codes(encoded.indices), len(encoded.dictionary)


def _int_codes(codes: pa.Array) -> np.ndarray:
    """Arrow integer codes with nulls as int64, -1 for null."""
    # In numpy: pc.fill_null cost ~40 us a call, most of a small request's encoding.
    if not codes.null_count:
        return codes.to_numpy().astype(np.int64)
    values = codes.to_numpy(zero_copy_only=False)  # float64, NaN for null
    return np.where(np.isnan(values), -1, values).astype(np.int64)


def _rows(table: Table) -> int:
    if isinstance(table, pd.DataFrame):
        return len(table)
    return len(next(iter(table.values()), ()))


def _names(table: Table) -> list[str]:
    return list(table.columns if isinstance(table, pd.DataFrame) else table)


def _floats(values: Column) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    if isinstance(values, pa.Array):
        return values.to_numpy(zero_copy_only=False).astype(np.float64)
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _series(values: Column) -> pd.Series:
    """A column given as an array, as the Series a DataFrame would hold."""
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, pa.Array):
        return pd.Series(pd.array(values, dtype=TEXT))
    return pd.Series(values)


def _check_columns(frame: Table, table: str, required: tuple[str, ...]) -> None:
    present = set(_names(frame))
    missing = [c for c in required if c not in present]
    if missing:
        raise ContractError(
            f"{table}: columns {missing} are missing; validate the table with churnml.validation"
        )


def _ns(values: Column, table: str, column: str) -> np.ndarray:
    dtype = values.type if isinstance(values, pa.Array) else values.dtype
    if not pd.api.types.is_datetime64_dtype(dtype):
        raise ContractError(
            f"{table}.{column} has dtype {dtype}; expected datetime64 "
            "(validate the table with churnml.validation)"
        )
    if isinstance(values, np.ndarray):
        return values.astype("datetime64[ns]", copy=False).view(np.int64)
    return values.to_numpy(dtype="datetime64[ns]").view(np.int64)


# --------------------------------------------------------------------------- reductions


def _count(codes: np.ndarray, size: int, where: np.ndarray | None = None) -> np.ndarray:
    if where is not None:
        codes = codes[where]
    return np.bincount(codes, minlength=size).astype(np.float64)


def _sum(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=size)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (no data)."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _segment_quantile(values: np.ndarray, codes: np.ndarray, size: int, q: float) -> np.ndarray:
    """Linear-interpolated quantile of values grouped by codes, both sorted by (code, value)."""
    counts = np.bincount(codes, minlength=size)
    out = np.full(size, np.nan)
    has = counts > 0
    if not has.any():
        return out
    starts = np.cumsum(counts) - counts
    position = (counts[has] - 1) * q
    low = np.floor(position).astype(np.int64)
    frac = position - low
    high = np.minimum(low + 1, counts[has] - 1)
    a = values[starts[has] + low]
    b = values[starts[has] + high]
    out[has] = a + (b - a) * frac
    return out


def _days_between(day_ns: int, times: np.ndarray) -> np.ndarray:
    """Whole days from the calendar day of each time to day_ns (a midnight)."""
    return ((day_ns - (times // DAY_NS) * DAY_NS) // DAY_NS).astype(np.float64)


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class _Customers:
    ids: pd.Index
    signup_ns: np.ndarray
    churn_ns: np.ndarray
    monthly_revenue: np.ndarray
    profile: dict[str, pd.Series]  # segment, plan and the profile_* columns, in output order


@dataclass(frozen=True)
class FeatureArrays:
    """The feature values of the active customers on one day, as arrays.

    ``numeric[i]`` holds column ``names[i]`` (float64) for every row; the rows are the
    customers table's rows ``rows``, with ids ``index``. ``profile`` holds the remaining
    columns (segment, plan, profile_*: categorical or float64) over *all* customers of the
    table, in output order: take ``rows`` of them. ``frame()`` is the DataFrame.
    """

    index: pd.Index
    rows: np.ndarray
    names: list[str]
    numeric: np.ndarray
    profile: dict[str, pd.Series]

    def column(self, name: str) -> np.ndarray:
        """``frame()[name].to_numpy()``, without building the frame."""
        if name in self.names:
            return self.numeric[self.names.index(name)]
        return self.profile[name].iloc[self.rows].to_numpy()

    def frame(self) -> pd.DataFrame:
        """What ``build_features`` returns: one row per active customer, indexed by id."""
        numeric = pd.DataFrame(self.numeric.T, index=self.index, columns=self.names, copy=False)
        profile = pd.DataFrame(self.profile).iloc[self.rows]
        profile.index = self.index
        return pd.concat([numeric, profile], axis=1)


class ContactHistory:
    """Contacts in time order with their past-only facts, ready for any as-of day <= until.

    Build it once and call ``features_at(day)`` for each snapshot day (``arrays_at(day)``:
    the same values as arrays); contacts after ``until`` (when given) are dropped at once.
    """

    def __init__(
        self,
        customers: Table,
        interactions: Table,
        settings: FeatureSettings,
        until: pd.Timestamp | None = None,
    ) -> None:
        _check_columns(customers, "customers", ("customer_id", "signup_date", "churned_at"))
        _check_columns(interactions, "interactions", INTERACTION_COLUMNS_USED)
        self.settings = settings
        self.until = until
        pool = ThreadPoolExecutor(2) if _rows(interactions) >= _THREADS_FROM_ROWS else None
        try:
            self._read(customers, interactions, pool)
        finally:
            if pool is not None:
                pool.shutdown()

    # ---- reading and past-only facts

    def _read(
        self,
        customers: Table,
        interactions: Table,
        pool: ThreadPoolExecutor | None,
    ) -> None:
        """Both tables' columns as arrays over the kept contacts in time order, and the
        per-contact facts that look only at the past (``flags``)."""
        run = pool.submit if pool is not None else _run_now
        # Hashing strings is most of the cost: the big encodings run side by side
        # (pyarrow releases the GIL), the customer ids on this thread.
        case_job = run(lambda: _factorize(_arrow(interactions["case_id"])))
        text_job = run(lambda: _text_codes(interactions))
        customers_job = run(lambda: _read_customers(customers, self.settings))
        kept = _Kept.of(customers, interactions, self.until)

        self.n, self.t, self.cust = len(kept.t), kept.t, kept.cust
        self.wait = kept.numeric(interactions, "wait_seconds")
        abandoned = kept.numeric(interactions, "abandoned") == 1.0
        self.transfers = np.nan_to_num(kept.numeric(interactions, "transfers"), nan=0.0)
        self.csat = kept.numeric(interactions, "csat")
        agent, (topic, n_topics), channel, status = text_job.result()
        agent, topic, self.channel, self.status = map(kept.take, (agent, topic, channel, status))
        _check_channels(self.channel, kept, interactions)

        case_codes, n_case_values = case_job.result()
        self.case, self.n_cases = _cases_per_customer(
            kept.take(case_codes), n_case_values, self.cust
        )
        del case_codes
        cases = _CaseFacts.of(self.case, self.n_cases, self.channel, agent)
        del agent
        self.case_first_pos = cases.first_pos
        # Each case's customer (any for a case without a kept contact: it never exists).
        self.case_customer = (
            self.cust[np.minimum(cases.first_pos, self.n - 1)] if self.n else cases.first_pos
        )
        repeat = self._repeats(cases, topic, n_topics, _rows(customers))
        del topic
        self.flags = self._flags(cases, abandoned, repeat)
        self.customers = customers_job.result()

    def _repeats(
        self, cases: _CaseFacts, topic: np.ndarray, n_topics: int, n_customers: int
    ) -> np.ndarray:
        """Repeat contacts: every contact of a case but its first, and a contact without
        case on a topic the customer raised within the repeat window before."""
        repeat = cases.has_case & ~cases.first
        repeat |= _topic_repeats(
            self.cust,
            topic,
            n_topics,
            n_customers=n_customers,
            has_case=cases.has_case,
            t=self.t,
            window_ns=self.settings.repeat_window_days * DAY_NS,
        )
        return repeat

    def _flags(
        self, cases: _CaseFacts, abandoned: np.ndarray, repeat: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The per-contact flags the windows count, the bad experience among them."""
        settings, status, transfers = self.settings, self.status, self.transfers
        thresholds = np.array([settings.long_wait_threshold(c) for c in CHANNELS])
        long_wait = self.wait > thresholds[self.channel]
        bad_status = np.isin(status, [STATUSES.index(s) for s in settings.bad_statuses])
        bad = (
            long_wait
            | abandoned
            | (self.csat <= settings.bad_csat_max)
            | (transfers >= settings.bad_transfers_min)
            | bad_status
        )
        return {
            "long_waits": long_wait,
            "abandoned_contacts": abandoned,
            "repeat_contacts": repeat,
            "channel_switches": cases.channel_switch,
            "multi_agent_cases": cases.multi_agent,
            "transferred_contacts": transfers >= 1,
            "escalated_contacts": status == _ESCALATED,
            "cases_started": cases.first,
            "first_resolved": cases.first & (status == _RESOLVED),
            "first_known": cases.first & (status >= 0),
            "bad_experiences": bad,
        }

    # ---- one day

    def features_at(self, as_of: dt.date | str | pd.Timestamp) -> pd.DataFrame:
        """The feature frame of the customers active on ``as_of``."""
        return self.arrays_at(as_of).frame()

    def arrays_at(self, as_of: dt.date | str | pd.Timestamp) -> FeatureArrays:
        """The features of the customers active on ``as_of`` as arrays: ``features_at``'s values."""
        day = parse_as_of(as_of)
        if self.until is not None and day > self.until:
            raise ConfigError(
                f"as_of {day.date()} is after {self.until.date()}, the last day this "
                "ContactHistory was built for; build it with a later `until`"
            )
        customers = self.customers
        size = len(customers.ids)
        day_ns, end_ns = day.value, visible_end(day).value
        stop = int(np.searchsorted(self.t, end_ns, side="left"))
        columns = self._windows(end_ns, stop, size)
        columns.update(self._snapshot(day_ns, stop, size))
        columns["tenure_days"] = _days_between(day_ns, customers.signup_ns)
        columns["monthly_revenue"] = customers.monthly_revenue

        active = (customers.signup_ns <= day_ns) & (
            (customers.churn_ns == _NAT) | (customers.churn_ns > day_ns)
        )
        rows = np.flatnonzero(active)
        names = [*windowed_columns(self.settings), *SNAPSHOT_FEATURES]
        block = np.empty((len(names), len(rows)))
        if len(rows) == size:  # everyone active (every scoring request): no gathers
            np.stack([columns[name] for name in names], out=block)
            return FeatureArrays(customers.ids.copy(), rows, names, block, customers.profile)
        for i, name in enumerate(names):
            np.take(columns[name], rows, out=block[i])
        return FeatureArrays(customers.ids[rows], rows, names, block, customers.profile)

    def _windows(self, end_ns: int, stop: int, size: int) -> dict[str, np.ndarray]:
        """The windowed features and the trends, from one pass per quantity (``_Buckets``):
        the contacts before ``end_ns`` (``visible_end``), the first ``stop`` in time order."""
        settings = self.settings
        recent, prior = settings.trend_recent_days, settings.trend_prior_days
        bounds = sorted({*settings.windows, recent, recent + prior})
        buckets = _Buckets(self.t, self.cust, end_ns, stop, size, bounds)
        per_window = self._per_window(buckets)
        out = self._in_windows(per_window, buckets)
        j_recent, j_all = bounds.index(recent), bounds.index(recent + prior)
        for name in ("contacts", "bad_experiences"):
            recent_count = per_window[name][:, j_recent]
            prior_count = per_window[name][:, j_all] - recent_count
            out[f"{name}_trend_per_day"] = recent_count / recent - prior_count / prior
            expected = prior_count * recent / prior
            out[f"{name}_trend_ratio"] = (recent_count + 1.0) / (expected + 1.0)
        return out

    def _per_window(self, buckets: _Buckets) -> dict[str, np.ndarray]:
        """Each quantity per (customer, window boundary), but the wait percentile."""
        total, extreme, span = buckets.total, buckets.extreme, buckets.span
        per_window: dict[str, np.ndarray] = {"contacts": total()}
        per_channel = buckets.total_per_code(span(self.channel), len(CHANNELS))
        for i, channel in enumerate(CHANNELS):
            per_window[f"contacts_{channel}"] = per_channel[:, :, i]
        del per_channel

        wait = span(self.wait)
        has_wait = ~np.isnan(wait)
        per_window["wait_mean_seconds"] = _ratio(total(has_wait, wait[has_wait]), total(has_wait))
        per_window["wait_max_seconds"] = extreme(np.fmax, wait, has_wait)
        for name in (
            "long_waits",
            "abandoned_contacts",
            "repeat_contacts",
            "channel_switches",
            "multi_agent_cases",
            "transferred_contacts",
            "escalated_contacts",
            "cases_started",
            "bad_experiences",
        ):
            per_window[name] = total(span(self.flags[name]))
        per_window["transfers"] = total(None, span(self.transfers))
        per_window["first_contact_resolution_rate"] = _ratio(
            total(span(self.flags["first_resolved"])),
            total(span(self.flags["first_known"])),
        )
        csat = span(self.csat)
        answered = ~np.isnan(csat)
        per_window["csat_answers"] = total(answered)
        per_window["csat_mean"] = _ratio(
            total(answered, csat[answered]), per_window["csat_answers"]
        )
        per_window["csat_min"] = extreme(np.fmin, csat, answered)
        return per_window

    def _in_windows(
        self, per_window: dict[str, np.ndarray], buckets: _Buckets
    ) -> dict[str, np.ndarray]:
        """The windowed feature columns: ``per_window``'s at each window, and the wait p90."""
        windows, bounds, starts = self.settings.windows, buckets.bounds, buckets.starts
        wait_order = self._wait_order(starts[bounds.index(max(windows))], buckets.stop)
        out: dict[str, np.ndarray] = {}
        for w in windows:
            j = bounds.index(w)
            for base in WINDOWED_FEATURES:
                if base == "wait_p90_seconds":
                    in_window = wait_order[wait_order >= starts[j]]
                    out[f"{base}_{w}d"] = _segment_quantile(
                        self.wait[in_window], self.cust[in_window], buckets.size, 0.9
                    )
                else:
                    out[f"{base}_{w}d"] = per_window[base][:, j]
        return out

    def _wait_order(self, start: int, stop: int) -> np.ndarray:
        """Positions in [start, stop) with a wait, sorted by (customer, wait)."""
        positions = np.arange(start, stop, dtype=np.int64)
        positions = positions[~np.isnan(self.wait[start:stop])]
        order = np.lexsort((self.wait[positions], self.cust[positions]))
        return positions[order]

    def _snapshot(self, day_ns: int, stop: int, size: int) -> dict[str, np.ndarray]:
        cust = self.cust[:stop]
        out: dict[str, np.ndarray] = {}

        # A case's status on the day is the status of its last contact up to the day.
        case = self.case[:stop]
        has_case = case >= 0
        exists = self.case_first_pos < stop
        last_pos = np.full(self.n_cases, -1, dtype=np.int64)
        np.maximum.at(last_pos, case[has_case], np.flatnonzero(has_case))
        status_now = np.full(self.n_cases, -1, dtype=np.int64)
        status_now[exists] = self.status[last_pos[exists]]
        is_open = exists & (status_now >= 0) & (status_now != _RESOLVED)
        owner = self.case_customer
        out["open_cases"] = _count(owner, size, is_open)
        out["open_escalated_cases"] = _count(owner, size, is_open & (status_now == _ESCALATED))
        oldest = np.full(size, np.iinfo(np.int64).max)
        np.minimum.at(oldest, owner[is_open], self.t[self.case_first_pos[is_open]])
        out["oldest_open_case_age_days"] = np.where(
            oldest == np.iinfo(np.int64).max, np.nan, _days_between(day_ns, oldest)
        )

        csat = self.csat[:stop]
        answered = np.flatnonzero(~np.isnan(csat))
        last_answer = np.full(size, -1, dtype=np.int64)
        np.maximum.at(last_answer, cust[answered], answered)
        out["csat_last"] = np.full(size, np.nan)
        answered_any = last_answer >= 0
        out["csat_last"][answered_any] = self.csat[last_answer[answered_any]]

        out["days_since_last_contact"] = _days_since(day_ns, cust, self.t[:stop], size)
        bad = self.flags["bad_experiences"][:stop]
        out["days_since_last_bad_experience"] = _days_since(
            day_ns, cust[bad], self.t[:stop][bad], size
        )
        return out


def _days_since(day_ns: int, cust: np.ndarray, times: np.ndarray, size: int) -> np.ndarray:
    last = np.full(size, _NAT, dtype=np.int64)
    np.maximum.at(last, cust, times)
    return np.where(last == _NAT, np.nan, _days_between(day_ns, last))


def _mark(positions: np.ndarray, n: int) -> np.ndarray:
    """A boolean mask of length n, True at the given positions (positions == n ignored)."""
    mask = np.zeros(n + 1, dtype=bool)
    mask[positions] = True
    return mask[:n]


def _text_codes(interactions: Table) -> tuple:
    """The codes of agent_id, topic (with their count), channel and status, in table order."""
    agent = _factorize(_arrow(interactions["agent_id"]))[0]
    topic = _factorize(_arrow(interactions["topic"]))
    channel = _lookup(_arrow(interactions["channel"]), _CHANNEL_SET)
    status = _lookup(_arrow(interactions["status"]), _STATUS_SET)
    return agent, topic, channel, status


@dataclass(frozen=True)
class _Kept:
    """The interactions' rows that count, in time order: a known customer, a start time
    and (with ``until``) a start by the end of that day. ``rows`` are their positions in
    the table, None when that is every row in table order (nothing to gather)."""

    rows: np.ndarray | None
    t: np.ndarray
    cust: np.ndarray

    @classmethod
    def of(cls, customers: Table, interactions: Table, until: pd.Timestamp | None) -> _Kept:
        t_all = _ns(interactions["started_at"], "interactions", "started_at")
        customer_ids = customers["customer_id"]
        if not isinstance(customer_ids, pa.Array):
            customer_ids = pa.array(customer_ids.to_numpy(dtype=object), type=pa.string())
        cust_all = _lookup(_arrow(interactions["customer_id"]), customer_ids)
        keep = (cust_all >= 0) & (t_all != _NAT)
        if until is not None:
            keep &= t_all < visible_end(until).value
        rows: np.ndarray | None = None if keep.all() else np.flatnonzero(keep)
        t = t_all if rows is None else t_all[rows]
        if len(t) > 1 and not (t[1:] >= t[:-1]).all():
            order = np.argsort(t, kind="stable")
            rows = order if rows is None else rows[order]
            t = t[order]
        return cls(rows, t, cust_all if rows is None else cust_all[rows])

    def take(self, values: np.ndarray) -> np.ndarray:
        """The kept rows of a column in table order, in time order."""
        return values if self.rows is None else values[self.rows]

    def numeric(self, interactions: Table, column: str) -> np.ndarray:
        return self.take(_floats(interactions[column]))

    def table_row(self, position: int) -> int:
        return position if self.rows is None else int(self.rows[position])


def _check_channels(channel: np.ndarray, kept: _Kept, interactions: Table) -> None:
    if (channel < 0).any():
        row = kept.table_row(int(np.flatnonzero(channel < 0)[0]))
        sent = _series(interactions["channel"]).iloc[row]
        raise ContractError(
            f"interactions: channel {sent!r} in row {row} "
            f"is not one of {CHANNELS}; validate the table with churnml.validation"
        )


@dataclass(frozen=True)
class _CaseFacts:
    """Per contact (in time order): has it a case, does it start its case, does it bring a
    new channel to it, does it make its case multi-agent; per case: its first position."""

    has_case: np.ndarray
    first_pos: np.ndarray  # n (one past the end) for a case without a kept contact
    first: np.ndarray
    channel_switch: np.ndarray
    multi_agent: np.ndarray

    @classmethod
    def of(
        cls, case: np.ndarray, n_cases: int, channel: np.ndarray, agent: np.ndarray
    ) -> _CaseFacts:
        n = len(case)
        pos = np.arange(n, dtype=np.int64)
        has_case = case >= 0
        case_rows = pos[has_case]
        case_of = case[has_case]
        # Codes of cases without a kept contact (all after `until`) stay one past the end.
        first_pos = np.full(n_cases, n, dtype=np.int64)
        np.minimum.at(first_pos, case_of, case_rows)
        first = _mark(first_pos, n)

        # A new channel on a case: the first contact of its (case, channel) pair, except
        # the case's first contact. Summed over a case: its distinct channels - 1.
        pair = case_of * len(CHANNELS) + channel[has_case]
        pair_first = np.full(n_cases * len(CHANNELS), n, dtype=np.int64)
        np.minimum.at(pair_first, pair, case_rows)
        channel_switch = _mark(pair_first, n) & ~first
        del pair, pair_first
        multi_agent = _multi_agent(case, n_cases, has_case, agent, pos)
        return cls(has_case, first_pos, first, channel_switch, multi_agent)


def _multi_agent(
    case: np.ndarray, n_cases: int, has_case: np.ndarray, agent: np.ndarray, pos: np.ndarray
) -> np.ndarray:
    """A case becomes multi-agent at its first contact handled by another agent than the
    case's first agent."""
    n = len(case)
    with_agent = has_case & (agent >= 0)
    first_agent_pos = np.full(n_cases, n, dtype=np.int64)
    np.minimum.at(first_agent_pos, case[with_agent], pos[with_agent])
    other = np.zeros(n, dtype=bool)
    other[with_agent] = agent[with_agent] != agent[first_agent_pos[case[with_agent]]]
    first_other_pos = np.full(n_cases, n, dtype=np.int64)
    np.minimum.at(first_other_pos, case[other], pos[other])
    return _mark(first_other_pos, n)


class _Buckets:
    """Every contact of the widest window up to one day in one bucket between consecutive
    window boundaries (``bounds``, in days), keyed by (customer, bucket): a window's value
    is the cumulative sum (or max, min) over a customer's buckets up to its boundary.
    ``end`` is the day's ``visible_end`` and ``stop`` the position of the first contact
    at or after it."""

    def __init__(
        self, t: np.ndarray, cust: np.ndarray, end: int, stop: int, size: int, bounds: list[int]
    ) -> None:
        self.bounds, self.size, self.stop = bounds, size, stop
        k = self.k = len(bounds)
        starts = [int(np.searchsorted(t, end - b * DAY_NS, side="left")) for b in bounds]
        self.starts = starts
        low = self.low = starts[-1]
        bucket = np.empty(stop - low, dtype=np.int64)
        for j in range(k - 1, -1, -1):
            bucket[starts[j] - low :] = j
        self.key = cust[low:stop] * k + bucket

    def span(self, values: np.ndarray) -> np.ndarray:
        """The contacts of the widest window (a view)."""
        return values[self.low : self.stop]

    def total(
        self, where: np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Counts (or sums of weights) of the contacts ``where``, per (customer, window)."""
        keys = self.key if where is None else self.key[where]
        counts = np.bincount(keys, weights=weights, minlength=self.size * self.k)
        return counts.reshape(self.size, self.k).cumsum(axis=1, dtype=np.float64)

    def total_per_code(self, codes: np.ndarray, n_codes: int) -> np.ndarray:
        """Counts per (customer, window, code)."""
        size, k = self.size, self.k
        counts = np.bincount(self.key * n_codes + codes, minlength=size * k * n_codes)
        return counts.reshape(size, k, n_codes).cumsum(axis=1, dtype=np.float64)

    def extreme(self, ufunc: np.ufunc, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``ufunc`` (np.fmax, np.fmin) over the ``valid`` values, per (customer, window)."""
        out = np.full(self.size * self.k, np.nan)
        ufunc.at(out, self.key[valid], values[valid])
        return ufunc.accumulate(out.reshape(self.size, self.k), axis=1)


class _Done:
    def __init__(self, value: object) -> None:
        self.value = value

    def result(self) -> object:
        return self.value


def _run_now(function):  # noqa: ANN001, ANN202 - a stand-in for ThreadPoolExecutor.submit
    return _Done(function())


def _cases_per_customer(
    case: np.ndarray, n_values: int, cust: np.ndarray
) -> tuple[np.ndarray, int]:
    """Case codes unique per (customer, case_id): a case id that two customers use is two
    cases. Returns the codes (-1 without case) and their count."""
    has = case >= 0
    if not has.any():
        return case, 0
    owner = np.full(n_values, -1, dtype=np.int64)
    owner[case[has]] = cust[has]  # any one owner per case id: a mismatch shows a shared id
    clash = has.copy()
    clash[has] = owner[case[has]] != cust[has]
    if not clash.any():
        return case, n_values
    shared = np.zeros(n_values, dtype=bool)
    shared[case[clash]] = True
    rows = np.flatnonzero(has & shared[np.maximum(case, 0)])
    pairs = np.stack([case[rows], cust[rows]], axis=1)
    _, inverse = np.unique(pairs, axis=0, return_inverse=True)
    case = case.copy()
    case[rows] = n_values + inverse.ravel()
    return case, n_values + int(inverse.max()) + 1


def _topic_repeats(
    cust: np.ndarray,
    topic: np.ndarray,
    n_topics: int,
    *,
    n_customers: int,
    has_case: np.ndarray,
    t: np.ndarray,
    window_ns: int,
) -> np.ndarray:
    """Contacts without case_id that follow a contact of the same customer on the same
    topic (with or without case) started at most ``window_ns`` before."""
    repeat = np.zeros(len(t), dtype=bool)
    caseless = ~has_case & (topic >= 0)
    if not caseless.any():
        return repeat
    with_topic = np.flatnonzero(topic >= 0)
    key = cust[with_topic] * n_topics + topic[with_topic]
    # Only (customer, topic) pairs that have a contact without case matter.
    if n_customers * n_topics <= 1 << 27:
        wanted = np.zeros(n_customers * n_topics, dtype=bool)
        wanted[key[caseless[with_topic]]] = True
        relevant = wanted[key]
    else:
        relevant = np.isin(key, key[caseless[with_topic]])
    rows = with_topic[relevant]
    key = key[relevant]
    order = np.argsort(key, kind="stable")
    rows, key = rows[order], key[order]
    follows = (key[1:] == key[:-1]) & (t[rows[1:]] - t[rows[:-1]] <= window_ns)
    hits = rows[1:][follows]
    repeat[hits[caseless[hits]]] = True
    return repeat


def _read_customers(customers: Table, settings: FeatureSettings) -> _Customers:
    n = _rows(customers)
    names = _names(customers)
    ids = customers["customer_id"]
    ids = pd.Index(
        pd.array(ids, dtype=TEXT) if isinstance(ids, pa.Array) else ids, name="customer_id"
    )
    signup = _ns(customers["signup_date"], "customers", "signup_date")
    churn = _ns(customers["churned_at"], "customers", "churned_at")
    revenue = (
        _floats(customers["monthly_revenue"]) if "monthly_revenue" in names else np.full(n, np.nan)
    )
    profile: dict[str, pd.Series] = {}
    for name in CATEGORICAL_FEATURES:
        values = customers[name] if name in names else None
        profile[name] = _categorical(values, n, settings.categories_of(name))
    if settings.profile_columns is None:
        extra = [
            c
            for c in names
            if c not in _CONTRACT_CUSTOMER_COLUMNS and c not in settings.exclude_profile_columns
        ]
    else:
        extra = [c for c in settings.profile_columns if c not in settings.exclude_profile_columns]
    for name in extra:
        column = PROFILE_PREFIX + name
        values = customers[name] if name in names else None
        profile[column] = _profile_column(name, values, n, settings.categories_of(column))
    return _Customers(
        ids=ids,
        signup_ns=signup,
        churn_ns=churn,
        monthly_revenue=revenue,
        profile=profile,
    )


def _profile_column(
    name: str, values: Column | None, n: int, pinned: tuple[str, ...] | None
) -> pd.Series:
    """The profile_ column of customers' column ``name``: categorical when its categories
    are pinned or it is text, float64 when numeric or boolean, NaN when the table lacks it."""
    if pinned is not None:
        return _categorical(values, n, pinned)
    if values is None:
        return pd.Series(np.full(n, np.nan))
    values = _series(values)
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return pd.Series(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        raise ContractError(
            f"customers.{name}: date profile columns are not features yet; "
            "exclude it with FeatureSettings(exclude_profile_columns=...)"
        )
    return _categorical(values, n, None)


@functools.lru_cache(maxsize=256)
def _pinned_categories(categories: tuple[str, ...]) -> tuple[pd.CategoricalDtype, pa.Array]:
    """The dtype and arrow lookup set of pinned categories, built once (building and
    validating a CategoricalDtype cost more than coding a 100-row column)."""
    return pd.CategoricalDtype(list(categories)), pa.array(list(categories), type=pa.string())


def _categorical(values: Column | None, n: int, categories: tuple[str, ...] | None) -> pd.Series:
    if values is not None and not isinstance(values, pa.Array):
        values = _series(values)
    if (
        values is not None
        and categories is not None
        and (
            isinstance(values, pa.Array)
            or isinstance(values.dtype, pd.StringDtype)
            and values.dtype.storage == "pyarrow"
        )
    ):
        # Text with pinned categories (every scoring call): arrow lookup, half the time of
        # astype("str") + Categorical (the same result: unknown and missing text -> NaN).
        dtype, value_set = _pinned_categories(tuple(categories))
        codes = _int_codes(pc.index_in(_arrow(values), value_set=value_set))
        # The codes are index_in's: valid by construction.
        return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype, validate=False))
    if values is None:
        text = pd.Series(np.full(n, np.nan, dtype=object))
    else:
        text = _series(values).astype("str").reset_index(drop=True)
    if categories is None:
        categories = tuple(sorted(str(v) for v in pd.unique(text.dropna())))
    return pd.Series(pd.Categorical(text, categories=list(categories)))
