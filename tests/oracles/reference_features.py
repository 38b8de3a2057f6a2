"""Two independent reference implementations of ``features.build_features``.

* ``pandas_features``: the straightforward pandas way (sort, groupby, cumcount,
  shift, agg), written to be read, not to be fast;
* ``duckdb_features``: the same aggregates as DuckDB SQL (window functions for the
  per-contact facts, one conditional GROUP BY for all windows).

Both compute the FULL feature set with the definitions of ``docs/features.md``, so
that a test can check all three implementations against each other, and the
benchmark can compare their speed on exactly the same work. The profile columns
(tenure, revenue, categories) come from one shared pandas helper: they involve no
contacts. DuckDB is a dev dependency; it is imported only when used.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from churnml.contract import CHANNELS
from features.build import parse_as_of
from features.columns import CATEGORICAL_FEATURES, PROFILE_PREFIX, feature_columns
from features.settings import FeatureSettings

_CONTRACT_CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_date",
    "churned_at",
    "segment",
    "plan",
    "monthly_revenue",
)


def _active(customers: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    churned = customers["churned_at"]
    mask = (customers["signup_date"] <= day) & (churned.isna() | (churned > day))
    return customers[mask]


def _profile(
    customers: pd.DataFrame, active: pd.DataFrame, day: pd.Timestamp, settings: FeatureSettings
) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.Index(active["customer_id"], name="customer_id"))
    out["tenure_days"] = (day - active["signup_date"]).dt.days.astype(float).to_numpy()
    out["monthly_revenue"] = active["monthly_revenue"].astype(float).to_numpy()

    def categorical(name: str, column: str) -> pd.Categorical:
        pinned = settings.categories_of(column)
        if name not in customers.columns:
            return pd.Categorical([np.nan] * len(active), categories=list(pinned or ()))
        cats = pinned or sorted(customers[name].dropna().astype(str).unique())
        return pd.Categorical(active[name].astype("str").to_numpy(), categories=list(cats))

    for name in CATEGORICAL_FEATURES:
        out[name] = categorical(name, name)
    extra = settings.profile_columns
    if extra is None:
        extra = [c for c in customers.columns if c not in _CONTRACT_CUSTOMER_COLUMNS]
    for name in extra:
        if name in settings.exclude_profile_columns:
            continue
        column = PROFILE_PREFIX + name
        if settings.categories_of(column) is not None or (
            name in customers.columns and not pd.api.types.is_numeric_dtype(customers[name])
        ):
            out[column] = categorical(name, column)
        elif name in customers.columns:
            out[column] = active[name].astype(float).to_numpy()
        else:
            out[column] = np.nan
    return out


def _finish(
    contact_features: pd.DataFrame, profile: pd.DataFrame, settings: FeatureSettings
) -> pd.DataFrame:
    frame = contact_features.reindex(profile.index)
    counts = [
        c
        for c in frame.columns
        if not c.startswith(
            (
                "wait_mean",
                "wait_p90",
                "wait_max",
                "csat_mean",
                "csat_min",
                "csat_last",
                "first_contact_resolution",
                "days_since",
                "oldest_open",
            )
        )
    ]
    frame[counts] = frame[counts].fillna(0.0)
    for name in ("contacts", "bad_experiences"):
        recent = frame.pop(f"_{name}_recent")
        prior = frame.pop(f"_{name}_prior")
        frame[f"{name}_trend_per_day"] = (
            recent / settings.trend_recent_days - prior / settings.trend_prior_days
        )
        expected = prior * settings.trend_recent_days / settings.trend_prior_days
        frame[f"{name}_trend_ratio"] = (recent + 1.0) / (expected + 1.0)
    frame = pd.concat([frame.astype(float), profile], axis=1)
    names = [c[len(PROFILE_PREFIX) :] for c in profile.columns if c.startswith(PROFILE_PREFIX)]
    return frame[feature_columns(settings, names)]


# --------------------------------------------------------------------------- pandas


def pandas_features(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> pd.DataFrame:
    """build_features, the straightforward pandas way."""
    settings = settings or FeatureSettings()
    day = parse_as_of(as_of)
    end = day + pd.Timedelta(days=1)
    active = _active(customers, day)
    profile = _profile(customers, active, day, settings)

    c = interactions[
        (interactions["started_at"] < end)
        & interactions["customer_id"].isin(customers["customer_id"])
    ]
    c = c.sort_values("started_at", kind="stable").reset_index(drop=True)
    cust = "customer_id"
    has_case = c["case_id"].notna()

    cases = c[has_case]
    case_rank = cases.groupby([cust, "case_id"]).cumcount()
    case_first = pd.Series(False, index=c.index)
    case_first[cases.index] = case_rank == 0
    channel_rank = cases.groupby([cust, "case_id", "channel"]).cumcount()
    channel_switch = pd.Series(False, index=c.index)
    channel_switch[cases.index] = (channel_rank == 0) & (case_rank != 0)
    first_agent = cases.groupby([cust, "case_id"])["agent_id"].transform("first")
    other = cases["agent_id"].notna() & (cases["agent_id"] != first_agent)
    others = cases[other]
    multi_agent = pd.Series(False, index=c.index)
    multi_agent[others.index] = others.groupby([cust, "case_id"]).cumcount() == 0

    topics = c[c["topic"].notna()]
    gap = topics["started_at"] - topics.groupby([cust, "topic"])["started_at"].shift()
    topic_repeat = pd.Series(False, index=c.index)
    topic_repeat[topics.index] = (gap <= pd.Timedelta(days=settings.repeat_window_days)) & topics[
        "case_id"
    ].isna()

    thresholds = c["channel"].map(dict(settings.long_wait_seconds)).astype(float)
    transfers = c["transfers"].fillna(0.0)
    flags = pd.DataFrame(
        {
            cust: c[cust],
            "started_at": c["started_at"],
            "channel": c["channel"],
            "wait": c["wait_seconds"],
            "csat": c["csat"],
            "transfers": transfers,
            "long_waits": c["wait_seconds"] > thresholds,
            "abandoned_contacts": c["abandoned"] == 1.0,
            "repeat_contacts": (has_case & ~case_first) | topic_repeat,
            "channel_switches": channel_switch,
            "multi_agent_cases": multi_agent,
            "transferred_contacts": transfers >= 1,
            "escalated_contacts": c["status"] == "escalated",
            "cases_started": case_first,
            "first_resolved": case_first & (c["status"] == "resolved"),
            "first_known": case_first & c["status"].notna(),
        }
    )
    flags["bad_experiences"] = (
        flags["long_waits"]
        | flags["abandoned_contacts"]
        | (c["csat"] <= settings.bad_csat_max)
        | (transfers >= settings.bad_transfers_min)
        | c["status"].isin(settings.bad_statuses)
    )

    parts = []
    for w in settings.windows:
        win = flags[flags["started_at"] >= end - pd.Timedelta(days=w)]
        g = win.groupby(cust)
        agg = g.agg(
            contacts=("started_at", "size"),
            wait_mean_seconds=("wait", "mean"),
            wait_max_seconds=("wait", "max"),
            long_waits=("long_waits", "sum"),
            abandoned_contacts=("abandoned_contacts", "sum"),
            repeat_contacts=("repeat_contacts", "sum"),
            channel_switches=("channel_switches", "sum"),
            multi_agent_cases=("multi_agent_cases", "sum"),
            transfers=("transfers", "sum"),
            transferred_contacts=("transferred_contacts", "sum"),
            escalated_contacts=("escalated_contacts", "sum"),
            cases_started=("cases_started", "sum"),
            first_resolved=("first_resolved", "sum"),
            first_known=("first_known", "sum"),
            csat_answers=("csat", "count"),
            csat_mean=("csat", "mean"),
            csat_min=("csat", "min"),
            bad_experiences=("bad_experiences", "sum"),
        )
        agg["wait_p90_seconds"] = g["wait"].quantile(0.9)
        agg["first_contact_resolution_rate"] = agg["first_resolved"] / agg["first_known"].where(
            agg["first_known"] > 0
        )
        per_channel = win.groupby([cust, "channel"]).size().unstack(fill_value=0)
        for channel in CHANNELS:
            agg[f"contacts_{channel}"] = per_channel.get(channel, 0)
        agg = agg.drop(columns=["first_resolved", "first_known"])
        parts.append(agg.add_suffix(f"_{w}d"))

    # A case's status on the day: the status of its last contact up to the day.
    last = cases.drop_duplicates([cust, "case_id"], keep="last").set_index([cust, "case_id"])
    first_t = cases.groupby([cust, "case_id"])["started_at"].min()
    status_now = last["status"]
    is_open = status_now.notna() & (status_now != "resolved")
    open_cases = is_open.groupby(level=0).sum()
    open_escalated = (is_open & (status_now == "escalated")).groupby(level=0).sum()
    oldest = first_t[is_open].groupby(level=0).min()
    answered = c[c["csat"].notna()]
    last_contact = c.groupby(cust)["started_at"].max()
    last_bad = flags[flags["bad_experiences"]].groupby(cust)["started_at"].max()
    recent_start = end - pd.Timedelta(days=settings.trend_recent_days)
    prior_start = recent_start - pd.Timedelta(days=settings.trend_prior_days)
    recent = flags[flags["started_at"] >= recent_start]
    prior = flags[(flags["started_at"] >= prior_start) & (flags["started_at"] < recent_start)]
    snapshot = pd.concat(
        {
            "open_cases": open_cases,
            "open_escalated_cases": open_escalated,
            "oldest_open_case_age_days": (day - oldest.dt.normalize()).dt.days,
            "csat_last": answered.groupby(cust)["csat"].last(),
            "days_since_last_contact": (day - last_contact.dt.normalize()).dt.days,
            "days_since_last_bad_experience": (day - last_bad.dt.normalize()).dt.days,
            "_contacts_recent": recent.groupby(cust).size(),
            "_contacts_prior": prior.groupby(cust).size(),
            "_bad_experiences_recent": recent.groupby(cust)["bad_experiences"].sum(),
            "_bad_experiences_prior": prior.groupby(cust)["bad_experiences"].sum(),
        },
        axis=1,
    )

    contact_features = pd.concat([*parts, snapshot], axis=1)
    return _finish(contact_features, profile, settings)


# --------------------------------------------------------------------------- DuckDB


def _duckdb_sql(settings: FeatureSettings, end: str, day: str) -> str:
    thresholds = " ".join(
        f"WHEN '{channel}' THEN {seconds!r}" for channel, seconds in settings.long_wait_seconds
    )
    bad_statuses = ", ".join(f"'{s}'" for s in settings.bad_statuses)

    def start(days: int) -> str:
        return f"TIMESTAMP '{end}' - INTERVAL {days} DAY"

    window_aggs = []
    for w in settings.windows:
        f = f"FILTER (WHERE started_at >= {start(w)})"
        window_aggs += [
            f"count(*) {f} AS contacts_{w}d",
            *(
                f"count(*) FILTER (WHERE started_at >= {start(w)} AND channel = '{ch}') "
                f"AS contacts_{ch}_{w}d"
                for ch in CHANNELS
            ),
            f"avg(wait_seconds) {f} AS wait_mean_seconds_{w}d",
            f"quantile_cont(wait_seconds, 0.9) {f} AS wait_p90_seconds_{w}d",
            f"max(wait_seconds) {f} AS wait_max_seconds_{w}d",
            *(
                f"count(*) FILTER (WHERE started_at >= {start(w)} AND {flag}) AS {flag}_{w}d"
                for flag in (
                    "long_waits",
                    "abandoned_contacts",
                    "repeat_contacts",
                    "channel_switches",
                    "multi_agent_cases",
                )
            ),
            f"sum(transfers0) {f} AS transfers_{w}d",
            f"count(*) FILTER (WHERE started_at >= {start(w)} AND transfers0 >= 1) "
            f"AS transferred_contacts_{w}d",
            f"count(*) FILTER (WHERE started_at >= {start(w)} AND status = 'escalated') "
            f"AS escalated_contacts_{w}d",
            f"count(*) FILTER (WHERE started_at >= {start(w)} AND case_first) "
            f"AS cases_started_{w}d",
            f"count(*) FILTER (WHERE started_at >= {start(w)} AND case_first "
            f"AND status = 'resolved') / nullif(count(*) FILTER (WHERE started_at >= {start(w)} "
            f"AND case_first AND status IS NOT NULL), 0) AS first_contact_resolution_rate_{w}d",
            f"count(csat) {f} AS csat_answers_{w}d",
            f"avg(csat) {f} AS csat_mean_{w}d",
            f"min(csat) {f} AS csat_min_{w}d",
            f"count(*) FILTER (WHERE started_at >= {start(w)} AND bad) AS bad_experiences_{w}d",
        ]
    recent = start(settings.trend_recent_days)
    prior = start(settings.trend_recent_days + settings.trend_prior_days)
    window_aggs += [
        f"count(*) FILTER (WHERE started_at >= {recent}) AS _contacts_recent",
        f"count(*) FILTER (WHERE started_at >= {prior} AND started_at < {recent}) "
        "AS _contacts_prior",
        f"count(*) FILTER (WHERE started_at >= {recent} AND bad) AS _bad_experiences_recent",
        f"count(*) FILTER (WHERE started_at >= {prior} AND started_at < {recent} AND bad) "
        "AS _bad_experiences_prior",
        "arg_max(csat, cust_rank) FILTER (WHERE csat IS NOT NULL) AS csat_last",
        f"date_diff('day', max(started_at)::DATE, DATE '{day}') AS days_since_last_contact",
        f"date_diff('day', max(started_at) FILTER (WHERE bad)::DATE, DATE '{day}') "
        "AS days_since_last_bad_experience",
    ]
    by_case = "PARTITION BY customer_id, case_id ORDER BY started_at, rn"
    whole = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    return f"""
WITH c0 AS (
    SELECT i.customer_id, started_at, channel, case_id, topic, wait_seconds, agent_id,
           coalesce(transfers, 0) AS transfers0, abandoned, status, csat, rn
    FROM i SEMI JOIN cu ON i.customer_id = cu.customer_id
    WHERE started_at < TIMESTAMP '{end}'
),
c1 AS (
    SELECT *,
        row_number() OVER (PARTITION BY customer_id ORDER BY started_at, rn) AS cust_rank,
        CASE WHEN case_id IS NOT NULL
             THEN row_number() OVER ({by_case}) END AS case_rank,
        CASE WHEN case_id IS NOT NULL
             THEN row_number() OVER (PARTITION BY customer_id, case_id, channel
                                     ORDER BY started_at, rn) END AS channel_rank,
        CASE WHEN case_id IS NOT NULL
             THEN first_value(agent_id IGNORE NULLS) OVER ({by_case} {whole}) END AS first_agent,
        CASE WHEN topic IS NOT NULL
             THEN lag(started_at) OVER (PARTITION BY customer_id, topic
                                       ORDER BY started_at, rn) END AS topic_prev,
        CASE WHEN case_id IS NOT NULL
             THEN last_value(status) OVER ({by_case} {whole}) END AS case_status_now
    FROM c0
),
c2 AS (
    SELECT *,
        coalesce(case_rank = 1, false) AS case_first,
        coalesce(agent_id IS NOT NULL AND agent_id <> first_agent, false) AS other_agent,
        coalesce(wait_seconds > CASE channel {thresholds} END, false) AS long_waits,
        coalesce(abandoned = 1.0, false) AS abandoned_contacts,
        coalesce(case_rank > 1, false)
            OR coalesce(case_id IS NULL
                        AND started_at - topic_prev <= INTERVAL {settings.repeat_window_days} DAY,
                        false) AS repeat_contacts,
        coalesce(channel_rank = 1 AND case_rank > 1, false) AS channel_switches
    FROM c1
),
c3 AS (
    SELECT *,
        coalesce(other_agent AND row_number() OVER (PARTITION BY customer_id, case_id, other_agent
                                                   ORDER BY started_at, rn) = 1, false)
            AS multi_agent_cases,
        long_waits OR abandoned_contacts OR coalesce(csat <= {settings.bad_csat_max}, false)
            OR transfers0 >= {settings.bad_transfers_min}
            OR coalesce(status IN ({bad_statuses}), false) AS bad
    FROM c2
),
per_customer AS (
    SELECT customer_id, {", ".join(window_aggs)}
    FROM c3
    GROUP BY customer_id
),
open_cases AS (
    SELECT customer_id,
        count(*) AS open_cases,
        count(*) FILTER (WHERE case_status_now = 'escalated') AS open_escalated_cases,
        date_diff('day', min(started_at)::DATE, DATE '{day}') AS oldest_open_case_age_days
    FROM c3
    WHERE case_first AND case_status_now IS NOT NULL AND case_status_now <> 'resolved'
    GROUP BY customer_id
)
SELECT * FROM per_customer LEFT JOIN open_cases USING (customer_id)
"""


def duckdb_features(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """build_features as DuckDB SQL."""
    import duckdb
    import pyarrow as pa

    settings = settings or FeatureSettings()
    day = parse_as_of(as_of)
    end = day + pd.Timedelta(days=1)
    active = _active(customers, day)
    profile = _profile(customers, active, day, settings)

    # Row order breaks ties in started_at, as in build_features.
    table = pa.Table.from_pandas(interactions, preserve_index=False)
    table = table.append_column("rn", pa.array(np.arange(len(interactions), dtype=np.int64)))
    ids = pa.table({"customer_id": pa.array(customers["customer_id"].astype("str"))})
    con = duckdb.connect()
    try:
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        con.register("i", table)
        con.register("cu", ids)
        sql = _duckdb_sql(settings, str(end), str(day.date()))
        result = con.execute(sql).fetch_df()
    finally:
        con.close()
    result = result.set_index("customer_id")
    result.index = result.index.astype("str")
    return _finish(result, profile, settings)
