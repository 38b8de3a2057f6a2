"""Checking on the cluster: every piece typed and checked, every customer partition
checked across rows, and ``churnml.validation``'s policy applied to what they found.

* **Per piece.** Each piece is typed and checked with ``validation.typed_table`` (types,
  required values, ranges, allowed values), rows numbered in the whole table. An extra
  column is numeric when every given value in the whole table is a number (as the local
  engine decides on the whole table), decided from all pieces before typing.
* **Per customer partition.** After the shuffle by customer (``shuffle``), each partition
  holds all the rows of its customers, and the rules across rows run there with
  validation's own checks: ``check_unique`` (customer ids), ``check_customer_timeline``
  and ``check_relations``, then the orphan rule (``set_orphans_aside``). Unique interaction
  ids are checked by a second, small shuffle of (interaction_id, row number) by the id.
* **The retention team's table** (optional; one row per pick, small beside the
  interactions): read, typed and checked on its own rules (control promises, one row per
  customer, day and group) on the client, then split by customer like the other tables,
  so each partition checks its contacts against its customers
  (``check_retention_relations``) and applies the orphan rule to them.
* **Policy.** The breaches of all pieces and partitions are merged into one per rule, in
  ``check_tables``' order; ``validation.stop_if_needed`` decides whether to stop, and
  ``validation.set_aside`` writes the same quarantine files as ``load_tables``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from churnml import contract
from churnml import validation as checks
from churnml.contract import CUSTOMER_ID
from churnml.engines.dask.cluster import LOCAL_CONFIG, cluster_errors
from churnml.engines.dask.reading import PIECE_ROWS, Piece, plan, read_piece
from churnml.engines.dask.shuffle import concat, split, split_ids
from churnml.engines.dask.tables import INTERACTION_COLUMNS, REASON, ROW, DaskTables
from churnml.errors import ConfigError, ContractError
from churnml.io import TEXT, read_table

if TYPE_CHECKING:
    from distributed import Client

ROWS_PER_PARTITION = 1_000_000  # interactions per partition when choosing the count
_CELL_RULES = ("required_columns", "type", "required", "negative", "unknown", "range")
_TABLE_RULES = (
    "no_rows",
    "unique:customer_id",
    "timeline:churned_at",
    "unique:interaction_id",
    "relation:customer_id",
    "timeline:before_signup",
    "timeline:after_churn",
)
TABLES = ("customers", "interactions", "retention_contacts")
_RETENTION_RULES = (
    "control:contacted",
    "unique:contact",
    "relation:customer_id",
    "timeline:before_signup",
    "timeline:after_churn",
)
Plans = dict[str, tuple[list[Piece], pd.DataFrame]]


# --------------------------------------------------------------------------- the entry point


def load_tables_dask(
    customers_path: Path | str,
    interactions_path: Path | str,
    *,
    client: Client,
    partitions: int | None = None,
    quarantine_dir: Path | None = None,
    strict: bool = False,
    report: Callable[[str], None] | None = None,
    piece_rows: int = PIECE_ROWS,
    retention_contacts_path: Path | str | None = None,
    horizon_days: int = checks.DEFAULT_HORIZON_DAYS,
) -> DaskTables:
    """``validation.load_tables`` on the cluster: read, check every rule, stop or set aside
    (the same messages, the same quarantine files), and keep the rows on the workers (the
    retention team's table, when given, comes back as one pandas frame)."""
    customers_path, interactions_path = Path(customers_path), Path(interactions_path)
    sources = {"customers": customers_path.name, "interactions": interactions_path.name}
    plans = {
        "customers": plan(customers_path, "customers", piece_rows),
        "interactions": plan(interactions_path, "interactions", piece_rows),
    }
    # Missing required columns stop before any row is read (the local engine stops too).
    empty = checks.check_tables(
        plans["customers"][1],
        plans["interactions"][1],
        customers_source=sources["customers"],
        interactions_source=sources["interactions"],
    )
    checks.stop_if_needed([b for b in empty.breaches if b.rule == "required_columns"])
    no_rows = [b for b in empty.breaches if b.rule == "no_rows"]
    contacts, contact_breaches = _typed_contacts(retention_contacts_path, horizon_days)
    checks.stop_if_needed([b for b in contact_breaches if b.policy == "stop"])
    kinds = _column_kinds(client, plans)
    n = partitions or _partition_count(client, plans)
    if n < 1:
        raise ConfigError(f"partitions {n}: expected at least 1")
    with cluster_errors("checking the tables"):
        kept, summaries, breaches = _check(client, plans, sources, kinds, n, contacts)
    breaches += contact_breaches
    if sum(s["customer_rows"] for s in summaries) == 0:
        breaches += no_rows
    try:
        checks.stop_if_needed(merge(breaches), strict=strict)
        files, counts = _set_aside(summaries, quarantine_dir, report)
    except ContractError:
        client.cancel(kept)
        raise
    tables = _kept_tables(client, plans, sources, kinds, kept, summaries, files, counts)
    if contacts is not None:
        kept_contacts = [s["kept_contacts"] for s in summaries]
        frame = pd.concat(kept_contacts, ignore_index=True).sort_values(ROW, kind="stable")
        tables.retention_contacts = frame.drop(columns=[ROW, REASON]).reset_index(drop=True)
    return tables


def _typed_contacts(
    path: Path | str | None, horizon_days: int
) -> tuple[pd.DataFrame | None, list[checks.Breach]]:
    """The retention team's table typed and checked on its own rules, on the client, with
    each row's number and first reason so far; None when there is no table (or it lacks
    a required column: then a breach that stops)."""
    if path is None:
        return None, []
    path = Path(path)
    source = path.name
    raw = read_table(path, "retention_contacts")
    contacts, breaches, complete = checks.typed_table(raw, "retention_contacts", source)
    contacts["group"] = contacts["group"].fillna("treated")
    if not complete:
        return None, breaches
    breaches += checks.check_control_promises(contacts, source, horizon_days)
    breaches += checks.check_retention_unique(contacts, source)
    reasons = checks.row_reasons(breaches, "retention_contacts", len(contacts))
    contacts[REASON] = pd.Series(
        np.full(len(contacts), None) if reasons is None else reasons, dtype=TEXT
    )
    contacts[ROW] = np.arange(len(contacts), dtype=np.int64)
    contacts.attrs["source"] = source
    return contacts, breaches


def _partition_count(client: Client, plans: Plans) -> int:
    """Twice the worker threads, or more for big tables (``ROWS_PER_PARTITION``)."""
    pieces = plans["interactions"][0]
    interaction_rows = None
    if not pieces[0].csv:
        interaction_rows = sum(
            pq.ParquetFile(path).metadata.num_rows for path in {p.path for p in pieces}
        )
    workers = sum(client.nthreads().values()) or 1
    wanted = math.ceil((interaction_rows or 0) / ROWS_PER_PARTITION)
    return max(2 * workers, wanted, 1)


def _column_kinds(client: Client, plans: Plans) -> dict[str, dict[str, str]]:
    """Each table's extra text columns: "number" or "text", decided over all its pieces."""
    from dask import delayed

    kinds: dict[str, dict[str, str]] = {}
    with cluster_errors("reading the tables"):
        for table, (pieces, meta) in plans.items():
            extras = text_extras(meta, table)
            kinds[table] = {}
            if extras and len(pieces) > 1:
                parts = [delayed(piece_kinds)(delayed(read_piece)(p, extras)) for p in pieces]
                kinds[table] = table_kinds(list(client.compute(parts, sync=True)))
    return kinds


def _check(
    client: Client,
    plans: Plans,
    sources: dict[str, str],
    kinds: dict[str, dict[str, str]],
    n: int,
    contacts: pd.DataFrame | None = None,
) -> tuple[list, list[dict[str, Any]], list[checks.Breach]]:
    """Type every piece, shuffle by customer, check every partition: the kept partitions
    (persisted, customers then interactions), the partitions' summaries, the breaches."""
    import dask.dataframe as dd
    from dask import delayed

    typed: dict[str, list] = {}
    for table, (pieces, meta) in plans.items():
        raw = dd.from_map(read_piece, pieces, meta=meta, enforce_metadata=False)
        typed[table] = [
            delayed(type_piece, nout=2)(part, table, sources[table], piece.offset, kinds[table])
            for part, piece in zip(raw.to_delayed(), pieces, strict=True)
        ]
    split_c = [delayed(split, nout=n)(t[0], CUSTOMER_ID, n) for t in typed["customers"]]
    split_i = [delayed(split, nout=n)(t[0], CUSTOMER_ID, n) for t in typed["interactions"]]
    split_d = [delayed(split_ids, nout=n)(t[0], n) for t in typed["interactions"]]
    found = [
        delayed(_duplicates)([s[j] for s in split_d], sources["interactions"]) for j in range(n)
    ]
    duplicates = delayed(_duplicate_rows)(found)
    contact_parts = [None] * n
    if contacts is not None:
        contact_parts = [
            (part.reset_index(drop=True), contacts.attrs["source"])
            for part in split(contacts, CUSTOMER_ID, n)
        ]
    checked = [
        delayed(check_partition, nout=3)(
            [s[j] for s in split_c],
            [s[j] for s in split_i],
            duplicates,
            sources["customers"],
            sources["interactions"],
            contact_parts[j],
        )
        for j in range(n)
    ]
    piece_breaches = [t[1] for t in typed["customers"] + typed["interactions"]]
    wanted = [c[0] for c in checked] + [c[1] for c in checked]
    small = [c[2] for c in checked] + piece_breaches + found
    persisted = client.persist([*wanted, *small])
    kept, small = persisted[: len(wanted)], persisted[len(wanted) :]
    summaries = client.compute(small[:n], sync=True)
    breach_lists = client.compute(small[n:], sync=True)
    breaches = [b for part in breach_lists for b in (part if isinstance(part, list) else [part])]
    breaches = [b for b in breaches if b is not None]
    return kept, summaries, breaches + [b for s in summaries for b in s["breaches"]]


def _set_aside(
    summaries: list[dict[str, Any]],
    quarantine_dir: Path | None,
    report: Callable[[str], None] | None,
) -> tuple[list[Path], dict[str, int]]:
    """``validation.set_aside`` of the rows the partitions set aside, table by table."""
    files: list[Path] = []
    counts = {}
    for table in TABLES:
        if not any(table in s["set_aside"] for s in summaries):
            continue  # no retention team's table
        frames = [s["set_aside"][table] for s in summaries if len(s["set_aside"][table])]
        counts[table] = sum(len(frame) for frame in frames)
        if not frames:
            continue
        rows = pd.concat(frames).sort_values(ROW, kind="stable")
        files.append(
            checks.set_aside(
                table,
                rows.drop(columns=[ROW, REASON]),
                rows[ROW].to_numpy(),
                rows[REASON].astype(object).to_numpy(),
                quarantine_dir,
                report,
            )
        )
    return files, counts


def _kept_tables(
    client: Client,
    plans: Plans,
    sources: dict[str, str],
    kinds: dict[str, dict[str, str]],
    kept: list,
    summaries: list[dict[str, Any]],
    files: list[Path],
    counts: dict[str, int],
) -> DaskTables:
    """The kept partitions as two Dask frames, with the customers' text values."""
    import dask.dataframe as dd

    n = len(summaries)
    metas = {
        table: type_piece(meta.iloc[:0], table, sources[table], 0, kinds[table])[0]
        for table, (_pieces, meta) in plans.items()
    }
    customer_meta = metas["customers"].drop(columns=[REASON])
    interaction_meta = metas["interactions"][[*INTERACTION_COLUMNS, ROW]]
    categories: dict[str, set[str]] = {}
    for summary in summaries:
        for name, values in summary["categories"].items():
            categories.setdefault(name, set()).update(values)
    with dask.config.set(LOCAL_CONFIG):
        customers = dd.from_delayed(kept[:n], meta=customer_meta, verify_meta=False)
        interactions = dd.from_delayed(kept[n:], meta=interaction_meta, verify_meta=False)
    return DaskTables(
        client=client,
        customers=customers,
        interactions=interactions,
        partitions=n,
        customer_rows=sum(s["kept"][0] for s in summaries),
        interaction_rows=sum(s["kept"][1] for s in summaries),
        categories={name: tuple(sorted(values)) for name, values in categories.items()},
        set_aside=counts,
        quarantine_files=tuple(files),
        meta={"customers": customer_meta, "interactions": interaction_meta},
    )


# --------------------------------------------------------------------------- per piece


def text_extras(meta: pd.DataFrame, table: str) -> list[str]:
    """Extra (non-contract) columns read as text: numeric or text by their values."""
    known = {column.name for column in contract.TABLES[table]}
    return [
        name
        for name in meta.columns
        if str(name).strip() not in known
        and not (
            pd.api.types.is_bool_dtype(meta[name].dtype)
            or pd.api.types.is_numeric_dtype(meta[name].dtype)
            or pd.api.types.is_datetime64_any_dtype(meta[name].dtype)
        )
    ]


def piece_kinds(raw: pd.DataFrame) -> dict[str, str]:
    """For each column: "empty" (no value given), "number" or "text", as
    validation.profile_column decides on this piece alone."""
    kinds = {}
    for name in raw.columns:
        given = checks.as_text(raw[name]).notna().any()
        numeric = checks.profile_column(raw[name]).dtype == np.float64
        kinds[str(name).strip()] = "number" if numeric and given else "text" if given else "empty"
    return kinds


def table_kinds(parts: list[dict[str, str]]) -> dict[str, str]:
    """The whole table's kind of each column: numeric when some piece has values and every
    piece with values is all numbers (validation.profile_column on the whole table)."""
    kinds: dict[str, str] = {}
    for part in parts:
        for name, kind in part.items():
            before = kinds.get(name, "empty")
            kinds[name] = kind if before == "empty" else "text" if kind == "text" else before
    return {name: "number" if kind == "number" else "text" for name, kind in kinds.items()}


def type_piece(
    raw: pd.DataFrame, table: str, source: str, offset: int, kinds: dict[str, str]
) -> tuple[pd.DataFrame, list[checks.Breach]]:
    """Typed rows of one piece with their row number and reason to set aside, and the
    rules its rows break (rows numbered in the whole table)."""
    typed, breaches, _complete = checks.typed_table(raw, table, source)
    stripped = raw.rename(columns=lambda name: str(name).strip())
    for name, kind in kinds.items():
        if name not in typed.columns:
            continue
        numeric = typed[name].dtype == np.float64
        if kind == "text" and numeric:
            typed[name] = checks.as_text(stripped[name])
        elif kind == "number" and not numeric:  # a piece with no value: all missing
            typed[name] = pd.to_numeric(typed[name], errors="coerce").astype("float64")
    reasons = checks.row_reasons(breaches, table, len(typed))
    typed[REASON] = pd.Series(np.full(len(typed), None) if reasons is None else reasons, dtype=TEXT)
    typed[ROW] = np.arange(offset, offset + len(typed), dtype=np.int64)
    return typed, [replace(b, rows=b.rows + offset) for b in breaches]


# --------------------------------------------------------------------------- per partition


def _globalize(breach: checks.Breach, rows: np.ndarray) -> checks.Breach:
    return replace(breach, rows=rows[breach.rows])


def _duplicates(parts: list[pd.DataFrame], source: str) -> checks.Breach | None:
    """Later copies of interaction ids in one hash partition of the ids."""
    ids = concat(parts)
    found = checks.check_unique(ids, "interactions", source, policy="set_aside")
    return _globalize(found[0], ids[ROW].to_numpy()) if found else None


def _duplicate_rows(found: list[checks.Breach | None]) -> tuple[np.ndarray, str]:
    """The rows of all later copies of interaction ids (table numbers), and their reason."""
    rows = [b.rows for b in found if b is not None]
    reason = next((b.reason for b in found if b is not None), "")
    return (np.sort(np.concatenate(rows)) if rows else np.empty(0, np.int64)), reason


def check_partition(
    customer_parts: list[pd.DataFrame],
    interaction_parts: list[pd.DataFrame],
    duplicates: tuple[np.ndarray, str],
    customers_source: str,
    interactions_source: str,
    contacts: tuple[pd.DataFrame, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The rules across rows on one partition (all rows of its customers), and the rows
    kept; the same rules in the same order as validation.check_tables and apply_policy.

    ``contacts``: the partition's retention contacts (typed, numbered, with their reasons
    from the table's own rules) and their source name, or None without the table."""
    customers = concat(customer_parts)
    interactions = concat(interaction_parts)
    c_rows, i_rows = customers[ROW].to_numpy(), interactions[ROW].to_numpy()
    c_reason = customers[REASON].to_numpy(dtype=object, na_value=None)
    i_reason = interactions[REASON].to_numpy(dtype=object, na_value=None)
    breaches: list[checks.Breach] = []
    for breach in checks.check_unique(
        customers, "customers", customers_source, policy="stop"
    ) + checks.check_customer_timeline(customers, customers_source):
        breaches.append(_globalize(breach, c_rows))
        checks.give_reason(c_reason, breach.rows, breach.reason)
    dup_rows, dup_reason = duplicates
    if len(dup_rows):
        checks.give_reason(i_reason, np.flatnonzero(np.isin(i_rows, dup_rows)), dup_reason)
    for breach in checks.check_relations(
        customers, interactions, interactions_source, customers_source
    ):
        breaches.append(_globalize(breach, i_rows))
        checks.give_reason(i_reason, breach.rows, breach.reason)
    contact_summary: dict[str, Any] = {}
    if contacts is not None:
        contact_frame, contacts_source = contacts
        r_rows = contact_frame[ROW].to_numpy()
        r_reason = contact_frame[REASON].to_numpy(dtype=object, na_value=None)
        for breach in checks.check_retention_relations(
            customers, contact_frame, contacts_source, customers_source
        ):
            breaches.append(_globalize(breach, r_rows))
            checks.give_reason(r_reason, breach.rows, breach.reason)
    checks.set_orphans_aside(customers[CUSTOMER_ID], c_reason, interactions[CUSTOMER_ID], i_reason)
    if contacts is not None:
        checks.set_orphans_aside(
            customers[CUSTOMER_ID], c_reason, contact_frame[CUSTOMER_ID], r_reason
        )
        r_bad = ~pd.isna(r_reason)
        contact_frame = contact_frame.assign(**{REASON: pd.Series(r_reason, dtype=TEXT)})
        contact_summary = {
            "kept_contacts": contact_frame.loc[~r_bad].reset_index(drop=True),
            "set_aside_contacts": contact_frame.loc[r_bad],
        }
    c_bad, i_bad = ~pd.isna(c_reason), ~pd.isna(i_reason)
    customers[REASON] = pd.Series(c_reason, dtype=TEXT)
    interactions[REASON] = pd.Series(i_reason, dtype=TEXT)
    kept_customers = customers.loc[~c_bad].drop(columns=[REASON]).reset_index(drop=True)
    kept_interactions = interactions.loc[~i_bad, [*INTERACTION_COLUMNS, ROW]]
    categories = {
        name: set(kept_customers[name].dropna().astype(str).unique())
        for name in kept_customers.columns
        if name != CUSTOMER_ID and isinstance(kept_customers[name].dtype, pd.StringDtype)
    }
    set_aside = {"customers": customers.loc[c_bad], "interactions": interactions.loc[i_bad]}
    if contact_summary:
        set_aside["retention_contacts"] = contact_summary.pop("set_aside_contacts")
    summary = {
        "breaches": breaches,
        "customer_rows": len(customers),
        "kept": (len(kept_customers), len(kept_interactions)),
        "set_aside": set_aside,
        "categories": categories,
        **contact_summary,
    }
    return kept_customers, kept_interactions.reset_index(drop=True), summary


def _rule_order(breach: checks.Breach) -> tuple[int, int, int]:
    """Where validation.check_tables lists a rule: cells of customers, cells of
    interactions (by column, then rule), then the rules across rows."""
    kind, _, column = breach.rule.partition(":")
    if breach.table == "retention_contacts":
        # after every rule of the other tables, as validation.check_tables lists them
        if kind in _CELL_RULES:
            names = [c.name for c in contract.TABLES[breach.table]]
            position = names.index(column) if column in names else -1
            return (100, position, _CELL_RULES.index(kind))
        rule = breach.rule if breach.rule in _RETENTION_RULES else _RETENTION_RULES[0]
        return (101 + _RETENTION_RULES.index(rule), 0, 0)
    if kind in _CELL_RULES:
        names = [c.name for c in contract.TABLES[breach.table]]
        position = names.index(column) if column in names else -1
        return (0 if breach.table == "customers" else 1, position, _CELL_RULES.index(kind))
    rule = breach.rule if breach.rule in _TABLE_RULES else "no_rows"
    return (2 + _TABLE_RULES.index(rule), 0, 0)


def merge(breaches: list[checks.Breach]) -> list[checks.Breach]:
    """One breach per rule over all pieces and partitions: all its rows, the first three
    as examples, in check_tables' order."""
    groups: dict[tuple[str, str], list[checks.Breach]] = {}
    for breach in breaches:
        groups.setdefault((breach.table, breach.rule), []).append(breach)
    merged = []
    for parts in groups.values():
        examples = []
        for part in parts:
            for index, row in enumerate(part.rows[: checks.EXAMPLES]):
                examples.append(
                    (
                        int(row),
                        part.ids[index] if index < len(part.ids) else "",
                        part.values[index] if index < len(part.values) else "",
                    )
                )
        examples.sort(key=lambda example: example[0])
        first = examples[: checks.EXAMPLES]
        merged.append(
            replace(
                parts[0],
                rows=np.sort(np.concatenate([part.rows for part in parts])),
                ids=tuple(example[1] for example in first),
                values=tuple(example[2] for example in first),
            )
        )
    return sorted(merged, key=_rule_order)
