"""Writing the simulated world as contract tables (CSV or Parquet), atomically.

Ids and timestamps are built as fixed-width byte strings with numpy, so ten million
rows never become ten million Python strings; tables are written in batches.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churnml.contract import CHANNELS, GROUPS, OUTCOMES, STATUSES
from churnml.simulator.dynamics import NEVER, Contacts, Population
from churnml.simulator.params import (
    CONTRACT_TYPES,
    PAYMENT_METHODS,
    PLANS,
    REGIONS,
    SEGMENTS,
    TOPICS,
)
from churnml.simulator.retention import NO_OUTCOME, TREATED, RetentionLog

BATCH_ROWS = 1_000_000


def id_width(largest: int, minimum: int) -> int:
    """Digits of an id: at least ``minimum``, more when the numbers need them."""
    return max(minimum, len(str(max(largest, 0))))


def format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers, e.g. C000123, as an arrow string array."""
    numbers = np.asarray(numbers, dtype=np.int64)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    out = np.empty((len(numbers), len(head) + width), dtype=np.uint8)
    out[:, : len(head)] = head
    rest = numbers.copy()
    for position in range(len(head) + width - 1, len(head) - 1, -1):
        out[:, position] = 48 + rest % 10
        rest //= 10
    strings = out.view(f"S{len(head) + width}").ravel()
    return pa.array(strings, type=pa.binary()).cast(pa.string())


def _labels(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(list(names))
    ).cast(pa.string())


def _dates(start: date, day: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    values = np.datetime64(start, "D") + day.astype("timedelta64[D]")
    return pa.array(values, type=pa.date32(), mask=missing)


def _timestamps(start: date, day: np.ndarray, second: np.ndarray, file_format: str) -> pa.Array:
    values = (
        np.datetime64(start, "s")
        + day.astype(np.int64).astype("timedelta64[D]")
        + second.astype(np.int64).astype("timedelta64[s]")
    )
    if file_format == "parquet":
        return pa.array(values, type=pa.timestamp("s", tz="UTC"))
    # CSV: ISO 8601 with the T and the Z
    return pa.array(np.datetime_as_string(values, unit="s", timezone="UTC"), type=pa.string())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    with _atomic(path) as temp:
        temp.write_bytes(data)


class _atomic:
    """Context manager giving a temp path that replaces ``path`` on success."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Path:
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(handle)
        self.temp = Path(name)
        return self.temp

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            os.chmod(self.temp, 0o644)  # mkstemp makes 0600; a data file is for everyone
            os.replace(self.temp, self.path)
        else:
            self.temp.unlink(missing_ok=True)


def _write_batches(path: Path, schema: pa.Schema, batches: Iterator[pa.Table], fmt: str) -> None:
    with _atomic(path) as temp:
        if fmt == "csv":
            options = pacsv.WriteOptions(quoting_style="none")
            with pacsv.CSVWriter(str(temp), schema, write_options=options) as writer:
                for table in batches:
                    writer.write_table(table)
        else:
            with pq.ParquetWriter(str(temp), schema, compression="zstd") as writer:
                for table in batches:
                    writer.write_table(table)


def write_customers(
    pop: Population, churn_day: np.ndarray, start: date, out_dir: Path, fmt: str
) -> Path:
    """customers.<fmt>: the contract columns plus region, contract_type, payment_method."""
    n = len(pop)
    table = pa.table(
        {
            "customer_id": format_ids("C", np.arange(1, n + 1), id_width(n, 6)),
            "signup_date": _dates(start, pop.signup_day),
            "churned_at": _dates(
                start, np.where(churn_day < NEVER, churn_day, 0), missing=churn_day >= NEVER
            ),
            "segment": _labels(SEGMENTS, pop.segment),
            "plan": _labels(PLANS, pop.plan),
            "monthly_revenue": pa.array(pop.monthly_revenue, type=pa.float64()),
            "region": _labels(REGIONS, pop.region),
            "contract_type": _labels(CONTRACT_TYPES, pop.contract_type),
            "payment_method": _labels(PAYMENT_METHODS, pop.payment_method),
        }
    )
    path = out_dir / f"customers.{fmt}"
    _write_batches(path, table.schema, iter([table]), fmt)
    return path


def write_interactions(
    recorded: list[Contacts],
    days_of: list[np.ndarray],
    pop: Population,
    start: date,
    out_dir: Path,
    fmt: str,
) -> tuple[Path, int]:
    """interactions.<fmt>, sorted by started_at; returns the path and the row count."""
    path = out_dir / f"interactions.{fmt}"

    def column(name: str) -> np.ndarray:
        parts = [getattr(batch, name) for batch in recorded]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)

    day = np.concatenate(days_of) if days_of else np.empty(0, dtype=np.int32)
    second = column("second_of_day")
    customer = column("customer")
    order = np.lexsort((customer, second, day))
    n = len(order)
    columns = {
        name: column(name)[order]
        for name in (
            "channel",
            "case_id",
            "topic",
            "wait_seconds",
            "handle_seconds",
            "agent",
            "transfers",
            "abandoned",
            "status",
            "csat",
        )
    }
    day, second, customer = day[order], second[order], customer[order]
    widths = {
        "customer": id_width(len(pop), 6),
        "interaction": id_width(n, 7),
        "case": id_width(int(columns["case_id"].max(initial=0)), 7),
        "agent": id_width(int(columns["agent"].max(initial=0)), 3),
    }
    schema = pa.schema(
        [
            ("interaction_id", pa.string()),
            ("customer_id", pa.string()),
            ("started_at", pa.timestamp("s", tz="UTC") if fmt == "parquet" else pa.string()),
            ("channel", pa.string()),
            ("case_id", pa.string()),
            ("topic", pa.string()),
            ("wait_seconds", pa.int32()),
            ("handle_seconds", pa.int32()),
            ("agent_id", pa.string()),
            ("transfers", pa.int8()),
            ("abandoned", pa.bool_()),
            ("status", pa.string()),
            ("csat", pa.int8()),
        ]
    )

    def batches() -> Iterator[pa.Table]:
        for lo in range(0, max(n, 1), BATCH_ROWS):
            part = slice(lo, min(n, lo + BATCH_ROWS))
            agent = columns["agent"][part]
            csat = columns["csat"][part]
            agent_ids = format_ids("A", np.maximum(agent, 0), widths["agent"])
            yield pa.table(
                {
                    "interaction_id": format_ids(
                        "I", np.arange(part.start + 1, part.stop + 1), widths["interaction"]
                    ),
                    "customer_id": format_ids("C", customer[part] + 1, widths["customer"]),
                    "started_at": _timestamps(start, day[part], second[part], fmt),
                    "channel": _labels(CHANNELS, columns["channel"][part]),
                    "case_id": format_ids("CASE", columns["case_id"][part], widths["case"]),
                    "topic": _labels(TOPICS, columns["topic"][part]),
                    "wait_seconds": pa.array(columns["wait_seconds"][part], type=pa.int32()),
                    "handle_seconds": pa.array(columns["handle_seconds"][part], type=pa.int32()),
                    "agent_id": pc.if_else(
                        pa.array(agent >= 0), agent_ids, pa.scalar(None, pa.string())
                    ),
                    "transfers": pa.array(columns["transfers"][part], type=pa.int8()),
                    "abandoned": pa.array(columns["abandoned"][part], type=pa.bool_()),
                    "status": _labels(STATUSES, columns["status"][part]),
                    "csat": pa.array(csat, type=pa.int8(), mask=csat == 0),
                },
                schema=schema,
            )

    _write_batches(path, schema, batches(), fmt)
    return path, n


@dataclass(frozen=True)
class OracleFrame:
    """The oracle on one date: its rows, the true risk without a call, the realised label
    and the true call effect of each replicate stream (shape (streams, rows)); with
    ``horizons``, the true risk and the realised label at each of them (shape
    (horizons, rows))."""

    day: int
    rows: np.ndarray
    probability: np.ndarray
    label: np.ndarray
    stream_effects: np.ndarray
    horizons: tuple[int, ...] = ()
    curve: np.ndarray | None = None
    curve_labels: np.ndarray | None = None

    @property
    def effects(self) -> np.ndarray:
        """The true call effect: the mean over the streams."""
        return self.stream_effects.mean(axis=0)


def write_oracle(
    frames: list[OracleFrame],
    n_customers: int,
    start: date,
    out_dir: Path,
    fmt: str,
) -> Path:
    """oracle.<fmt>: customer_id, as_of, true_probability, true_call_effect, label per
    (date, active customer), and with several streams ``true_call_effect_<s>`` for each
    stream s = 1, 2, ... (their mean is ``true_call_effect``); with oracle horizons
    ``true_probability_<H>d`` and ``label_<H>d`` for each H (the training horizon's
    equal ``true_probability`` and ``label``)."""
    width = id_width(n_customers, 6)
    parts = []
    for frame in frames:
        rows = frame.rows
        columns = {
            "customer_id": format_ids("C", rows + 1, width),
            "as_of": _dates(start, np.full(len(rows), frame.day, dtype=np.int32)),
            "true_probability": pa.array(np.round(frame.probability, 6), type=pa.float64()),
            "true_call_effect": pa.array(np.round(frame.effects, 6), type=pa.float64()),
            "label": pa.array(frame.label, type=pa.int8()),
        }
        if len(frame.stream_effects) > 1:
            for number, effect in enumerate(frame.stream_effects, start=1):
                columns[f"true_call_effect_{number}"] = pa.array(
                    np.round(effect, 6), type=pa.float64()
                )
        for k, horizon in enumerate(frame.horizons):
            columns[f"true_probability_{horizon}d"] = pa.array(
                np.round(frame.curve[k], 6), type=pa.float64()
            )
        for k, horizon in enumerate(frame.horizons):
            columns[f"label_{horizon}d"] = pa.array(frame.curve_labels[k], type=pa.int8())
        parts.append(pa.table(columns))
    table = pa.concat_tables(parts)
    path = out_dir / f"oracle.{fmt}"
    _write_batches(path, table.schema, iter([table]), fmt)
    return path


def write_retention_contacts(
    log: RetentionLog, n_customers: int, start: date, out_dir: Path, fmt: str
) -> Path:
    """retention_contacts.<fmt>: customer_id, contacted_at, group, outcome, channel, one row
    per pick in the order made (control rows have no outcome and no channel)."""
    day = log.column("days")
    group = log.column("groups").astype(np.int8)
    outcome = log.column("outcomes").astype(np.int8)
    treated = group == TREATED
    table = pa.table(
        {
            "customer_id": format_ids("C", log.column("customers") + 1, id_width(n_customers, 6)),
            "contacted_at": _dates(start, day),
            "group": _labels(GROUPS, group),
            "outcome": pc.if_else(
                pa.array(outcome != NO_OUTCOME),
                _labels(OUTCOMES, np.maximum(outcome, 0)),
                pa.scalar(None, pa.string()),
            ),
            "channel": pc.if_else(
                pa.array(treated),
                pa.array(np.full(len(day), "phone")),
                pa.scalar(None, pa.string()),
            ),
        }
    )
    path = out_dir / f"retention_contacts.{fmt}"
    _write_batches(path, table.schema, iter([table]), fmt)
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
