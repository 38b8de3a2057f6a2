"""The feature columns, their order and their families, declared once.

A windowed feature is named ``<base>_<w>d`` for each window w of the settings
(``wait_p90_seconds_30d``); the others carry their unit in the name
(``days_since_last_contact``). ``feature_columns(settings, profile)`` lists the
columns ``build_features`` returns, in order; ``feature_family(column)`` names the
family the scoring service groups a column's contribution under.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from churnml.contract import CHANNELS
from features.settings import FeatureSettings

PROFILE_PREFIX = "profile_"

# Families, with the words a reason can start from.
FAMILY_DESCRIPTIONS: dict[str, str] = {
    "contact volume": "how often the customer contacted service",
    "waiting": "long waits and contacts abandoned while waiting",
    "repeating yourself": "contacting again about the same problem, across channels or agents",
    "unresolved case": "cases still open or escalated",
    "transfers": "being passed between agents or teams",
    "satisfaction": "the customer's own satisfaction answers",
    "resolution": "problems solved at the first contact",
    "bad experiences": "contacts with at least one bad sign",
    "recency": "how recently the customer was in contact or had a bad experience",
    "trend": "contacts and bad experiences rising or falling",
    "profile": "tenure, plan, segment, revenue and other account facts",
}

# What the retention team cannot act on: facts of the account (tenure, plan, segment,
# revenue and every other profile column, e.g. contract type, region, payment method).
# A reason from these families is shown as context; next steps follow only from the
# others (waits, repeats, open cases, transfers, satisfaction, ...), which the team can act on.
# "little history" is the context line of a customer who joined recently
# (``features.reasons.thin_history_reason``).
CONTEXT_FAMILIES: frozenset[str] = frozenset({"profile", "little history"})

# Windowed features: base name -> family, in output order (per window, bases in this order).
WINDOWED_FEATURES: dict[str, str] = {
    "contacts": "contact volume",
    **{f"contacts_{channel}": "contact volume" for channel in CHANNELS},
    "wait_mean_seconds": "waiting",
    "wait_p90_seconds": "waiting",
    "wait_max_seconds": "waiting",
    "long_waits": "waiting",
    "abandoned_contacts": "waiting",
    "repeat_contacts": "repeating yourself",
    "channel_switches": "repeating yourself",
    "multi_agent_cases": "repeating yourself",
    "transfers": "transfers",
    "transferred_contacts": "transfers",
    "escalated_contacts": "unresolved case",
    "cases_started": "resolution",
    "first_contact_resolution_rate": "resolution",
    "csat_answers": "satisfaction",
    "csat_mean": "satisfaction",
    "csat_min": "satisfaction",
    "bad_experiences": "bad experiences",
}

# Features computed once as of the day, in output order.
SNAPSHOT_FEATURES: dict[str, str] = {
    "open_cases": "unresolved case",
    "open_escalated_cases": "unresolved case",
    "oldest_open_case_age_days": "unresolved case",
    "csat_last": "satisfaction",
    "days_since_last_contact": "recency",
    "days_since_last_bad_experience": "recency",
    "contacts_trend_per_day": "trend",
    "contacts_trend_ratio": "trend",
    "bad_experiences_trend_per_day": "trend",
    "bad_experiences_trend_ratio": "trend",
    "tenure_days": "profile",
    "monthly_revenue": "profile",
}

# Features whose direction the domain knows, whatever a sample says: more of them is never
# safer (RISK_RISING) or never riskier (RISK_FALLING). Windowed bases count for every window
# (``long_waits`` covers ``long_waits_7d`` ...). Training constrains the trees to these
# directions (``training.learners.monotone_params``), so that another open case, a longer
# wait or one more abandoned call never lowers a customer's risk. Left out on purpose:
# contact counts, cases started and recency (a contact can be a question, not a problem),
# the contact trend, tenure and the profile, whose direction depends on the business.
RISK_RISING: frozenset[str] = frozenset(
    {
        "wait_mean_seconds",
        "wait_p90_seconds",
        "wait_max_seconds",
        "long_waits",
        "abandoned_contacts",
        "repeat_contacts",
        "channel_switches",
        "multi_agent_cases",
        "transfers",
        "transferred_contacts",
        "escalated_contacts",
        "bad_experiences",
        "open_cases",
        "open_escalated_cases",
        "oldest_open_case_age_days",
        "bad_experiences_trend_per_day",
        "bad_experiences_trend_ratio",
    }
)
RISK_FALLING: frozenset[str] = frozenset(
    {
        "first_contact_resolution_rate",
        "csat_mean",
        "csat_min",
        "csat_last",
        "days_since_last_bad_experience",
    }
)
# The monotone sets above are a strict part of RISKY_DIRECTION below (a test holds it):
# the reasons may call a rise in contacts unusual, but the trees are not forced on it.
# Which way a feature's value is risky, per base name (window suffix removed): a reason
# is shown only when the feature raises the risk AND its value is unusual this way
# (``features.reasons``). MORE_IS_RISKIER: above the usual (and above zero: a count of
# zero is never a reason); LESS_IS_RISKIER: below the usual (so never the best rating or
# a full resolution rate); NO_RISKY_DIRECTION: the value alone says nothing of the
# customer's mood (how many ratings they gave), never a reason. Profile columns are not
# here: for them the model's push says which side is risky (``risky_direction``: None).
MORE_IS_RISKIER, LESS_IS_RISKIER, NO_RISKY_DIRECTION = 1, -1, 0
RISKY_DIRECTION: dict[str, int] = {
    **dict.fromkeys(
        [
            "contacts",
            *(f"contacts_{channel}" for channel in CHANNELS),
            "wait_mean_seconds",
            "wait_p90_seconds",
            "wait_max_seconds",
            "long_waits",
            "abandoned_contacts",
            "repeat_contacts",
            "channel_switches",
            "multi_agent_cases",
            "transfers",
            "transferred_contacts",
            "escalated_contacts",
            "cases_started",
            "bad_experiences",
            "open_cases",
            "open_escalated_cases",
            "oldest_open_case_age_days",
            "contacts_trend_per_day",
            "contacts_trend_ratio",
            "bad_experiences_trend_per_day",
            "bad_experiences_trend_ratio",
        ],
        MORE_IS_RISKIER,
    ),
    **dict.fromkeys(
        [
            "first_contact_resolution_rate",
            "csat_mean",
            "csat_min",
            "csat_last",
            # A contact or a bad experience just now is the moment the customer may leave.
            "days_since_last_contact",
            "days_since_last_bad_experience",
            "tenure_days",
        ],
        LESS_IS_RISKIER,
    ),
    "csat_answers": NO_RISKY_DIRECTION,
}

# Categorical profile features from the contract (pandas ``category`` dtype).
CATEGORICAL_FEATURES: tuple[str, ...] = ("segment", "plan")

FEATURE_FAMILIES: dict[str, str] = {
    **WINDOWED_FEATURES,
    **SNAPSHOT_FEATURES,
    **dict.fromkeys(CATEGORICAL_FEATURES, "profile"),
    PROFILE_PREFIX: "profile",
}
"""Base feature name (window suffix removed) or the ``profile_`` prefix -> family."""

_WINDOW_SUFFIX = re.compile(r"_(\d+)d$")


def windowed_columns(settings: FeatureSettings) -> list[str]:
    return [f"{base}_{w}d" for w in settings.windows for base in WINDOWED_FEATURES]


def feature_columns(settings: FeatureSettings, profile: Iterable[str] = ()) -> list[str]:
    """The columns of ``build_features``, in order, for the given extra profile columns.

    ``profile`` are the customers table's extra column names (without prefix); with
    ``settings.profile_columns`` pinned, pass those.
    """
    return [
        *windowed_columns(settings),
        *SNAPSHOT_FEATURES,
        *CATEGORICAL_FEATURES,
        *(PROFILE_PREFIX + name for name in profile),
    ]


def feature_family(column: str) -> str:
    """The family of a feature column, e.g. ``wait_p90_seconds_30d`` -> ``waiting``."""
    if column.startswith(PROFILE_PREFIX):
        return "profile"
    if column in FEATURE_FAMILIES:
        return FEATURE_FAMILIES[column]
    base = _WINDOW_SUFFIX.sub("", column)
    if base in WINDOWED_FEATURES and base != column:
        return WINDOWED_FEATURES[base]
    raise KeyError(f"{column!r} is not a churnml feature column")


def risk_direction(column: str) -> int:
    """1 when more of ``column`` is never safer (``RISK_RISING``), -1 when it is never
    riskier (``RISK_FALLING``), 0 when the data decide; any other name (a profile or a
    customer-table column) is 0."""
    base = _WINDOW_SUFFIX.sub("", column)
    windowed = base != column and base in WINDOWED_FEATURES
    for name in (base, column) if windowed else (column,):
        if name in RISK_RISING:
            return 1
        if name in RISK_FALLING:
            return -1
    return 0


def feature_families(columns: Iterable[str]) -> dict[str, str]:
    """Column -> family for every given feature column."""
    return {column: feature_family(column) for column in columns}


def risky_direction(column: str) -> int | None:
    """The risky direction of a feature column (``RISKY_DIRECTION``); None for profile
    columns and columns churnml does not build (a customer table's), whose risky side the
    model's contribution tells."""
    if column in RISKY_DIRECTION:
        return RISKY_DIRECTION[column]
    base = _WINDOW_SUFFIX.sub("", column)
    if base != column and base in WINDOWED_FEATURES:
        return RISKY_DIRECTION.get(base)
    return None


def family_kind(family: str) -> str:
    """``"context"`` for a family the team cannot act on (``CONTEXT_FAMILIES``), else
    ``"action"``."""
    return "context" if family in CONTEXT_FAMILIES else "action"
