"""Reasons in plain words: why a customer's churn risk is high, with the customer's own numbers.

One wording for every caller: the scoring service, batch scoring and the daily risk
lists all get their reasons from ``model.predictor.Predictor``, which calls ``explain``
here, so a retention agent reads the same sentence wherever the score shows up.

How a reason is made, for one customer:

1. **Contributions.** The model splits its raw score (log-odds) into one share per
   feature (``model.attributions``: one tree traversal per row, the shares add up
   exactly to the raw score).
2. **Unusual in the risky direction.** A feature can back a reason only when its share
   is positive AND its value is unusual the way ``features.columns.RISKY_DIRECTION``
   declares risky: at least ``UNUSUAL_MARGIN`` beyond "the usual" (the median over the
   training rows, stored in the model spec by ``reference_statistics``), above it where
   more is worse (and above zero: a count of zero is never a reason), below it where less
   is worse (so never the best rating). A missing value (no recorded wait, a profile field
   the input lacks, a category the model never saw) is never a reason: it is not a fact
   about the customer. Profile columns have no declared direction: the model's push says
   which side is risky, and the value must differ from the usual by the margin.
3. **Families.** Shares are grouped per family of ``features.columns`` (waiting,
   repeating yourself, an unresolved case, transfers, satisfaction, ...): a person thinks
   "long waits", not "wait_p90_seconds_30d". A family is a reason when it raises the risk
   and some of its features back it; its strength is the smaller of the family's sum and
   the sum of its backing shares.
4. **Action or context.** Families the team can act on (``kind: "action"``) come first,
   strongest first, then those it cannot (``kind: "context"``: tenure, plan, segment and
   the other profile facts, ``features.columns.CONTEXT_FAMILIES``); up to
   ``REASONS_PER_CUSTOMER`` in all.
5. **Words.** Each reason is phrased from the family's strongest backing feature, with
   the customer's value and the usual: "waited 14 minutes on average in the last 30
   days, 3 times the usual".
6. **Next step.** ``next_step`` suggests what the retention agent should do about the
   first actionable reason; context never makes a next step.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.columns import (
    LESS_IS_RISKIER,
    MORE_IS_RISKIER,
    family_kind,
    risky_direction,
)

REASONS_PER_CUSTOMER = 3
# How far beyond the usual a value must be to be unusual: 10% of the usual (any amount
# when the usual is zero), so "3.1 minutes (usually 3 minutes)" is not a reason.
UNUSUAL_MARGIN = 0.1
_EITHER_WAY = 2  # a feature without a declared risky direction (``risky_direction``: None)
EXPLAIN_CHUNK_ROWS = 20_000  # bounds the (rows x features) work arrays of Explainer.explain
MAX_CACHED_TEXTS = 200_000
_CACHEABLE = (int, float, str, np.integer, np.floating)
_WINDOW = re.compile(r"^(?P<base>.+)_(?P<window>\d+)d$")

# (template, unit). ``{v}`` is the customer's value in the unit's words, ``{w}`` the window,
# ``{s}`` the plural ending of a counted noun.
# Units: times ("3 times"), count ("3"), duration ("14 minutes"), share ("40%"),
# score ("2.5 out of 5"), days ("12 days"), money ("80.92 a month"), ratio ("2.1 times"),
# a_month (a per-day rate as "2.1 times a month").
_WINDOWED_WORDS: dict[str, tuple[str, str]] = {
    "contacts": ("contacted service {v} in the last {w} days", "times"),
    "wait_mean_seconds": ("waited {v} on average in the last {w} days", "duration"),
    "wait_p90_seconds": ("waited over {v} in one contact in ten in the last {w} days", "duration"),
    "wait_max_seconds": ("waited up to {v} in the last {w} days", "duration"),
    "long_waits": ("had {v} long wait{s} in the last {w} days", "count"),
    "abandoned_contacts": ("gave up waiting {v} in the last {w} days", "times"),
    "repeat_contacts": (
        "had to contact service again about the same problem {v} in the last {w} days",
        "times",
    ),
    "channel_switches": (
        "had to switch channels on the same problem {v} in the last {w} days",
        "times",
    ),
    "multi_agent_cases": (
        "had {v} case{s} passed between several agents in the last {w} days",
        "count",
    ),
    "transfers": ("was transferred {v} in the last {w} days", "times"),
    "transferred_contacts": (
        "had {v} contact{s} passed on to someone else in the last {w} days",
        "count",
    ),
    "escalated_contacts": ("had {v} contact{s} escalated in the last {w} days", "count"),
    "cases_started": ("opened {v} new case{s} in the last {w} days", "count"),
    "first_contact_resolution_rate": (
        "had {v} of problems solved at the first contact in the last {w} days",
        "share",
    ),
    "csat_answers": ("gave {v} satisfaction rating{s} in the last {w} days", "count"),
    "csat_mean": ("rated service {v} on average in the last {w} days", "score"),
    "csat_min": ("rated a contact as low as {v} in the last {w} days", "score"),
    "bad_experiences": (
        "had {v} bad experience{s} (long wait, gave up, transfers, low rating or unresolved) "
        "in the last {w} days",
        "count",
    ),
}
_CHANNEL_CONTACTS = re.compile(r"^contacts_(?P<channel>[a-z]+)$")
_CHANNEL_WORDS = {
    "social": "on social media",
    "store": "in a store",
    "other": "through another channel",
}  # the others read "by phone", "by chat", "by email"

_SNAPSHOT_WORDS: dict[str, tuple[str, str]] = {
    "open_cases": ("has {v} case{s} still open", "count"),
    "open_escalated_cases": ("has {v} escalated case{s} still open", "count"),
    "oldest_open_case_age_days": ("has had a case open for {v}", "days"),
    "csat_last": ("rated the last contact {v}", "score"),
    "days_since_last_contact": ("last contacted service {v} ago", "days"),
    "days_since_last_bad_experience": ("had a bad experience {v} ago", "days"),
    "contacts_trend_per_day": ("contacts service {v} more than in the months before", "a_month"),
    "contacts_trend_ratio": ("contacts service {v} as often as in the months before", "ratio"),
    "bad_experiences_trend_per_day": (
        "has bad experiences {v} more than in the months before",
        "a_month",
    ),
    "bad_experiences_trend_ratio": (
        "has bad experiences {v} as often as in the months before",
        "ratio",
    ),
    "tenure_days": ("has been a customer for {v}", "days"),
    "monthly_revenue": ("pays {v}", "money"),
}

# When a value is missing (NaN), what that means in words.
_MISSING_WORDS: dict[str, str] = {
    "wait_mean_seconds": "had no recorded wait in the last {w} days",
    "wait_p90_seconds": "had no recorded wait in the last {w} days",
    "wait_max_seconds": "had no recorded wait in the last {w} days",
    "first_contact_resolution_rate": "had no new case with a known outcome in the last {w} days",
    "csat_mean": "gave no satisfaction rating in the last {w} days",
    "csat_min": "gave no satisfaction rating in the last {w} days",
    "oldest_open_case_age_days": "has no open case",
    "csat_last": "never gave a satisfaction rating",
    "days_since_last_contact": "has never contacted service",
    "days_since_last_bad_experience": "never had a bad experience",
    "monthly_revenue": "has no recorded revenue",
}

# What the retention agent can do about each family, first reason first.
NEXT_STEPS: dict[str, str] = {
    "waiting": "Apologise for the waiting and give the customer a direct line or a "
    "call-back slot so they do not queue again.",
    "repeating yourself": "Take ownership of the problem yourself: read the case history "
    "aloud so the customer does not have to explain it again, and be their one contact.",
    "unresolved case": "Look up the open case, tell the customer exactly where it stands and "
    "commit to a date for the fix.",
    "transfers": "Solve it on this call without another transfer; if a specialist is needed, "
    "book the call-back yourself.",
    "satisfaction": "Ask what went wrong in the recent contacts and put it right on this call.",
    "resolution": "Make sure the problem is solved on this contact and confirm it with the "
    "customer before ending.",
    "bad experiences": "Acknowledge the recent bad experiences and offer a goodwill gesture.",
    "contact volume": "Find the underlying problem behind the repeated contacts and fix it.",
    "recency": "Follow up on the recent contact and check the customer is now satisfied.",
    "trend": "Contacts are rising: find out what changed for the customer and fix it.",
}
LOW_RISK_STEP = "No retention step needed: serve the customer as usual."
# No actionable reason (none at all, or only context such as tenure or plan).
DEFAULT_STEP = (
    "No service problem stands out: check in with the customer and ask whether the "
    "service still meets their needs."
)


def family_code(family: str) -> str:
    """A stable machine-readable code for a family: ``unresolved case`` -> ``unresolved_case``."""
    return re.sub(r"[^a-z0-9]+", "_", family.lower()).strip("_") or "other"


# --------------------------------------------------------------------------- reference


def reference_statistics(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The usual values of each numeric feature: median and p90 over the given rows.

    Called on the training rows at training time and stored with the model, so that
    reasons can say "3 times the usual" in the terms of the customers the model learnt
    from. Missing values are ignored; a column without any value is left out.
    """
    reference: dict[str, dict[str, float]] = {}
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            values.dtype
        ):
            continue
        array = values.to_numpy(dtype="float64", na_value=np.nan)
        array = array[np.isfinite(array)]
        if len(array) == 0:
            continue
        median, p90 = np.quantile(array, [0.5, 0.9])
        reference[column] = {"median": float(median), "p90": float(p90)}
    return reference


# --------------------------------------------------------------------------- words


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"


def _times(value: float) -> str:
    if value == 1:
        return "once"
    if value == 2:
        return "twice"
    return f"{_number(value)} times"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{_number(round(seconds))} seconds"
    if seconds < 90 * 60:
        return f"{_number(round(seconds / 60))} minutes"
    if seconds < 36 * 3600:
        return f"{_number(round(seconds / 3600, 1))} hours"
    return f"{_number(round(seconds / 86400, 1))} days"


def _days(days: float) -> str:
    if days == 1:
        return "1 day"
    if days < 60:
        return f"{_number(round(days))} days"
    if days < 730:
        return f"{_number(round(days / 30.44))} months"
    return f"{_number(round(days / 365.25, 1))} years"


def show(value: float, unit: str) -> str:
    """A value in the words of its unit."""
    if unit == "times":
        return _times(value)
    if unit == "duration":
        return _duration(value)
    if unit == "share":
        return f"{value:.0%}"
    if unit == "score":
        return f"{_number(round(value, 1))} out of 5"
    if unit == "days":
        return _days(value)
    if unit == "money":
        return f"{value:,.2f} a month"
    if unit == "ratio":
        return f"{_number(round(value, 1))} times"
    if unit == "a_month":
        return f"{_times(round(value * 30, 1))} a month"
    return _number(round(value, 1) if abs(value) < 100 else value)


def _compare(value: float, usual: float | None, unit: str, contribution_positive: bool) -> str:
    """ ", 3 times the usual" when far above a positive usual, else ", usually X"."""
    if usual is None or not math.isfinite(usual) or unit in ("ratio", "a_month"):
        return ""  # ratio, a_month: the words compare with the customer's own past already
    if unit not in ("share", "score", "ratio") and usual > 0 and value >= 1.5 * usual:
        ratio = value / usual
        return (
            f", {_number(round(ratio)) if ratio >= 2.5 else _number(round(ratio, 1))} "
            "times the usual"
        )
    if abs(value - usual) < 1e-9:
        return ", as usual" if contribution_positive else ""
    shown = show(usual, unit)
    if unit == "times" and usual == 0:
        shown = "never"
    elif unit == "count" and usual == 0:
        shown = "none"
    return f" (usually {shown})"


def describe(
    column: str, value: Any, reference: Mapping[str, Mapping[str, float]] | None = None
) -> str:
    """One feature's value in plain words, compared with the usual value when known.

    ``describe("wait_mean_seconds_30d", 840.0, {"wait_mean_seconds_30d": {"median": 280}})``
    -> ``"waited 14 minutes on average in the last 30 days, 3 times the usual"``.
    """
    usual = (reference or {}).get(column, {}).get("median")
    spec = _words_of(column)
    if spec is None:
        return _describe_other(column, value, usual)
    template, unit, missing, window = spec
    number = _as_float(value)
    if number is None:
        return missing
    if unit == "days" and "{v} ago" in template and round(number) == 0:
        template = template.replace("{v} ago", "today")  # not "0 days ago"
    # {s} ends a counted noun: "1 long wait", "3 long waits".
    text = template.format(v=show(number, unit), w=window, s="" if number == 1 else "s")
    return text + _compare(number, usual, unit, True)


@functools.lru_cache(maxsize=4096)
def _words_of(column: str) -> tuple[str, str, str, str | None] | None:
    """(template, unit, the words when missing, window) of a column; None: a profile column."""
    base, window = column, None
    match = _WINDOW.match(column)
    if match and (match["base"] in _WINDOWED_WORDS or _CHANNEL_CONTACTS.match(match["base"])):
        base, window = match["base"], match["window"]
    channel = _CHANNEL_CONTACTS.match(base) if window else None
    if window and base in _WINDOWED_WORDS:
        template, unit = _WINDOWED_WORDS[base]
    elif channel:
        how = _CHANNEL_WORDS.get(channel["channel"], f"by {channel['channel']}")
        template = f"contacted service {how} {{v}} in the last {{w}} days"
        unit = "times"
    elif base in _SNAPSHOT_WORDS:
        template, unit = _SNAPSHOT_WORDS[base]
    else:
        return None
    missing = _MISSING_WORDS.get(
        base,
        f"has no value for {base.replace('_', ' ')}" + (" in the last {w} days" if window else ""),
    ).format(w=window)
    return template, unit, missing, window


def _describe_other(column: str, value: Any, usual: float | None) -> str:
    name = column.removeprefix("profile_").replace("_", " ")
    number = _as_float(value)
    if number is None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return f"no {name} on record"  # words for a gap, never a fact about the customer
        return f"{name} is {value}"
    text = f"{name} is {_number(number)}"
    if usual is not None and math.isfinite(usual) and abs(usual - number) > 1e-9:
        text += f" (usually {_number(usual)})"
    return text


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


THIN_HISTORY_CODE = "thin_history"


def thin_history_reason(tenure_days: float) -> dict[str, Any]:
    """The context line of a customer with little history (``features.build.thin_history``),
    shaped as a reason of kind context: it follows the actions and says that the numbers
    behind the score are few. Its family, "little history", is context and has no next
    step (``next_step`` skips it)."""
    days = max(int(tenure_days), 0)
    joined = "joined today" if days == 0 else f"joined {days} day{'s' if days != 1 else ''} ago"
    return {
        "code": THIN_HISTORY_CODE,
        "family": "little history",
        "kind": "context",
        "feature": "tenure_days",
        "text": f"{joined}: little history yet",
        "value": float(days),
        "usual": None,
        "contribution": 0.0,
    }


def next_step(families: Sequence[str], risk_band: str | None = None) -> str:
    """What the retention agent should do, from the reasons' families (first one first).

    Only families the team can act on lead to a step (``features.columns.family_kind``);
    context such as tenure or plan never does."""
    if risk_band == "low":
        return LOW_RISK_STEP
    for family in families:
        if family_kind(family) == "action" and family in NEXT_STEPS:
            return NEXT_STEPS[family]
    return DEFAULT_STEP


# --------------------------------------------------------------------------- reasons


@dataclass(eq=False)
class Explainer:
    """Turns per-feature contributions into the reasons of each row, family by family.

    Not frozen: it owns a cache of texts by (feature, value), filled as rows are explained
    (counts and days repeat across customers and requests); the rest is set once."""

    feature_names: tuple[str, ...]
    families: tuple[str, ...]  # family of each feature
    reference: Mapping[str, Mapping[str, float]]
    directions: tuple[int | None, ...] = ()  # risky direction of each feature
    categories: Mapping[str, Sequence[str]] = field(default_factory=dict)
    _family_names: list[str] = field(init=False, repr=False)
    _family_codes: list[str] = field(init=False, repr=False)
    _family_kinds: list[str] = field(init=False, repr=False)
    _kind_rank: np.ndarray = field(init=False, repr=False)
    _usual: dict[str, float | None] = field(init=False, repr=False)
    _members: list[np.ndarray] = field(init=False, repr=False)
    _family_of: np.ndarray = field(init=False, repr=False)  # family index of each feature
    _known: dict[str, frozenset[str]] = field(init=False, repr=False)
    _direction: np.ndarray = field(init=False, repr=False)  # int8; _EITHER_WAY for None
    _usual_array: np.ndarray = field(init=False, repr=False)  # medians, NaN when unknown
    _texts: dict[tuple[str, Any], str] = field(init=False, repr=False)

    @classmethod
    def build(
        cls,
        feature_names: Sequence[str],
        families: Mapping[str, str],
        reference: Mapping[str, Mapping[str, float]] | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
        directions: Mapping[str, int | None] | None = None,
    ) -> Explainer:
        """``categories``: the known categories of each categorical feature (a value
        outside them is missing); ``directions``: risky directions, by default
        ``features.columns.risky_direction`` of each name."""
        directions = directions or {}
        return cls(
            tuple(feature_names),
            tuple(families.get(c, "profile") for c in feature_names),
            reference or {},
            tuple(directions.get(c, risky_direction(c)) for c in feature_names),
            dict(categories or {}),
        )

    def __post_init__(self) -> None:
        if not self.directions:
            self.directions = tuple(risky_direction(c) for c in self.feature_names)
        self._direction = np.array(
            [_EITHER_WAY if d is None else d for d in self.directions], dtype=np.int8
        )
        self._usual_array = np.array(
            [self.reference.get(c, {}).get("median", np.nan) for c in self.feature_names],
            dtype=np.float64,
        )
        names = sorted(set(self.families))
        families = np.array(self.families, dtype=object)
        self._family_names = names
        self._family_codes = [family_code(name) for name in names]
        self._family_kinds = [family_kind(name) for name in names]
        # Sort key of a family's kind: what the team can act on first, then context.
        self._kind_rank = np.array([k != "action" for k in self._family_kinds], dtype=np.int8)
        self._usual = {
            name: self.reference.get(name, {}).get("median") for name in self.feature_names
        }
        self._members = [np.flatnonzero(families == name) for name in names]
        self._family_of = np.array([names.index(f) for f in self.families], dtype=np.intp)
        self._known = {c: frozenset(map(str, v)) for c, v in self.categories.items()}
        self._texts = {}

    def explain(
        self,
        contributions: np.ndarray,
        values: pd.DataFrame | Callable[[str], np.ndarray],
        top: int = REASONS_PER_CUSTOMER,
    ) -> list[list[dict[str, Any]]]:
        """Up to ``top`` reasons of each row: the families that raise its risk with values
        unusual in the risky direction, those the team can act on first (see the module).

        ``contributions`` (rows, features) in the order of ``feature_names``; ``values``
        holds the same rows' feature values (any column order, at least these columns), or
        gives a column's values as an array (``FeatureArrays.column``: no DataFrame).
        Each reason: ``code`` (family code), ``family``, ``kind`` ("action" or "context"),
        ``feature`` (its strongest backing feature), ``text`` (plain words with the
        customer's numbers), ``value``, ``usual`` and ``contribution`` (log-odds the
        family's unusual values add).
        """
        contributions = np.asarray(contributions, dtype=np.float64)
        result: list[list[dict[str, Any]]] = []
        for start in range(0, len(contributions), EXPLAIN_CHUNK_ROWS):
            stop = start + EXPLAIN_CHUNK_ROWS
            if isinstance(values, pd.DataFrame):
                part = values.iloc[start:stop]
                column = functools.partial(_frame_column, part)
            else:
                column = functools.partial(_array_column, values, slice(start, stop))
            result += self._explain_chunk(contributions[start:stop], column, top)
        return result

    def _unusual(self, features: Sequence[int], values: np.ndarray) -> np.ndarray:
        """Which values of numeric ``features`` (rows x len(features), NaN when missing)
        are unusual in their risky directions; missing: never. Without a declared
        direction, far enough from the usual on either side (the caller keeps those whose
        contribution is positive); without a usual, only a count above zero."""
        direction = self._direction[features]
        usual = self._usual_array[features]
        margin = UNUSUAL_MARGIN * np.abs(usual)
        known = ~np.isnan(usual)
        with np.errstate(invalid="ignore"):  # NaN compares False: missing is never a reason
            more = (values > 0) & (~known | (values - usual > margin))
            less = usual - values > margin
            either = known & (np.abs(values - usual) > margin)
        return np.where(
            direction == MORE_IS_RISKIER,
            more,
            np.where(direction == LESS_IS_RISKIER, less, (direction == _EITHER_WAY) & either),
        )

    def _known_category(self, column: str, values: np.ndarray) -> np.ndarray:
        """A category the model knows; missing or never seen: never a reason."""
        known = self._known[column]
        return np.fromiter(
            (isinstance(v, str) and v in known for v in values), dtype=bool, count=len(values)
        )

    def _explain_chunk(
        self, contributions: np.ndarray, column_of: Callable[[str], np.ndarray], top: int
    ) -> list[list[dict[str, Any]]]:
        names, members, codes, kinds = (
            self._family_names,
            self._members,
            self._family_codes,
            self._family_kinds,
        )
        rows = len(contributions)
        # Whole-chunk array work first (a per-row loop of numpy calls cost ~60 us a row).
        # Family sums row by row over C-ordered rows (neither a matrix product nor the
        # column-ordered copy fancy indexing makes: their summation order depends on the
        # number of rows), so that a customer alone gets the very numbers of a batch.
        totals = np.empty((rows, len(names)))
        for f, member in enumerate(members):
            totals[:, f] = np.ascontiguousarray(contributions[:, member]).sum(axis=1)
        # Only a feature that raises the risk, in a family that does, can back a reason:
        # only those features' values are read.
        candidate = (contributions > 0) & (totals[:, self._family_of] > 0)
        pushing = np.flatnonzero(candidate.any(axis=0)).tolist()
        columns = {self.feature_names[j]: column_of(self.feature_names[j]) for j in pushing}
        unusual = np.zeros_like(candidate)
        numeric = [j for j in pushing if self.feature_names[j] not in self._known]
        if numeric:
            values = np.empty((rows, len(numeric)))
            for k, j in enumerate(numeric):
                values[:, k] = _floats(columns[self.feature_names[j]])
            unusual[:, numeric] = self._unusual(numeric, values)
        for j in pushing:
            name = self.feature_names[j]
            if name in self._known:
                unusual[:, j] = self._known_category(name, columns[name])
        backing = np.where(candidate & unusual, contributions, 0.0)  # shares of reasons
        strength = np.empty((rows, len(names)))
        driver = np.empty((rows, len(names)), dtype=np.intp)
        for f, member in enumerate(members):
            backs = np.ascontiguousarray(backing[:, member])
            strength[:, f] = np.minimum(totals[:, f], backs.sum(axis=1))
            driver[:, f] = member[backs.argmax(axis=1)]
        # Actions first, then context; strongest first within each; non-reasons last.
        by_strength = np.argsort(-strength, axis=1, kind="stable")
        rank = np.where(
            np.take_along_axis(strength, by_strength, axis=1) > 0,
            self._kind_rank[by_strength],
            2,
        )
        order = np.take_along_axis(by_strength, np.argsort(rank, axis=1, kind="stable"), axis=1)
        order = order[:, :top]
        texts = self._texts
        if len(texts) > MAX_CACHED_TEXTS:
            texts.clear()
        usual_of = self._usual
        # Python lists: indexing them costs a fraction of indexing numpy arrays per item.
        strengths, drivers_of = strength.tolist(), driver.tolist()
        result: list[list[dict[str, Any]]] = []
        for row, families in enumerate(order.tolist()):
            drivers: list[dict[str, Any]] = []
            for f in families:
                total = strengths[row][f]
                if total <= 0:
                    break
                column = self.feature_names[drivers_of[row][f]]
                value = columns[column][row]
                if isinstance(value, _CACHEABLE):
                    key = (column, value)
                    text = texts.get(key)
                    if text is None:
                        text = texts[key] = describe(column, value, self.reference)
                else:
                    text = describe(column, value, self.reference)
                drivers.append(
                    {
                        "code": codes[f],
                        "family": names[f],
                        "kind": kinds[f],
                        "feature": column,
                        "text": text,
                        "value": _json_value(value),
                        "usual": usual_of[column],
                        "contribution": total,
                    }
                )
            result.append(drivers)
        return result


def _floats(values: Any) -> np.ndarray:
    """A column's values as floats, NaN where missing or not a number."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )


def _frame_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy()


def _array_column(column: Callable[[str], np.ndarray], rows: slice, name: str) -> np.ndarray:
    return column(name)[rows]


def _json_value(value: Any) -> float | str | None:
    number = _as_float(value)
    if number is not None:
        return number
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
