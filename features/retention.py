"""A customer's own retention history as of a day: the retention team's past picks and calls.

``retention_history_features(contacts, as_of=D)`` reads the ``retention_contacts`` table
(contract v1.1, already validated: ``customer_id``, ``contacted_at`` a day, ``group``
``treated``/``control``, ``outcome`` or missing) and gives per customer what the team did
up to and including day D: picks and calls so far, their outcomes, and the days since the
last call and the last pick. The call-effect model reads them beside the churn features
(a customer called last week answers a new call differently), in training
(``training.call_effect_fit``) and scoring (``model.predictor``), through this one builder.

Point in time: a pick on day c is visible as of D when ``c <= D`` (the team's log is a
list of days, and a pick's day is over by the end of D). A customer never picked has 0
counts and NaN days since (never: LightGBM reads it as missing, on purpose).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID

CONTACTED_AT = "contacted_at"
GROUP = "group"
OUTCOME = "outcome"
TREATED = "treated"
CONTROL = "control"

# Declared once: the columns retention_history_features returns, in order.
RETENTION_COLUMNS = (
    "retention_picks_total",
    "retention_calls_total",
    "retention_reached_total",
    "retention_accepted_total",
    "retention_declined_total",
    "retention_days_since_last_call",
    "retention_days_since_last_pick",
)
# Outcomes of a call that count as reaching the customer (an offer accepted or declined
# was made to someone reached).
_REACHED = ("reached", "accepted_offer", "declined")


def empty_retention_contacts() -> pd.DataFrame:
    """A retention_contacts table without rows (a customer base the team never touched)."""
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series([], dtype="string"),
            CONTACTED_AT: pd.Series([], dtype="datetime64[ns]"),
            GROUP: pd.Series([], dtype="string"),
            OUTCOME: pd.Series([], dtype="string"),
        }
    )


def retention_history_features(
    contacts: pd.DataFrame | None,
    *,
    as_of: pd.Timestamp | str,
    customer_ids: pd.Index | np.ndarray | list[str] | None = None,
) -> pd.DataFrame:
    """The retention history of each customer as of the end of ``as_of`` (see the module),
    indexed by ``customer_id``: the customers of ``customer_ids`` in their order (those
    never picked get 0 counts and NaN days), or else every customer picked by then.
    ``contacts`` None is an empty table. Never mutates ``contacts``."""
    day = pd.Timestamp(as_of).normalize()
    contacts = empty_retention_contacts() if contacts is None else contacts
    seen = contacts.loc[pd.to_datetime(contacts[CONTACTED_AT]).dt.normalize() <= day]
    ids = seen[CUSTOMER_ID].astype("string")
    when = pd.to_datetime(seen[CONTACTED_AT]).dt.normalize()
    group = (
        seen[GROUP].astype("string").fillna(TREATED)
        if GROUP in seen
        else pd.Series(TREATED, index=seen.index, dtype="string")
    )
    outcome = (
        seen[OUTCOME].astype("string")
        if OUTCOME in seen
        else pd.Series(pd.NA, index=seen.index, dtype="string")
    )
    called = (group == TREATED).to_numpy(dtype=bool)
    rows = pd.DataFrame(
        {
            CUSTOMER_ID: ids.to_numpy(dtype=object),
            "pick": 1.0,
            "call": called.astype("float64"),
            "reached": (called & outcome.isin(_REACHED).fillna(False).to_numpy(bool)).astype(
                "float64"
            ),
            "accepted": (called & (outcome == "accepted_offer").fillna(False).to_numpy(bool)),
            "declined": (called & (outcome == "declined").fillna(False).to_numpy(bool)),
            "pick_day": when.to_numpy(),
            "call_day": when.where(pd.Series(called, index=when.index)).to_numpy(),
        }
    )
    per = rows.groupby(CUSTOMER_ID, sort=True).agg(
        retention_picks_total=("pick", "sum"),
        retention_calls_total=("call", "sum"),
        retention_reached_total=("reached", "sum"),
        retention_accepted_total=("accepted", "sum"),
        retention_declined_total=("declined", "sum"),
        last_call=("call_day", "max"),
        last_pick=("pick_day", "max"),
    )
    out = pd.DataFrame(index=pd.Index(per.index.astype(str), name=CUSTOMER_ID))
    for column in RETENTION_COLUMNS[:5]:
        out[column] = per[column].to_numpy(dtype="float64")
    out["retention_days_since_last_call"] = _days_since(day, per["last_call"])
    out["retention_days_since_last_pick"] = _days_since(day, per["last_pick"])
    if customer_ids is not None:
        wanted = pd.Index(np.asarray(customer_ids, dtype=object).astype(str), name=CUSTOMER_ID)
        out = out.reindex(wanted)
        counts = list(RETENTION_COLUMNS[:5])
        out[counts] = out[counts].fillna(0.0)
    return out[list(RETENTION_COLUMNS)]


def _days_since(day: pd.Timestamp, last: pd.Series) -> np.ndarray:
    """Whole days from ``last`` to ``day``; NaN where there was none."""
    last = pd.to_datetime(last)
    return ((day - last).dt.days).to_numpy(dtype="float64", na_value=np.nan)
