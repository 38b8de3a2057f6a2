"""The data contract (v1): the input tables outside users write to.

The text of the contract lives in ``shared/contract.md`` (v1.1 adds the optional
``retention_contacts`` table, whose ``group`` and ``outcome`` take the values of
``GROUPS`` and ``OUTCOMES``); this module is its one
machine-readable statement. Column names, kinds and the allowed values are
declared once here and used by validation, features, the simulator and serving.

After validation (``churnml.validation``) the tables have these pandas dtypes,
whatever file format they came from:

* ``string`` columns: pandas' default text dtype (``str``), missing as NaN;
* ``date`` columns: ``datetime64[ns]`` at midnight, missing as NaT;
* ``timestamp`` columns: ``datetime64[ns]`` in UTC without a zone;
* ``number``, ``integer``, ``csat`` and ``boolean`` columns: ``float64``, missing as NaN
  (booleans as 1.0 / 0.0), so that feature code can work on plain numpy arrays.

Every optional column of the contract is present after validation, filled with
missing values when the input did not have it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTRACT_VERSION = "1"

Kind = Literal["string", "date", "timestamp", "number", "integer", "boolean"]

CHANNELS: tuple[str, ...] = ("phone", "chat", "email", "social", "store", "other")
STATUSES: tuple[str, ...] = ("resolved", "pending", "escalated", "unresolved")
GROUPS: tuple[str, ...] = ("treated", "control")
OUTCOMES: tuple[str, ...] = ("reached", "not_reached", "accepted_offer", "declined")
CSAT_RANGE: tuple[int, int] = (1, 5)
BOOLEAN_WORDS: dict[str, float] = {
    "true": 1.0,
    "True": 1.0,
    "1": 1.0,
    "false": 0.0,
    "False": 0.0,
    "0": 0.0,
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool
    meaning: str
    non_negative: bool = False
    allowed: tuple[str, ...] | None = None
    value_range: tuple[int, int] | None = None


CUSTOMER_COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "string", True, "unique key"),
    Column("signup_date", "date", True, "customer since"),
    Column("churned_at", "date", False, "the day the customer left; empty while still a customer"),
    Column("segment", "string", False, "e.g. consumer, business"),
    Column("plan", "string", False, "product or tariff"),
    Column("monthly_revenue", "number", False, "revenue per month", non_negative=True),
)

INTERACTION_COLUMNS: tuple[Column, ...] = (
    Column("interaction_id", "string", True, "unique key"),
    Column("customer_id", "string", True, "must exist in customers"),
    Column("started_at", "timestamp", True, "when the contact started"),
    Column("channel", "string", True, "contact channel", allowed=CHANNELS),
    Column("case_id", "string", False, "contacts about the same problem share it"),
    Column("topic", "string", False, "e.g. billing, technical"),
    Column("wait_seconds", "number", False, "time before an agent answered", non_negative=True),
    Column("handle_seconds", "number", False, "time an agent spent on it", non_negative=True),
    Column("agent_id", "string", False, "who handled it; empty when nobody did"),
    Column("transfers", "integer", False, "times passed to another agent", non_negative=True),
    Column("abandoned", "boolean", False, "the customer gave up before being served"),
    Column(
        "status", "string", False, "status of the case when this contact ended", allowed=STATUSES
    ),
    Column("csat", "integer", False, "satisfaction answer, 1-5", value_range=CSAT_RANGE),
)

RETENTION_CONTACT_COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "string", True, "must exist in customers"),
    Column("contacted_at", "date", True, "the day the customer was picked (and contacted)"),
    Column(
        "group",
        "string",
        False,
        "treated (the default when empty) or control (picked, deliberately not contacted)",
        allowed=GROUPS,
    ),
    Column("outcome", "string", False, "what the contact gave", allowed=OUTCOMES),
    Column("channel", "string", False, "how the team reached out", allowed=CHANNELS),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "customers": CUSTOMER_COLUMNS,
    "interactions": INTERACTION_COLUMNS,
    "retention_contacts": RETENTION_CONTACT_COLUMNS,
}

DEFAULT_HORIZON_DAYS = 30  # the contract's default label horizon H
CUSTOMER_ID = "customer_id"
INTERACTION_ID = "interaction_id"


def column_names(table: str) -> list[str]:
    return [column.name for column in TABLES[table]]


def required_columns(table: str) -> list[str]:
    return [column.name for column in TABLES[table] if column.required]
