"""A synthetic, contract-valid world built fast with numpy, for benchmarks and tests.

Not the simulator: no behaviour, no churn model, only a realistic *shape* of the
tables (customers with skewed contact rates, cases of several contacts across
channels and agents, contacts without case ids, missing values everywhere the
contract allows them), typed as ``churnml.contract`` says validated tables are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnml.contract import BOOLEAN_WORDS, CHANNELS, STATUSES, TABLES

DAY_NS = 86_400 * 10**9
TOPICS = ("billing", "technical", "contract", "delivery", "moving", "outage", "device", "other")
PLANS = ("basic", "plus", "premium", "family")
REGIONS = ("north", "south", "east", "west")
# Median wait per channel in seconds (phone/chat/store minutes, email/social hours).
MEDIAN_WAIT = {
    "phone": 240,
    "chat": 90,
    "email": 36_000,
    "social": 14_400,
    "store": 420,
    "other": 900,
}


def _ids(prefix: str, numbers: np.ndarray) -> pd.Series:
    text = pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")
    return pd.Series(text.to_pandas(), dtype="str")


def _pick(
    values: tuple[str, ...], codes: np.ndarray, missing: np.ndarray | None = None
) -> pd.Series:
    dictionary = pa.array(values)
    indices = pa.array(codes.astype(np.int32), mask=missing)
    text = pc.take(dictionary, indices)
    return pd.Series(text.to_pandas(), dtype="str")


def make_world(
    n_customers: int,
    n_contacts: int,
    *,
    end: str = "2024-12-31",
    days: int = 365,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and interactions, typed like validated tables; contacts in time order."""
    rng = np.random.default_rng(seed)
    end_day = pd.Timestamp(end).value
    start_ns = end_day - (days - 1) * DAY_NS

    signup_day = rng.integers(-3 * 365, days - 10, n_customers)
    signup = start_ns + signup_day * DAY_NS
    churned = rng.random(n_customers) < 0.15
    churn_day = signup_day + rng.integers(30, 3 * 365, n_customers)
    churn_ns = np.where(
        churned & (churn_day < days + 30), start_ns + churn_day * DAY_NS, np.iinfo(np.int64).min
    )
    customers = pd.DataFrame(
        {
            "customer_id": _ids("C", np.arange(n_customers)),
            "signup_date": signup.astype("datetime64[ns]"),
            "churned_at": churn_ns.astype("datetime64[ns]"),
            "segment": _pick(("consumer", "business"), (rng.random(n_customers) < 0.2).astype(int)),
            "plan": _pick(
                PLANS, rng.integers(0, len(PLANS), n_customers), rng.random(n_customers) < 0.05
            ),
            "monthly_revenue": np.where(
                rng.random(n_customers) < 0.02,
                np.nan,
                np.round(rng.gamma(2.0, 25.0, n_customers), 2),
            ),
            "region": _pick(
                REGIONS, rng.integers(0, len(REGIONS), n_customers), rng.random(n_customers) < 0.1
            ),
            "age": np.where(
                rng.random(n_customers) < 0.3,
                np.nan,
                rng.integers(18, 90, n_customers).astype(float),
            ),
        }
    )

    # Cases: a skewed customer choice, a start, a few contacts a couple of days apart.
    weights = rng.lognormal(0.0, 1.0, n_customers)
    weights /= weights.sum()
    n_cases = max(1, n_contacts // 3)
    case_customer = rng.choice(n_customers, size=n_cases, p=weights)
    # Cases start any time the customer is a customer within the period.
    first = np.maximum(signup, start_ns)[case_customer]
    last = np.where(churn_ns > 0, np.minimum(churn_ns, end_day), end_day)[case_customer]
    last = np.maximum(last, first) + DAY_NS - 1
    case_start = first + (rng.random(n_cases) * (last - first)).astype(np.int64)
    sizes = rng.geometric(1 / 3, n_cases)
    total = int(sizes.sum())
    if total < n_contacts:
        np.add.at(sizes, rng.integers(0, n_cases, n_contacts - total), 1)
    sizes = np.maximum(sizes, 1)
    case_of = np.repeat(np.arange(n_cases), sizes)[:n_contacts]
    rank = np.arange(len(case_of)) - np.repeat(np.cumsum(sizes) - sizes, sizes)[:n_contacts]
    gap = (rng.exponential(2.0, n_contacts) * DAY_NS).astype(np.int64) * (rank > 0)
    cum = np.cumsum(gap)
    case_begin = np.cumsum(sizes) - sizes
    cum -= np.repeat(cum[np.minimum(case_begin, n_contacts - 1)], sizes)[:n_contacts]
    started = case_start[case_of] + cum + rng.integers(0, 3600 * 10**9, n_contacts) * (rank == 0)
    started = (started // 10**9) * 10**9  # whole seconds, like most CRM exports
    cust = case_customer[case_of]

    primary = rng.integers(0, len(CHANNELS) - 1, n_cases)
    channel = np.where(
        rng.random(n_contacts) < 0.75, primary[case_of], rng.integers(0, len(CHANNELS), n_contacts)
    )
    topic = rng.integers(0, len(TOPICS), n_cases)[case_of]
    caseless = rng.random(n_contacts) < 0.15
    medians = np.array([MEDIAN_WAIT[c] for c in CHANNELS], dtype=float)
    wait = np.round(medians[channel] * rng.lognormal(0.0, 1.0, n_contacts))
    wait[rng.random(n_contacts) < 0.05] = np.nan
    live = np.isin(channel, [CHANNELS.index("phone"), CHANNELS.index("chat")])
    abandoned = np.where(live, (rng.random(n_contacts) < 0.08).astype(float), 0.0)
    abandoned[rng.random(n_contacts) < 0.02] = np.nan
    agent = rng.integers(0, 2000, n_contacts)
    agent = np.where(rng.random(n_contacts) < 0.6, rng.integers(0, 2000, n_cases)[case_of], agent)
    last_of_case = np.r_[case_of[1:] != case_of[:-1], True]
    status = np.where(
        last_of_case & (rng.random(n_contacts) < 0.7),
        STATUSES.index("resolved"),
        rng.choice([0, 1, 2, 3], n_contacts, p=[0.2, 0.5, 0.15, 0.15]),
    )
    csat = np.where(
        rng.random(n_contacts) < 0.2, rng.integers(1, 6, n_contacts).astype(float), np.nan
    )
    transfers = rng.poisson(0.3, n_contacts).astype(float)
    transfers[rng.random(n_contacts) < 0.03] = np.nan

    keep = started <= end_day + DAY_NS - 1
    order = np.argsort(started[keep], kind="stable")
    rows = np.flatnonzero(keep)[order]
    m = len(rows)
    interactions = pd.DataFrame(
        {
            "interaction_id": _ids("I", np.arange(m)),
            "customer_id": _ids("C", cust[rows]),
            "started_at": started[rows].astype("datetime64[ns]"),
            "channel": _pick(CHANNELS, channel[rows]),
            "case_id": _ids("K", case_of[rows]).where(~caseless[rows]),
            "topic": _pick(TOPICS, topic[rows], rng.random(m) < 0.05),
            "wait_seconds": wait[rows],
            "handle_seconds": np.round(rng.lognormal(5.5, 0.8, m)),
            "agent_id": _pick(
                tuple(f"A{i}" for i in range(2000)), agent[rows], abandoned[rows] == 1.0
            ),
            "transfers": transfers[rows],
            "abandoned": abandoned[rows],
            "status": _pick(STATUSES, status[rows], rng.random(m) < 0.03),
            "csat": csat[rows],
        }
    )
    return customers, interactions


def save_world(customers: pd.DataFrame, interactions: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    customers.to_parquet(folder / "customers.parquet", index=False)
    interactions.to_parquet(folder / "interactions.parquet", index=False)


def _typed(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The dtypes of a validated table (a stand-in for churnml.validation; no checks)."""
    frame = frame.copy()
    for column in TABLES[table]:
        if column.name not in frame.columns:
            frame[column.name] = np.nan
        values = frame[column.name]
        if column.kind in ("date", "timestamp"):
            values = pd.to_datetime(values, utc=True).dt.tz_localize(None).astype("datetime64[ns]")
            frame[column.name] = values.dt.normalize() if column.kind == "date" else values
        elif column.kind == "boolean":
            if values.dtype == bool or pd.api.types.is_numeric_dtype(values.dtype):
                frame[column.name] = values.astype(float)
            else:
                frame[column.name] = values.map(BOOLEAN_WORDS).astype(float)
        elif column.kind in ("number", "integer"):
            frame[column.name] = values.astype(float)
        else:
            frame[column.name] = values.astype("str")
    return frame


def load_world(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """customers and interactions (.parquet, a Parquet folder or .csv) from a folder, typed."""
    tables = []
    for table in ("customers", "interactions"):
        candidates = [folder / f"{table}.parquet", folder / table, folder / f"{table}.csv"]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"{folder}: no {table}.parquet, {table}/ or {table}.csv")
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        tables.append(_typed(frame, table))
    return tables[0], tables[1]
