"""Checking the input tables against the contract, and the policy for each rule.

Every rule of ``shared/contract.md`` is checked on every read. ``churnml validate``
reports every broken rule once; every other command applies the rule's policy:

=================================================  ==========================
rule                                               policy
=================================================  ==========================
required columns present                           stop
at least one customer                              stop
customer_id unique                                 stop
values parse as their type (numbers, whole         set the row aside
numbers, booleans, dates, timestamps of years
1678-2261, UTF-8 text)
a column holds one value a row (not a Parquet      stop
list, struct or map)
required values present (ids, signup_date,         set the row aside
started_at, channel)
waits, handle times, revenue, transfers >= 0       set the row aside
channel and status values known                    set the row aside
csat between 1 and 5                               set the row aside
interaction_id unique                              set later copies aside
churned_at not before signup_date                  set the customer aside
every interaction's customer exists                set the row aside
no contact before signup or after churned_at       set the row aside
customer set aside                                 set their interactions aside
                                                   and retention contacts aside
retention_contacts (optional table):
required columns present                           stop
customer_id and contacted_at present, a date       set the row aside
group, outcome and channel values known            set the row aside
a control row's promise: no treated row for the    set the control row aside
customer from contacted_at to the horizon after
(customer, contacted_at, group) once               set later copies aside
every contact's customer exists                    set the row aside
no contact before signup or after churned_at       set the row aside
=================================================  ==========================

An empty ``group`` means ``treated`` (the contract's default) and is filled in as such.

"Set aside" writes the row, its row number and the reason to a quarantine file
(CSV under ``CHURNML_HOME/quarantine/``), and the command reports the count and
the file. ``--strict`` turns every rule into "stop". Row numbers count data rows
from 1 (row 1 is the line after a CSV header; in a folder of Parquet files rows
are counted through the files in name order).

Each rule and each step of the policy is a public function, so that the Dask engine can
apply them piece by piece and partition by partition, and the service check a request by
the same predicates: ``typed_table`` (types and cell rules), ``check_unique``,
``check_customer_timeline`` and ``check_relations`` (rules across rows, over the array
predicates ``first_copies``, ``churned_before_signup``, ``contact_before_signup``,
``contact_after_churn``), then ``stop_if_needed`` (the stop decision), ``row_reasons`` and
``give_reason`` (the first reason wins), ``set_orphans_aside`` (a customer set aside takes
its interactions with it) and ``set_aside`` (the quarantine file and its report line).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnml import contract
from churnml.contract import Column
from churnml.errors import ContractError
from churnml.io import TEXT, read_table, write_table
from churnml.progress import counted

Policy = Literal["stop", "set_aside"]
EXAMPLES = 3
ID_COLUMNS = {
    "customers": contract.CUSTOMER_ID,
    "interactions": contract.INTERACTION_ID,
    "retention_contacts": contract.CUSTOMER_ID,
}
ROW_NOUN = {
    "customers": "customer",
    "interactions": "interaction",
    "retention_contacts": "customer",
}
DEFAULT_HORIZON_DAYS = contract.DEFAULT_HORIZON_DAYS  # how long a control row's promise runs


@dataclass(frozen=True)
class Breach:
    """One broken rule: which rows break it, and what was expected."""

    source: str
    table: str
    rule: str
    problem: str
    expected: str
    policy: Policy
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ids: tuple[str, ...] = ()
    values: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return int(len(self.rows))

    @property
    def reason(self) -> str:
        """What a row set aside for this breach is told in its quarantine file."""
        return f"{self.problem}; {self.expected}"

    def message(self) -> str:
        if self.count == 0:
            return f"{self.source}: {self.problem}; {self.expected}"
        noun = "row has" if self.count == 1 else "rows have"
        examples = []
        for index, row in enumerate(self.rows[:EXAMPLES]):
            example = f"row {int(row) + 1}"
            if index < len(self.ids) and self.ids[index]:
                example += f", {ROW_NOUN[self.table]} {self.ids[index]}"
            if index < len(self.values) and self.values[index]:
                example += f", value {self.values[index]!r}"
            examples.append(example)
        first = "; ".join(examples)
        more = "" if self.count <= EXAMPLES else "; ..."
        return (
            f"{self.source}: {self.count} {noun} {self.problem} "
            f"(first: {first}{more}); {self.expected}"
        )


@dataclass
class CheckResult:
    """Typed tables (every row, in file order) and the rules they break."""

    customers: pd.DataFrame
    interactions: pd.DataFrame
    breaches: list[Breach]
    retention_contacts: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return not self.breaches


@dataclass(frozen=True)
class Tables:
    """Validated tables, ready for features, with what was set aside."""

    customers: pd.DataFrame
    interactions: pd.DataFrame
    set_aside: dict[str, int]
    quarantine_files: tuple[Path, ...] = ()
    retention_contacts: pd.DataFrame | None = None


def read_and_check(
    customers_path: Path | str,
    interactions_path: Path | str,
    retention_contacts_path: Path | str | None = None,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> CheckResult:
    """Read the files and check every rule; InputError when a file cannot be read.

    ``retention_contacts_path`` is the optional retention team's table; ``horizon_days``
    is how long a ``control`` row promises that nobody called the customer."""
    customers_path, interactions_path = Path(customers_path), Path(interactions_path)
    customers_raw = read_table(customers_path, "customers")
    interactions_raw = read_table(interactions_path, "interactions")
    contacts_raw, contacts_source = None, "retention_contacts"
    if retention_contacts_path is not None:
        retention_contacts_path = Path(retention_contacts_path)
        contacts_raw = read_table(retention_contacts_path, "retention_contacts")
        contacts_source = retention_contacts_path.name
    return check_tables(
        customers_raw,
        interactions_raw,
        customers_source=customers_path.name,
        interactions_source=interactions_path.name,
        retention_contacts_raw=contacts_raw,
        retention_contacts_source=contacts_source,
        horizon_days=horizon_days,
    )


def load_tables(
    customers_path: Path | str,
    interactions_path: Path | str,
    *,
    retention_contacts_path: Path | str | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    quarantine_dir: Path | None = None,
    strict: bool = False,
    report: Callable[[str], None] | None = None,
) -> Tables:
    """Read, check and apply each rule's policy; the entry point of every command but validate.

    With ``retention_contacts_path`` the result's ``retention_contacts`` holds the team's
    table after its rules (``horizon_days``: the control rows' promise); else None."""
    result = read_and_check(
        customers_path, interactions_path, retention_contacts_path, horizon_days=horizon_days
    )
    return apply_policy(result, quarantine_dir=quarantine_dir, strict=strict, report=report)


def apply_policy(
    result: CheckResult,
    *,
    quarantine_dir: Path | None = None,
    strict: bool = False,
    report: Callable[[str], None] | None = None,
) -> Tables:
    """Stop on a breach whose policy is stop (any breach when strict); set the others aside."""
    stop_if_needed(result.breaches, strict=strict)
    customers, interactions = result.customers, result.interactions
    customer_reasons = row_reasons(result.breaches, "customers", len(customers))
    interaction_reasons = row_reasons(result.breaches, "interactions", len(interactions))
    interaction_reasons = set_orphans_aside(
        customers[contract.CUSTOMER_ID],
        customer_reasons,
        interactions[contract.CUSTOMER_ID],
        interaction_reasons,
    )
    tables = [
        ("customers", customers, customer_reasons),
        ("interactions", interactions, interaction_reasons),
    ]
    contacts = result.retention_contacts
    if contacts is not None:
        contact_reasons = set_orphans_aside(
            customers[contract.CUSTOMER_ID],
            customer_reasons,
            contacts[contract.CUSTOMER_ID],
            row_reasons(result.breaches, "retention_contacts", len(contacts)),
        )
        tables.append(("retention_contacts", contacts, contact_reasons))
    files: list[Path] = []
    counts: dict[str, int] = {}
    kept: dict[str, pd.DataFrame] = {}
    for table, frame, reasons in tables:
        bad = np.flatnonzero(~pd.isna(reasons)) if reasons is not None else np.empty(0, int)
        counts[table] = len(bad)
        kept[table] = frame.reset_index(drop=True)
        if not len(bad):
            continue
        files.append(set_aside(table, frame.iloc[bad], bad, reasons[bad], quarantine_dir, report))
        keep = np.ones(len(frame), dtype=bool)
        keep[bad] = False
        kept[table] = frame[keep].reset_index(drop=True)
    return Tables(
        customers=kept["customers"],
        interactions=kept["interactions"],
        set_aside=counts,
        quarantine_files=tuple(files),
        retention_contacts=kept.get("retention_contacts"),
    )


# --- the policy, in parts (the Dask engine applies it piece by piece) ------------------------

ORPHAN_REASON = "its customer was set aside"


def stop_if_needed(breaches: Sequence[Breach], *, strict: bool = False) -> None:
    """The stop decision: ContractError with the first breach whose policy is stop (any
    breach when strict) and how many more rules are broken; nothing when none stops."""
    stopping = [b for b in breaches if strict or b.policy == "stop"]
    if stopping:
        others = len(breaches) - 1
        suffix = f" (and {others} more broken rules: run churnml validate)" if others else ""
        raise ContractError(stopping[0].message() + suffix)


def row_reasons(breaches: Sequence[Breach], table: str, n_rows: int) -> np.ndarray | None:
    """Why each of ``n_rows`` rows of ``table`` is set aside (None when kept): the first
    breach that names a row gives its reason. None instead of the array when no breach
    names a row of ``table`` (the usual case, for nothing)."""
    named = [b for b in breaches if b.table == table and b.count]
    if not named:
        return None
    reasons = np.full(n_rows, None, dtype=object)
    for breach in named:
        give_reason(reasons, breach.rows, breach.reason)
    return reasons


def give_reason(reasons: np.ndarray, rows: np.ndarray, reason: str) -> None:
    """Set ``reason`` on those of ``rows`` that have none yet: the first reason wins."""
    rows = np.asarray(rows, dtype=np.int64)
    free = rows[pd.isna(reasons[rows])]
    reasons[free] = reason


def set_orphans_aside(
    customer_ids: pd.Series,
    customer_reasons: np.ndarray | None,
    interaction_customer_ids: pd.Series,
    interaction_reasons: np.ndarray | None,
) -> np.ndarray | None:
    """The orphan rule: the interactions of a customer set aside go with it (features
    would misread them), with ``ORPHAN_REASON`` unless they have a reason of their own.
    Returns the interactions' reasons (a new array when they had none and some go)."""
    set_aside = ~pd.isna(customer_reasons) if customer_reasons is not None else None
    if set_aside is None or not set_aside.any():
        return interaction_reasons
    dropped = pd.unique(customer_ids[set_aside].dropna())
    orphans = np.flatnonzero(interaction_customer_ids.isin(dropped).to_numpy())
    if not len(orphans):
        return interaction_reasons
    if interaction_reasons is None:
        interaction_reasons = np.full(len(interaction_customer_ids), None, dtype=object)
    give_reason(interaction_reasons, orphans, ORPHAN_REASON)
    return interaction_reasons


def set_aside(
    table: str,
    rows: pd.DataFrame,
    source_rows: np.ndarray,
    reasons: Sequence[str],
    quarantine_dir: Path | None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Write the rows of ``table`` set aside (``source_rows``: their 0-based numbers in the
    table, ascending) to a quarantine file and say so; ContractError without a folder."""
    if quarantine_dir is None:
        raise ContractError(
            f"{table}: {counted(len(rows), 'row')} {_break(len(rows))} the contract and there "
            "is no quarantine folder "
            "to set them aside; run churnml validate"
        )
    path = write_quarantine(rows, source_rows, reasons, table, quarantine_dir)
    if report is not None:
        report(
            f"set aside {counted(len(rows), f'{table} row')} that {_break(len(rows))} the "
            f"contract: see {path}"
        )
    return path


def _break(count: int) -> str:
    return "breaks" if count == 1 else "break"


def write_quarantine(
    rows: pd.DataFrame,
    source_rows: np.ndarray,
    reasons: Sequence[str],
    table: str,
    folder: Path,
) -> Path:
    """The quarantine file: source_row (counted from 1), quarantine_reason, then the row."""
    folder.mkdir(parents=True, exist_ok=True)
    out = rows.reset_index(drop=True)
    out.insert(0, "quarantine_reason", np.asarray(reasons, dtype=object))
    out.insert(0, "source_row", np.asarray(source_rows, dtype=np.int64) + 1)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return write_table(out, folder / f"{table}-{stamp}.csv")


# --- the checks ----------------------------------------------------------------------------


def check_tables(
    customers_raw: pd.DataFrame,
    interactions_raw: pd.DataFrame,
    *,
    customers_source: str = "customers",
    interactions_source: str = "interactions",
    retention_contacts_raw: pd.DataFrame | None = None,
    retention_contacts_source: str = "retention_contacts",
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> CheckResult:
    """Check raw tables (as read, or as sent to the service) against every rule; the
    retention team's table (optional) against its own rules and the customers."""
    breaches: list[Breach] = []
    customers, customer_breaches, customers_complete = typed_table(
        customers_raw, "customers", customers_source
    )
    interactions, interaction_breaches, interactions_complete = typed_table(
        interactions_raw, "interactions", interactions_source
    )
    breaches += customer_breaches + interaction_breaches

    if customers_complete:
        if len(customers) == 0:
            breaches.append(
                Breach(
                    customers_source,
                    "customers",
                    "no_rows",
                    "has no customer rows",
                    "expected at least one customer",
                    "stop",
                )
            )
        breaches += check_unique(customers, "customers", customers_source, policy="stop")
        breaches += check_customer_timeline(customers, customers_source)
    if interactions_complete:
        breaches += check_unique(
            interactions, "interactions", interactions_source, policy="set_aside"
        )
    if customers_complete and interactions_complete:
        breaches += check_relations(customers, interactions, interactions_source, customers_source)
    contacts = None
    if retention_contacts_raw is not None:
        contacts, contact_breaches = check_retention_table(
            retention_contacts_raw,
            retention_contacts_source,
            customers=customers if customers_complete else None,
            customers_source=customers_source,
            horizon_days=horizon_days,
        )
        breaches += contact_breaches
    return CheckResult(
        customers=customers,
        interactions=interactions,
        breaches=breaches,
        retention_contacts=contacts,
    )


def check_retention_table(
    raw: pd.DataFrame,
    source: str,
    *,
    customers: pd.DataFrame | None = None,
    customers_source: str = "customers",
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> tuple[pd.DataFrame, list[Breach]]:
    """The retention team's table typed (an empty ``group`` filled as ``treated``) and the
    rules it breaks: its own, then, with ``customers`` (typed), those against them."""
    contacts, breaches, complete = typed_table(raw, "retention_contacts", source)
    contacts["group"] = contacts["group"].fillna("treated")
    if complete:
        # the rules on the table alone first, then those against the customers (the
        # Dask engine checks them in that order too: the first reason wins)
        breaches += check_control_promises(contacts, source, horizon_days)
        breaches += check_retention_unique(contacts, source)
        if customers is not None:
            breaches += check_retention_relations(customers, contacts, source, customers_source)
    return contacts, breaches


def typed_table(
    raw: pd.DataFrame, table: str, source: str
) -> tuple[pd.DataFrame, list[Breach], bool]:
    """Parse every contract column to its dtype; report values that do not parse."""
    raw = raw.copy(deep=False)
    raw.columns = [str(name).strip() for name in raw.columns]
    columns = contract.TABLES[table]
    missing = [c.name for c in columns if c.required and c.name not in raw.columns]
    breaches = [_missing_columns(raw, table, source, missing)] if missing else []
    id_column = ID_COLUMNS[table]
    ids = as_text(raw[id_column]) if id_column in raw.columns else None
    typed = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    unreadable = {name: kind for name in raw.columns if (kind := nested_kind(raw[name]))}
    breaches += [_unreadable_column(table, source, name, kind) for name, kind in unreadable.items()]
    for column in columns:
        if column.name not in raw.columns or column.name in unreadable:
            typed[column.name] = _empty(column, len(raw))
            continue
        values, bad, problem, expected = _parse(raw[column.name], column)
        typed[column.name] = values
        if bad.any():
            rule = f"type:{column.name}"
            breaches.append(
                _breach(source, table, rule, problem, expected, bad, ids, raw[column.name])
            )
        present = values.notna().to_numpy()
        if column.required and (~present & ~bad).any():
            breaches.append(
                _breach(
                    source,
                    table,
                    f"required:{column.name}",
                    f"an empty {column.name}",
                    "expected a value in every row",
                    ~present & ~bad,
                    ids,
                    None,
                )
            )
        breaches += _value_rules(values, column, source, table, ids, present)
    for name in raw.columns:
        if name not in typed.columns:
            typed[name] = profile_column(raw[name]) if name not in unreadable else np.nan
    complete = not missing and not any(c.required and c.name in unreadable for c in columns)
    return typed, breaches, complete


def nested_kind(raw: pd.Series) -> str | None:
    """What a column holds instead of one value a row (``lists``, ``records``), from a
    Parquet list, struct or map column; None for a column of plain values."""
    if not pd.api.types.is_object_dtype(raw.dtype):
        return None
    if pd.api.types.infer_dtype(raw, skipna=True) not in ("mixed", "mixed-integer"):
        return None
    for value in raw:
        if isinstance(value, dict):
            return "records"
        if isinstance(value, list | tuple | set | np.ndarray):
            return "lists"
    return None


KIND_WORDS = {
    "string": "text",
    "number": "numbers",
    "integer": "whole numbers",
    "boolean": "booleans",
    "date": "dates",
    "timestamp": "timestamps",
}


def _unreadable_column(table: str, source: str, name: str, kind: str) -> Breach:
    column = {c.name: c for c in contract.TABLES[table]}.get(name)
    wanted = KIND_WORDS[column.kind] if column is not None else "plain values"
    fix = f"write {name} as a plain column" + ("" if column and column.required else " or drop it")
    return Breach(
        source,
        table,
        f"column:{name}",
        f"column {name} holds {kind}, not one value a row",
        f"expected {wanted}: {fix}",
        "stop",
    )


def _missing_columns(raw: pd.DataFrame, table: str, source: str, missing: list[str]) -> Breach:
    present = ", ".join(map(str, raw.columns[:8])) or "none"
    return Breach(
        source,
        table,
        "required_columns",
        f"lacks the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
        f"expected the {table} columns of contract v{contract.CONTRACT_VERSION} (found: {present})",
        "stop",
    )


def _value_rules(values, column: Column, source, table, ids, present) -> list[Breach]:
    breaches = []
    if column.non_negative:
        negative = present & (values.to_numpy(dtype=float, na_value=np.nan) < 0)
        if negative.any():
            breaches.append(
                _breach(
                    source,
                    table,
                    f"negative:{column.name}",
                    f"{column.name} < 0",
                    "expected >= 0",
                    negative,
                    ids,
                    values,
                )
            )
    if column.allowed is not None:
        unknown = present & ~values.isin(column.allowed).to_numpy()
        if unknown.any():
            breaches.append(
                _breach(
                    source,
                    table,
                    f"unknown:{column.name}",
                    f"an unknown {column.name}",
                    f"expected one of {', '.join(column.allowed)}",
                    unknown,
                    ids,
                    values,
                )
            )
    if column.value_range is not None:
        low, high = column.value_range
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        outside = present & ((numbers < low) | (numbers > high))
        if outside.any():
            breaches.append(
                _breach(
                    source,
                    table,
                    f"range:{column.name}",
                    f"{column.name} outside {low}-{high}",
                    f"expected a whole number from {low} to {high}",
                    outside,
                    ids,
                    values,
                )
            )
    return breaches


def _parse(raw: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray, str, str]:
    """Parse one column; return the values, the mask of values that did not parse, and words."""
    kind = column.kind
    name = column.name
    raw, not_utf8 = _decoded(raw)
    values, bad, problem, expected = _parse_decoded(raw, column)
    if not_utf8.any():
        bad = bad | not_utf8
        if kind == "string":
            problem, expected = f"{name} that is not UTF-8 text", "expected UTF-8 text"
    return values, bad, problem, expected


def _decoded(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """A column of bytes (a Parquet binary column) as text, and the mask of the values
    that are not UTF-8 (missing in the text): they do not parse."""
    not_utf8 = np.zeros(len(raw), dtype=bool)
    if not pd.api.types.is_object_dtype(raw.dtype) or pd.api.types.infer_dtype(
        raw, skipna=True
    ) not in ("bytes", "mixed"):
        return raw, not_utf8
    values = raw.to_numpy(dtype=object).copy()
    for position, value in enumerate(values):
        if isinstance(value, bytes | bytearray):
            try:
                values[position] = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                values[position], not_utf8[position] = None, True
    return pd.Series(values, index=raw.index, dtype=object), not_utf8


def _parse_decoded(raw: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray, str, str]:
    kind = column.kind
    name = column.name
    if kind == "string":
        values = as_text(raw)
        return values, np.zeros(len(raw), dtype=bool), "", ""
    if kind in ("date", "timestamp"):
        values = _parse_time(raw, date_only=kind == "date")
        given = _given(raw)
        bad = given & values.isna().to_numpy()
        if kind == "date":
            return values, bad, f"{name} that is not a date", f"expected YYYY-MM-DD{YEARS}"
        return (
            values,
            bad,
            f"{name} that is not a timestamp",
            f"expected ISO 8601, e.g. 2025-03-01T14:05:00Z{YEARS}",
        )
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_numeric_dtype(raw.dtype):
            numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
            bad = numbers.notna().to_numpy() & ~numbers.isin([0.0, 1.0]).to_numpy()
        else:
            text = as_text(raw)
            numbers = text.map(contract.BOOLEAN_WORDS, na_action="ignore").astype("float64")
            bad = text.notna().to_numpy() & numbers.isna().to_numpy()
        values = numbers.where(~bad)
        return (
            values,
            bad,
            f"{name} that is not a boolean",
            "expected true/false, True/False or 1/0",
        )
    # number or integer
    if pd.api.types.is_bool_dtype(raw.dtype):
        numbers = pd.Series(np.full(len(raw), np.nan), index=raw.index)
        bad = _given(raw)
    else:
        numbers = pd.to_numeric(
            as_text(raw) if not pd.api.types.is_numeric_dtype(raw.dtype) else raw, errors="coerce"
        ).astype("float64")
        bad = _given(raw) & ~np.isfinite(numbers.to_numpy())
    if kind == "integer":
        array = numbers.to_numpy()
        fractional = np.isfinite(array) & (array != np.round(array))
        bad = bad | fractional
        values = numbers.where(~bad)
        return values, bad, f"{name} that is not a whole number", "expected a whole number"
    values = numbers.where(~bad)
    return values, bad, f"{name} that is not a number", "expected a number"


def _parse_time(raw: pd.Series, *, date_only: bool) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        values = raw
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) in ("date", "empty"):
        dates = raw.to_numpy(dtype=object)  # datetime.date from Parquet, year 1 to 9999
        values = pd.Series([_day(d) for d in dates], index=raw.index, dtype="datetime64[s]")
    else:
        text = as_text(raw)
        values = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        values = values.dt.tz_localize(None)
    values = _nanoseconds(values)
    return values.dt.normalize() if date_only else values


# The times churnml holds (datetime64[ns]): a date or time outside does not parse.
FIRST_TIME, LAST_TIME = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")
YEARS = f", years {FIRST_TIME.year + 1} to {LAST_TIME.year - 1}"


def _nanoseconds(values: pd.Series) -> pd.Series:
    """``values`` as datetime64[ns]; a time outside FIRST_TIME..LAST_TIME becomes NaT
    (a Parquet date of year 9999, a timestamp in microseconds from an int64)."""
    if values.dtype == "datetime64[ns]":
        return values
    inside = values.isna().to_numpy() | ((values >= FIRST_TIME) & (values <= LAST_TIME)).to_numpy(
        dtype=bool, na_value=False
    )
    return values.where(inside).astype("datetime64[ns]")


def _day(value: object) -> np.datetime64:
    if value is None or (not isinstance(value, dt.date) and pd.isna(value)):
        return np.datetime64("NaT")
    return np.datetime64(value, "D")


def _given(raw: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return raw.notna().to_numpy(dtype=bool)
    return as_text(raw).notna().to_numpy(dtype=bool)


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    array = (
        pa.chunked_array([pa.array(values, from_pandas=True)])
        if not isinstance(values.array, pd.arrays.ArrowStringArray)
        else pa.chunked_array(values.array._pa_array)
    )
    return array.cast(pa.large_string())


def all_distinct(values: pd.Series | Sequence[str | None]) -> bool:
    """The unique-id rule holds: no value repeats (missing values apart). A column by one
    hash pass in Arrow; a request's few ids (a sequence) by a set, quicker for them."""
    if not isinstance(values, pd.Series):
        distinct = set(values)
        missing = None in distinct
        return len(distinct) - missing == len(values) - (values.count(None) if missing else 0)
    try:
        array = _arrow_text(values).drop_null()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False  # let first_copies decide
    return len(pc.unique(array)) == len(array)


def first_copies(values: pd.Series | Sequence[str | None]) -> np.ndarray:
    """The unique-id rule, row by row: the position of the first row with each row's value
    (the row itself when it is the first), -1 when missing. A row is a later copy, which
    breaks the rule, where this is neither -1 nor its own position."""
    codes, _uniques = pd.factorize(
        values if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    )
    # factorize numbers the values in order of first appearance: a new code is a first copy.
    seen = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]])) if len(codes) else codes
    firsts = np.flatnonzero(codes > seen)
    return np.where(codes >= 0, firsts[np.maximum(codes, 0)] if len(firsts) else -1, -1)


def later_copies(values: pd.Series | Sequence[str | None]) -> np.ndarray:
    """The rows that break the unique-id rule: every copy of a value after its first."""
    first = first_copies(values)
    return (first >= 0) & (first != np.arange(len(first)))


# The timeline rules, on datetime64[ns] arrays (NaT: not given, breaks nothing). The
# service checks a request with the same predicates (serving.scoring.check_rows).
ONE_DAY = np.timedelta64(1, "D")


def churned_before_signup(churned_at: np.ndarray, signup_date: np.ndarray) -> np.ndarray:
    """Customers who left before they signed up: churned_at before signup_date."""
    return churned_at < signup_date


def contact_before_signup(started_at: np.ndarray, signup_date: np.ndarray) -> np.ndarray:
    """Contacts before their customer's signup_date (the day's midnight)."""
    return started_at < signup_date


def contact_after_churn(started_at: np.ndarray, churned_at: np.ndarray) -> np.ndarray:
    """Contacts after their customer's churned_at day (on the day itself is kept)."""
    return ~np.isnat(churned_at) & (started_at >= churned_at + ONE_DAY)


def positions_in(keys: pd.Series, values: pd.Series) -> np.ndarray:
    """Where each of ``values`` stands in ``keys`` (distinct), -1 when absent: a hash join
    in Arrow (pandas' Index.get_indexer took 16 s for 10^7 contacts of 10^6 customers)."""
    try:
        found = pc.index_in(_arrow_text(values), value_set=_arrow_text(keys).combine_chunks())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Index(keys).get_indexer(values)
    return found.fill_null(-1).to_numpy().astype(np.int64)


def as_text(raw: pd.Series) -> pd.Series:
    """Text values with missing as NA; numeric ids from Parquet become their decimal text."""
    if raw.dtype == TEXT:
        text = raw
    elif pd.api.types.is_integer_dtype(raw.dtype):
        text = raw.astype("Int64").astype(TEXT)
    elif pd.api.types.is_object_dtype(raw.dtype) and pd.api.types.infer_dtype(raw, skipna=True) in (
        "bytes",
        "mixed",
    ):
        # Parquet binary: text as far as it is UTF-8 (an id shown in a message, a profile)
        shown = [
            bytes(v).decode("utf-8", errors="replace") if isinstance(v, bytes | bytearray) else v
            for v in raw.to_numpy(dtype=object)
        ]
        text = pd.Series(shown, index=raw.index, dtype=object).astype(TEXT)
    else:
        text = raw.astype(TEXT)
    return text.mask(text.str.strip() == "")


def _empty(column: Column, n: int) -> pd.Series:
    if column.kind == "string":
        return pd.Series(np.nan, index=range(n), dtype=TEXT)
    if column.kind in ("date", "timestamp"):
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    return pd.Series(np.nan, index=range(n), dtype="float64")


def profile_column(raw: pd.Series) -> pd.Series:
    """An extra column: numeric when every given value is a number, else text."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return as_text(raw.astype(str))
    text = as_text(raw)
    given = text.dropna()
    # A look at the distinct values first: a text column is told in a moment.
    distinct = given.drop_duplicates().head(1000)
    if distinct.empty or pd.to_numeric(distinct, errors="coerce").isna().any():
        return text
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == len(given):
        return numbers.astype("float64")
    return text


def _breach(source, table, rule, problem, expected, mask, ids, values) -> Breach:
    rows = np.flatnonzero(mask)
    first = rows[:EXAMPLES]
    return Breach(
        source=source,
        table=table,
        rule=rule,
        problem=problem,
        expected=expected,
        policy="set_aside",
        rows=rows,
        ids=tuple("" if ids is None or pd.isna(ids.iloc[r]) else str(ids.iloc[r]) for r in first),
        values=tuple("" if values is None else _show(values.iloc[r]) for r in first),
    )


def _show(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_unique(frame: pd.DataFrame, table: str, source: str, *, policy: Policy) -> list[Breach]:
    """The unique-id rule of ``table``'s id column: later copies break it."""
    id_column = ID_COLUMNS[table]
    ids = frame[id_column]
    if all_distinct(ids):  # the usual case, found by one hash pass in Arrow
        return []
    duplicated = later_copies(ids)
    if not duplicated.any():
        return []
    breach = _breach(
        source,
        table,
        f"unique:{id_column}",
        f"a repeated {id_column}",
        f"expected each {id_column} once",
        duplicated,
        ids,
        None,
    )
    if policy == "stop":
        breach = Breach(
            **{
                **breach.__dict__,
                "policy": "stop",
                "expected": f"expected each {id_column} once; remove or merge the copies",
            }
        )
    return [breach]


def check_customer_timeline(customers: pd.DataFrame, source: str) -> list[Breach]:
    """The customers' timeline rule: churned_at not before signup_date."""
    before = churned_before_signup(
        customers["churned_at"].to_numpy(), customers["signup_date"].to_numpy()
    )
    if not before.any():
        return []
    return [
        _breach(
            source,
            "customers",
            "timeline:churned_at",
            "churned_at before signup_date",
            "expected churned_at on or after signup_date",
            before,
            customers[contract.CUSTOMER_ID],
            customers["churned_at"].dt.date,
        )
    ]


def check_relations(
    customers: pd.DataFrame, interactions: pd.DataFrame, source: str, customers_source: str
) -> list[Breach]:
    """The rules between the tables: every interaction's customer exists, and no contact
    before its customer's signup or after the churned_at day."""
    breaches: list[Breach] = []
    ids = interactions[contract.INTERACTION_ID]
    # The first row of a duplicated customer id stands for it, as in every later step.
    lookup = customers.drop_duplicates(contract.CUSTOMER_ID).dropna(subset=[contract.CUSTOMER_ID])
    position = positions_in(lookup[contract.CUSTOMER_ID], interactions[contract.CUSTOMER_ID])
    given = interactions[contract.CUSTOMER_ID].notna().to_numpy()
    unknown = given & (position < 0)
    if unknown.any():
        breaches.append(
            _breach(
                source,
                "interactions",
                "relation:customer_id",
                f"a customer_id not in {customers_source}",
                f"expected every interaction's customer in {customers_source}",
                unknown,
                ids,
                interactions[contract.CUSTOMER_ID],
            )
        )
    known = position >= 0
    signup = np.full(len(interactions), np.datetime64("NaT"), dtype="datetime64[ns]")
    churned = signup.copy()
    signup[known] = lookup["signup_date"].to_numpy()[position[known]]
    churned[known] = lookup["churned_at"].to_numpy()[position[known]]
    started = interactions["started_at"].to_numpy()
    early = known & contact_before_signup(started, signup)
    late = known & contact_after_churn(started, churned)
    if early.any():
        breaches.append(
            _breach(
                source,
                "interactions",
                "timeline:before_signup",
                "a contact before its customer's signup_date",
                "expected started_at on or after signup_date",
                early,
                ids,
                interactions["started_at"],
            )
        )
    if late.any():
        breaches.append(
            _breach(
                source,
                "interactions",
                "timeline:after_churn",
                "a contact after its customer's churned_at day",
                "expected started_at no later than the churned_at day",
                late,
                ids,
                interactions["started_at"],
            )
        )
    return breaches


# --- the retention team's table -------------------------------------------------------------


def _customer_facts(
    customers: pd.DataFrame, customer_ids: pd.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each id stands among the customers (-1: unknown), and its signup_date and
    churned_at (NaT when unknown). The first row of a repeated customer id stands for it."""
    lookup = customers.drop_duplicates(contract.CUSTOMER_ID).dropna(subset=[contract.CUSTOMER_ID])
    position = positions_in(lookup[contract.CUSTOMER_ID], customer_ids)
    known = position >= 0
    signup = np.full(len(customer_ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    churned = signup.copy()
    signup[known] = lookup["signup_date"].to_numpy()[position[known]]
    churned[known] = lookup["churned_at"].to_numpy()[position[known]]
    return position, signup, churned


def check_retention_relations(
    customers: pd.DataFrame, contacts: pd.DataFrame, source: str, customers_source: str
) -> list[Breach]:
    """Every retention contact's customer exists and was a customer on contacted_at (not
    before signup_date, not after the churned_at day)."""
    ids = contacts[contract.CUSTOMER_ID]
    position, signup, churned = _customer_facts(customers, ids)
    given = ids.notna().to_numpy()
    known = position >= 0
    day = contacts["contacted_at"].to_numpy()
    breaches = []
    for rule, mask, problem, expected, values in (
        (
            "relation:customer_id",
            given & ~known,
            f"a customer_id not in {customers_source}",
            f"expected every retention contact's customer in {customers_source}",
            ids,
        ),
        (
            "timeline:before_signup",
            known & contact_before_signup(day, signup),
            "a contacted_at before its customer's signup_date",
            "expected contacted_at on or after signup_date",
            contacts["contacted_at"].dt.date,
        ),
        (
            "timeline:after_churn",
            known & contact_after_churn(day, churned),
            "a contacted_at after its customer's churned_at day",
            "expected contacted_at no later than churned_at",
            contacts["contacted_at"].dt.date,
        ),
    ):
        if mask.any():
            breaches.append(
                _breach(source, "retention_contacts", rule, problem, expected, mask, ids, values)
            )
    return breaches


def broken_control_promises(
    customer_ids: pd.Series, contacted_at: pd.Series, groups: pd.Series, horizon_days: int
) -> np.ndarray:
    """The control rows whose promise is broken: the same customer has a treated row on
    any day from the control row's contacted_at to ``horizon_days`` after it."""
    frame = pd.DataFrame(
        {"customer": customer_ids.to_numpy(), "day": contacted_at.to_numpy(), "group": groups}
    )
    frame["row"] = np.arange(len(frame))
    frame = frame.dropna(subset=["customer", "day"])
    control = frame[frame["group"] == "control"]
    treated = frame[frame["group"] == "treated"]
    broken = np.zeros(len(customer_ids), dtype=bool)
    if control.empty or treated.empty:
        return broken
    pairs = control.merge(treated, on="customer", suffixes=("", "_treated"))
    gap = pairs["day_treated"] - pairs["day"]
    inside = (gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(days=horizon_days))
    broken[pairs.loc[inside, "row"].to_numpy(dtype=np.int64)] = True
    return broken


def check_control_promises(contacts: pd.DataFrame, source: str, horizon_days: int) -> list[Breach]:
    """A control row is a promise that nobody contacted the customer for the horizon."""
    broken = broken_control_promises(
        contacts[contract.CUSTOMER_ID], contacts["contacted_at"], contacts["group"], horizon_days
    )
    if not broken.any():
        return []
    return [
        _breach(
            source,
            "retention_contacts",
            "control:contacted",
            f"a control row for a customer the team contacted within {horizon_days} days",
            f"expected no treated row for the customer from contacted_at to {horizon_days} "
            "days after; mark the row treated or remove the contact",
            broken,
            contacts[contract.CUSTOMER_ID],
            contacts["contacted_at"].dt.date,
        )
    ]


def check_retention_unique(contacts: pd.DataFrame, source: str) -> list[Breach]:
    """One row per (customer_id, contacted_at, group): later copies break it."""
    key = (
        contacts[contract.CUSTOMER_ID].astype(object)
        + "|"
        + contacts["contacted_at"].dt.strftime("%Y-%m-%d").astype(object)
        + "|"
        + contacts["group"].astype(object)
    )
    key = key.where(contacts[contract.CUSTOMER_ID].notna() & contacts["contacted_at"].notna())
    duplicated = later_copies(key.astype(object).where(key.notna(), None))
    if not duplicated.any():
        return []
    return [
        _breach(
            source,
            "retention_contacts",
            "unique:contact",
            "a repeated (customer_id, contacted_at, group)",
            "expected each customer once a day and group; remove the copies",
            duplicated,
            contacts[contract.CUSTOMER_ID],
            contacts["contacted_at"].dt.date,
        )
    ]
