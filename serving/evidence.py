"""What stands behind a customer's reasons on a day's list: their recent contacts and
cases as the list saw them, kept with the list when it is written (``serving.store``'s
``risk_list_evidence``) and shown by the page's detail view (``GET /risk-list/customer``).

``customer_evidence`` runs where the customers' contacts are (on each partition of the
list's scoring stage, ``serving.risklist.score_customers``), for the customers who may be
opened on the page, and sees only what the features of the day see: contacts started
before the end of the list's day (``features.build.visible_end``). A customer's evidence is
one JSON document:

* ``contacts``: the last ``MAX_CONTACTS`` contacts within the longest feature window (90
  days by default), newest first, each with its facts and its signs: ``long_wait`` (over
  the channel's long-wait threshold of the model's feature settings), ``repeat`` (the
  case had an earlier contact), ``transferred``, ``low_csat`` (2 or less);
* ``cases``: the customer's cases with a contact in the window (open ones first, the oldest
  open first; at most ``MAX_CASES``): first and last contact day, contacts, the status
  after the last contact, ``open`` (not resolved), and ``age_days`` since the first contact;
* ``contacts_in_window`` and ``window_days``: how many contacts the window holds in all.

``behind(family, evidence)`` names the contacts and cases behind a reason of a family.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from features.build import visible_end
from features.settings import FeatureSettings

MAX_CONTACTS = 10
MAX_CASES = 5
LOW_CSAT = 2  # a rating of 2 out of 5 or less is a bad sign
_FACTS = ("channel", "topic", "case_id", "status")
_NUMBERS = ("wait_seconds", "handle_seconds", "transfers", "csat")
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def customer_evidence(
    interactions: pd.DataFrame,
    customer_ids: Iterable[str],
    as_of: Any,
    settings: FeatureSettings,
) -> dict[str, str]:
    """{customer_id: evidence JSON} of the given customers as of ``as_of`` (see the
    module); a customer without any contact in the window gets empty lists."""
    wanted = list(dict.fromkeys(str(c) for c in customer_ids))
    if not wanted:
        return {}
    end = visible_end(as_of)
    window_days = max(settings.windows)
    start = end - pd.Timedelta(days=window_days)
    ids = interactions[CUSTOMER_ID].astype(str)
    started = pd.to_datetime(interactions["started_at"])
    if started.dt.tz is not None:
        started = started.dt.tz_convert("UTC").dt.tz_localize(None)
    seen = ids.isin(wanted).to_numpy() & (started < end).to_numpy()
    table = interactions.loc[seen].copy()
    table[CUSTOMER_ID] = ids[seen].to_numpy()
    table["started_at"] = started[seen].to_numpy()
    for column in (*_FACTS, "interaction_id"):
        if column not in table.columns:
            table[column] = None
    for column in (*_NUMBERS, "abandoned"):
        if column not in table.columns:
            table[column] = np.nan
    table = table.sort_values([CUSTOMER_ID, "started_at"], kind="stable")
    long_wait = dict(settings.long_wait_seconds)
    # Plain records: a few dict lookups a contact, not pandas' per-row indexing.
    records = table[[CUSTOMER_ID, "interaction_id", "started_at", *_FACTS, *_NUMBERS, "abandoned"]]
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for record in records.to_dict("records"):
        by_customer.setdefault(record[CUSTOMER_ID], []).append(record)
    found = {
        c: _one(contacts, start, end, window_days, long_wait) for c, contacts in by_customer.items()
    }
    empty = _encode({"contacts": [], "cases": [], "contacts_in_window": 0}, window_days)
    return {c: found.get(c, empty) for c in wanted}


def _one(
    contacts: list[dict[str, Any]],
    start: pd.Timestamp,
    end: pd.Timestamp,
    window_days: int,
    long_wait: dict[str, float],
) -> str:
    """One customer's evidence of their contacts up to the day, oldest first."""
    cases: dict[str, dict[str, Any]] = {}
    recent: list[dict[str, Any]] = []
    window_cases: set[str] = set()
    last_day = (end - pd.Timedelta(days=1)).normalize()
    for record in contacts:
        case_id = _text(record["case_id"])
        case_id = case_id or None
        case = cases.get(case_id) if case_id else None
        repeat = case is not None
        status = _text(record["status"])
        if case_id:
            if case is None:
                case = cases[case_id] = {
                    "case_id": case_id,
                    "topic": _text(record["topic"]),
                    "first_contact": f"{record['started_at']:%Y-%m-%d}",
                    "last_contact": "",
                    "contacts": 0,
                    "status": None,
                    "open": False,
                    "age_days": int((last_day - record["started_at"].normalize()).days),
                }
            case["last_contact"] = f"{record['started_at']:%Y-%m-%d}"
            case["contacts"] += 1
            case["status"] = status
            case["open"] = status is not None and status != "resolved"
        if record["started_at"] >= start:
            recent.append(_contact(record, repeat, long_wait))
            if case_id:
                window_cases.add(case_id)
    shown = [c for c in cases.values() if c["case_id"] in window_cases]
    still_open = sorted((c for c in shown if c["open"]), key=lambda c: c["first_contact"])
    closed = sorted((c for c in shown if not c["open"]), key=lambda c: c["last_contact"])
    document = {
        "contacts": recent[::-1][:MAX_CONTACTS],
        "cases": (still_open + closed[::-1])[:MAX_CASES],
        "contacts_in_window": len(recent),
    }
    return _encode(document, window_days)


def _contact(row: dict[str, Any], repeat: bool, long_wait: dict[str, float]) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "interaction_id": _text(row["interaction_id"]),
        "started_at": f"{row['started_at']:%Y-%m-%dT%H:%M:%SZ}",
        **{name: _text(row[name]) for name in _FACTS},
        **{name: _number(row[name]) for name in _NUMBERS},
        "abandoned": _flag(row["abandoned"]),
    }
    wait = facts["wait_seconds"]
    limit = long_wait.get(facts["channel"] or "")
    transfers = facts["transfers"] or 0
    csat = facts["csat"]
    facts["long_wait"] = bool(wait is not None and limit is not None and wait > limit)
    facts["repeat"] = repeat
    facts["transferred"] = transfers > 0
    facts["low_csat"] = bool(csat is not None and csat <= LOW_CSAT)
    return facts


def _encode(document: dict[str, Any], window_days: int) -> str:
    return _ENCODER.encode({**document, "window_days": window_days})


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    number = _number(value)
    return bool(number)


# -- which contacts stand behind a reason -------------------------------------------------
def behind(family: str, evidence: dict[str, Any]) -> dict[str, list[str]]:
    """The interaction ids and case ids behind a reason of ``family``: waits, repeats,
    transfers, low ratings, open cases; the recent contacts for volume, recency and trend;
    nothing for the account's facts (profile, little history)."""
    contacts = evidence.get("contacts", [])
    cases = evidence.get("cases", [])
    open_cases = [c["case_id"] for c in cases if c["open"]]
    signs = {
        "waiting": lambda c: c["long_wait"] or c["abandoned"],
        "repeating yourself": lambda c: c["repeat"],
        "transfers": lambda c: c["transferred"],
        "satisfaction": lambda c: c["csat"] is not None,
        "resolution": lambda c: c["repeat"] or (c["status"] not in (None, "resolved")),
        "bad experiences": lambda c: (
            c["long_wait"]
            or c["abandoned"]
            or c["transferred"]
            or c["low_csat"]
            or c["status"] == "escalated"
        ),
        "contact volume": lambda _c: True,
        "recency": lambda _c: True,
        "trend": lambda _c: True,
    }
    if family == "unresolved case":
        ids = [c["interaction_id"] for c in contacts if c["case_id"] in open_cases]
        return {"contacts": [i for i in ids if i], "cases": open_cases}
    test = signs.get(family)
    if test is None:
        return {"contacts": [], "cases": []}
    ids = [c["interaction_id"] for c in contacts if test(c) and c["interaction_id"]]
    case_ids = [c["case_id"] for c in contacts if test(c) and c["case_id"]]
    return {"contacts": ids, "cases": [c for c in dict.fromkeys(case_ids) if c in _ids(cases)]}


def _ids(cases: list[dict[str, Any]]) -> set[str]:
    return {c["case_id"] for c in cases}
