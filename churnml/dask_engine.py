"""The same pipeline on Dask's distributed scheduler: read, check, features, scores.

``client(scheduler, workers)`` connects to a running scheduler or starts a local cluster.
``load_tables_dask`` reads the two tables in pieces on the workers, checks every piece
against the contract with ``churnml.validation``'s own functions and applies the same
policy as ``load_tables`` (stop, or set aside into the same quarantine files), and leaves
the kept rows on the cluster, partitioned by customer. ``build_features_dask`` and
``score_dask`` run ``features.build_features`` and the model on each partition and
collect one pandas frame, in the order the local engine gives.

How the work is split:

* **Reading.** A Parquet file is read in pieces of whole row groups (about ``piece_rows``
  rows each), a folder of Parquet files file by file in name order (big files in pieces
  too), a CSV file as one piece (CSV cannot be split safely at line breaks: quoted fields
  may hold them; use Parquet for big tables). Every piece knows the number of its first
  row in the table, from the Parquet footers, so rows keep their table-wide number.
* **Checking.** Each piece is typed and checked with ``validation._typed_table`` (types,
  required values, ranges, allowed values). Rules across rows run after the shuffle below,
  where each partition holds all the rows of its customers: ``_unique`` (customer ids),
  ``_customer_timeline`` and ``_relations``. Unique interaction ids are checked by a second,
  small shuffle of (interaction_id, row number) by the hash of the id. An extra column is
  numeric when every given value in the whole table is a number (as the local engine
  decides on the whole table), decided from all pieces before typing.
* **Partitioning.** Both tables are split by ``hash(customer_id) % partitions`` (a 64-bit
  hash of the id's UTF-8 bytes, ``_string_hash``: the same in every process and on every
  machine), and partition j of the customers is paired with partition j of the
  interactions. Rows keep their table order inside a
  partition, so ties in ``started_at`` break as in the local engine.
* **Features and scores.** ``dd.map_partitions`` runs ``features.build_features`` on each
  pair, with the categories of the categorical columns pinned to the values of the whole
  customers table (what the local engine sees), then ``ChurnModel.prepare`` and
  ``explained_scores`` on each feature partition. The collected frame is put back in the
  customers table's order.

Failures: Dask runs a task again on another worker when its worker dies (up to
``distributed.scheduler.allowed-failures`` times, 3 by default) and recomputes any lost
intermediate result from its inputs, so a result is always complete. When a task keeps
killing workers, or the scheduler goes away, the computation raises ``DaskEngineError`` (a
``ChurnmlError``) with one line, and nothing is returned or written.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnml import contract
from churnml import validation as checks
from churnml.contract import CUSTOMER_ID, INTERACTION_ID
from churnml.errors import ChurnmlError, ConfigError, ContractError, DataError, InputError
from churnml.io import TEXT, existing_input, read_table, write_table
from features import FeatureSettings, build_features, parse_as_of
from features.build import INTERACTION_COLUMNS_USED
from features.columns import CATEGORICAL_FEATURES, PROFILE_PREFIX

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from features.model import ChurnModel

ROW = "__churnml_row__"  # the row's number in its table (0-based, as validation counts)
REASON = "__churnml_reason__"  # why a row is set aside; missing when it is kept
PIECE_ROWS = 1_000_000
ROWS_PER_PARTITION = 1_000_000  # interactions per partition when choosing the count
NO_WORKERS_TIMEOUT = 120.0  # seconds without a live worker before a local cluster gives up
# The interaction columns build_features reads: all the kept partitions hold.
INTERACTION_COLUMNS = INTERACTION_COLUMNS_USED
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
_PRIME = np.uint64(1_099_511_628_211)  # FNV-1's 64-bit prime
_LOCAL = {"dataframe.convert-string": False}  # keep pandas' own str dtype, as validation has


class DaskEngineError(ChurnmlError):
    """The Dask cluster could not finish a computation (workers died, scheduler lost)."""

    exit_code = 1


# --------------------------------------------------------------------------- cluster


@contextmanager
def client(
    scheduler: str | None = None,
    workers: int = 2,
    *,
    memory_limit: str | int = "auto",
    timeout: float = 30.0,
    no_workers_timeout: float = NO_WORKERS_TIMEOUT,
) -> Iterator[Client]:
    """A Dask client: of the scheduler at ``scheduler`` (``tcp://HOST:PORT``), or of a local
    cluster of ``workers`` processes with one thread each (no dashboard, on 127.0.0.1),
    closed on exit. ConfigError when the scheduler cannot be reached.

    The local cluster's scheduler fails the waiting tasks when no worker has been alive for
    ``no_workers_timeout`` seconds (a nanny can give up restarting a worker that keeps
    dying), so that a computation ends in DaskEngineError instead of waiting for ever. A
    remote scheduler keeps its own ``distributed.scheduler.no-workers-timeout``."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            connected = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise ConfigError(
                f"scheduler {scheduler}: cannot connect ({reason}); start a Dask scheduler "
                "there, or leave the scheduler out to run a local cluster"
            ) from None
        try:
            yield connected
        finally:
            connected.close()
        return
    if workers < 1:
        raise ConfigError(f"workers {workers}: expected at least 1 Dask worker")
    with dask.config.set({"distributed.scheduler.no-workers-timeout": f"{no_workers_timeout}s"}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            memory_limit=memory_limit,
            silence_logs=logging.ERROR,
        )
    try:
        with Client(cluster) as local:
            yield local
    finally:
        cluster.close()


@contextmanager
def _cluster_errors(what: str) -> Iterator[None]:
    """Turn the cluster's failures into one line; a ChurnmlError from a task passes as is."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import NoValidWorkerError, NoWorkerError

    try:
        with dask.config.set(_LOCAL):
            yield
    except KilledWorker as error:
        task = error.task[0] if isinstance(error.task, tuple) else error.task
        name = str(task).split("-")[0]
        raise DaskEngineError(
            f"{what} failed: Dask workers died {error.allowed_failures + 1} times while "
            f"running task {name} (last {getattr(error.last_worker, 'address', '?')}); "
            "no partial result was kept. See the workers' logs for why they died (often "
            "memory: give them more, or use more partitions)"
        ) from None
    except (NoWorkerError, NoValidWorkerError) as error:
        raise DaskEngineError(
            f"{what} failed: no Dask worker was alive for {error.timeout:g} s "
            "(they kept dying and were not restarted); no partial result was kept. See the "
            "workers' logs for why they died (often memory: give them more, or use more "
            "partitions)"
        ) from None
    except (CancelledError, CommClosedError) as error:
        raise DaskEngineError(
            f"{what} failed: the Dask cluster lost the computation ({type(error).__name__}: "
            f"{(str(error).splitlines() or [''])[0]}); no partial result was kept. Check "
            "that the scheduler is up and run again"
        ) from None


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Piece:
    """A part of one input table that one task reads."""

    path: str
    table: str
    csv: bool
    offset: int  # number of its first row in the table
    row_groups: tuple[int, ...] = ()
    columns: tuple[str, ...] = ()  # the folder's column order (its first file's)


def _plan(path: Path | str, table: str, piece_rows: int) -> tuple[list[_Piece], pd.DataFrame]:
    """The pieces of an input table and an empty frame of how they read. The same
    InputErrors as churnml.io.read_table, raised here before any work is sent out."""
    path = existing_input(path, table)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise InputError(f"{table}: the folder {path} holds no .parquet files")
    elif path.suffix.lower() == ".csv":
        if path.stat().st_size == 0:
            raise InputError(
                f"{path}: the file is empty; expected a header line with the {table} columns"
            )
        from churnml.io import _csv_header

        names = [name.strip() for name in _csv_header(path)]
        meta = pd.DataFrame({name: pd.Series(dtype=TEXT) for name in names})
        return [_Piece(str(path), table, True, 0)], meta
    elif path.suffix.lower() == ".parquet":
        files = [path]
    else:
        raise InputError(
            f"{table}: {path} is neither .csv nor .parquet nor a folder; "
            "rename it with the extension of its format"
        )
    pieces: list[_Piece] = []
    offset = 0
    columns: list[str] | None = None
    meta: pd.DataFrame | None = None
    for file in files:
        footer = _footer(file, table)
        empty = _to_pandas(footer.schema_arrow.empty_table())
        names = [str(name) for name in empty.columns]  # as pandas reads it: no index columns
        if columns is None:
            columns, meta = names, empty
        elif set(names) != set(columns):
            raise InputError(
                f"{file}: its columns differ from {files[0].name}'s; every file of a folder "
                "must have the same columns"
            )
        group: list[int] = []
        start, rows = offset, 0
        for index in range(footer.metadata.num_row_groups):
            group.append(index)
            rows += footer.metadata.row_group(index).num_rows
            if rows >= piece_rows:
                pieces.append(_Piece(str(file), table, False, start, tuple(group), tuple(columns)))
                start, group, offset, rows = start + rows, [], offset + rows, 0
        if group:
            pieces.append(_Piece(str(file), table, False, start, tuple(group), tuple(columns)))
            offset += rows
    if not pieces:  # no rows at all: one empty piece, so that the checks see the columns
        pieces.append(_Piece(str(files[0]), table, False, 0, (), tuple(columns or ())))
    assert meta is not None
    return pieces, meta[list(columns or [])]


def _footer(file: Path, table: str) -> pq.ParquetFile:
    if file.stat().st_size == 0:
        raise InputError(f"{file}: the file is empty; expected a Parquet file of {table}")
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0]
        raise InputError(f"{file}: not a readable Parquet file ({reason})") from None


def _to_pandas(arrow_table: pa.Table) -> pd.DataFrame:
    from churnml.io import _string_mapper

    frame = arrow_table.to_pandas(types_mapper=_string_mapper)
    if isinstance(frame.index, pd.RangeIndex):
        frame.index = pd.RangeIndex(len(frame))
    return frame


def _read_piece(piece: _Piece, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of one piece as churnml.io reads them (all of ``columns`` when given)."""
    if piece.csv:
        frame = read_table(piece.path, piece.table)
        return frame if columns is None else frame[list(columns)]
    wanted = list(columns) if columns is not None else list(piece.columns)
    try:
        footer = pq.ParquetFile(piece.path)
        if piece.row_groups:
            arrow_table = footer.read_row_groups(
                list(piece.row_groups), columns=wanted, use_pandas_metadata=True
            )
        else:
            arrow_table = footer.schema_arrow.empty_table().select(wanted)
    except (pa.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0]
        raise InputError(f"{piece.path}: not a readable Parquet file ({reason})") from None
    return _to_pandas(arrow_table)[wanted]


# --------------------------------------------------------------------------- checking


def _text_extras(meta: pd.DataFrame, table: str) -> list[str]:
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


def _piece_kinds(raw: pd.DataFrame) -> dict[str, str]:
    """For each column: "empty" (no value given), "number" or "text", as
    validation._profile_column decides on this piece alone."""
    kinds = {}
    for name in raw.columns:
        given = checks._as_text(raw[name]).notna().any()
        numeric = checks._profile_column(raw[name]).dtype == np.float64
        kinds[str(name).strip()] = "number" if numeric and given else "text" if given else "empty"
    return kinds


def _table_kinds(parts: list[dict[str, str]]) -> dict[str, str]:
    """The whole table's kind of each column: numeric when some piece has values and every
    piece with values is all numbers (validation._profile_column on the whole table)."""
    kinds: dict[str, str] = {}
    for part in parts:
        for name, kind in part.items():
            before = kinds.get(name, "empty")
            kinds[name] = kind if before == "empty" else "text" if kind == "text" else before
    return {name: "number" if kind == "number" else "text" for name, kind in kinds.items()}


def _type_piece(
    raw: pd.DataFrame, table: str, source: str, offset: int, kinds: dict[str, str]
) -> tuple[pd.DataFrame, list[checks.Breach]]:
    """Typed rows of one piece with their row number and reason to set aside, and the
    rules its rows break (rows numbered in the whole table)."""
    typed, breaches, _complete = checks._typed_table(raw, table, source)
    stripped = raw.rename(columns=lambda name: str(name).strip())
    for name, kind in kinds.items():
        if name not in typed.columns:
            continue
        numeric = typed[name].dtype == np.float64
        if kind == "text" and numeric:
            typed[name] = checks._as_text(stripped[name])
        elif kind == "number" and not numeric:  # a piece with no value: all missing
            typed[name] = pd.to_numeric(typed[name], errors="coerce").astype("float64")
    typed[REASON] = _reasons(checks._reasons_by_row(breaches, table, len(typed)), len(typed))
    typed[ROW] = np.arange(offset, offset + len(typed), dtype=np.int64)
    return typed, [replace(b, rows=b.rows + offset) for b in breaches]


def _reasons(reasons: dict[int, str], n: int) -> pd.Series:
    values = np.full(n, None, dtype=object)
    for row, reason in reasons.items():
        values[row] = reason
    return pd.Series(values, dtype=TEXT)


def _buckets(values: pd.Series, n: int) -> np.ndarray:
    """The partition of each value: its hash modulo n, the same in every process."""
    return (_string_hash(values) % np.uint64(n)).astype(np.int64)


def _string_hash(values: pd.Series) -> np.ndarray:
    """A 64-bit hash of each text value (missing: 0), from its UTF-8 bytes alone: a
    polynomial over the bytes (FNV prime) and a murmur finaliser, in numpy over the Arrow
    buffers (4x faster than pandas' hash_pandas_object, which goes through Python strings)."""
    array = pa.array(values.array) if hasattr(values.array, "__arrow_array__") else None
    if array is None:
        array = pa.array(values.to_numpy(dtype=object), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    _validity, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    start, stop = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, dtype=np.uint8)[start:stop].astype(np.uint64)
    lengths = np.diff(offsets)
    position = np.arange(stop - start, dtype=np.int64) - np.repeat(offsets[:-1] - start, lengths)
    powers = np.cumprod(np.full(max(int(lengths.max(initial=0)), 1), _PRIME, dtype=np.uint64))
    hashed = np.zeros(len(array), dtype=np.uint64)
    with np.errstate(over="ignore"):
        nonempty = lengths > 0
        if nonempty.any():
            terms = (data + np.uint64(1)) * powers[position]
            hashed[nonempty] = np.add.reduceat(terms, (offsets[:-1] - start)[nonempty])
        hashed ^= hashed >> np.uint64(33)
        hashed *= np.uint64(0xFF51AFD7ED558CCD)
        hashed ^= hashed >> np.uint64(33)
    if array.null_count:
        hashed[array.is_null().to_numpy(zero_copy_only=False)] = 0
    return hashed


def _split(frame: pd.DataFrame, column: str, n: int) -> list[pd.DataFrame]:
    """``frame`` cut into n parts by the hash of ``column``; rows keep their order."""
    bucket = _buckets(frame[column], n)
    order = np.argsort(bucket, kind="stable")
    ends = np.cumsum(np.bincount(bucket, minlength=n))
    starts = ends - np.bincount(bucket, minlength=n)
    ordered = frame.take(order)
    return [ordered.iloc[start:end] for start, end in zip(starts, ends, strict=True)]


def _split_ids(frame: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    return _split(frame[[INTERACTION_ID, ROW]], INTERACTION_ID, n)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Parts of the pieces in piece order: rows in table order."""
    return (
        pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    )


def _globalize(breach: checks.Breach, rows: np.ndarray) -> checks.Breach:
    return replace(breach, rows=rows[breach.rows])


def _duplicates(parts: list[pd.DataFrame], source: str) -> checks.Breach | None:
    """Later copies of interaction ids in one hash partition of the ids."""
    ids = _concat(parts)
    found = checks._unique(ids, "interactions", source, policy="set_aside")
    return _globalize(found[0], ids[ROW].to_numpy()) if found else None


def _dup_rows(found: list[checks.Breach | None]) -> tuple[np.ndarray, str]:
    rows = [b.rows for b in found if b is not None]
    reason = next((f"{b.problem}; {b.expected}" for b in found if b is not None), "")
    return (np.sort(np.concatenate(rows)) if rows else np.empty(0, np.int64)), reason


def _set_reason(reasons: np.ndarray, positions: np.ndarray, reason: str) -> None:
    """The first reason wins, as validation._reasons_by_row's setdefault."""
    free = positions[pd.isna(reasons[positions])]
    reasons[free] = reason


def _check_partition(
    customer_parts: list[pd.DataFrame],
    interaction_parts: list[pd.DataFrame],
    duplicates: tuple[np.ndarray, str],
    customers_source: str,
    interactions_source: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The rules across rows on one partition (all rows of its customers), and the rows
    kept; the same rules in the same order as validation.check_tables and apply_policy."""
    customers = _concat(customer_parts)
    interactions = _concat(interaction_parts)
    c_rows, i_rows = customers[ROW].to_numpy(), interactions[ROW].to_numpy()
    c_reason = customers[REASON].to_numpy(dtype=object, na_value=None)
    i_reason = interactions[REASON].to_numpy(dtype=object, na_value=None)
    breaches: list[checks.Breach] = []
    for breach in checks._unique(
        customers, "customers", customers_source, policy="stop"
    ) + checks._customer_timeline(customers, customers_source):
        breaches.append(_globalize(breach, c_rows))
        _set_reason(c_reason, breach.rows, f"{breach.problem}; {breach.expected}")
    dup_rows, dup_reason = duplicates
    if len(dup_rows):
        _set_reason(i_reason, np.flatnonzero(np.isin(i_rows, dup_rows)), dup_reason)
    for breach in checks._relations(customers, interactions, interactions_source, customers_source):
        breaches.append(_globalize(breach, i_rows))
        _set_reason(i_reason, breach.rows, f"{breach.problem}; {breach.expected}")
    c_bad = ~pd.isna(c_reason)
    if c_bad.any():  # interactions of a customer set aside go with it
        dropped = customers.loc[c_bad, CUSTOMER_ID].dropna().unique()
        orphans = np.flatnonzero(interactions[CUSTOMER_ID].isin(dropped).to_numpy())
        _set_reason(i_reason, orphans, "its customer was set aside")
    i_bad = ~pd.isna(i_reason)
    customers[REASON] = pd.Series(c_reason, dtype=TEXT)
    interactions[REASON] = pd.Series(i_reason, dtype=TEXT)
    kept_customers = customers.loc[~c_bad].drop(columns=[REASON]).reset_index(drop=True)
    kept_interactions = interactions.loc[~i_bad, [*INTERACTION_COLUMNS, ROW]]
    categories = {
        name: set(kept_customers[name].dropna().astype(str).unique())
        for name in kept_customers.columns
        if name != CUSTOMER_ID and isinstance(kept_customers[name].dtype, pd.StringDtype)
    }
    summary = {
        "breaches": breaches,
        "customer_rows": len(customers),
        "kept": (len(kept_customers), len(kept_interactions)),
        "set_aside": {"customers": customers.loc[c_bad], "interactions": interactions.loc[i_bad]},
        "categories": categories,
    }
    return kept_customers, kept_interactions.reset_index(drop=True), summary


def _rule_order(breach: checks.Breach) -> tuple[int, int, int]:
    """Where validation.check_tables lists a rule: cells of customers, cells of
    interactions (by column, then rule), then the rules across rows."""
    kind, _, column = breach.rule.partition(":")
    if kind in _CELL_RULES:
        names = [c.name for c in contract.TABLES[breach.table]]
        position = names.index(column) if column in names else -1
        return (0 if breach.table == "customers" else 1, position, _CELL_RULES.index(kind))
    rule = breach.rule if breach.rule in _TABLE_RULES else "no_rows"
    return (2 + _TABLE_RULES.index(rule), 0, 0)


def _merge(breaches: list[checks.Breach]) -> list[checks.Breach]:
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


def _stop_if_needed(breaches: list[checks.Breach], strict: bool) -> None:
    """validation.apply_policy's stop: the first stopping rule, and how many more."""
    stopping = [b for b in breaches if strict or b.policy == "stop"]
    if stopping:
        others = len(breaches) - 1
        suffix = f" (and {others} more broken rules: run churnml validate)" if others else ""
        raise ContractError(stopping[0].message() + suffix)


def _write_set_aside(frame: pd.DataFrame, table: str, folder: Path) -> Path:
    """The quarantine file of validation._write_quarantine: source_row, reason, the row."""
    frame = frame.sort_values(ROW, kind="stable")
    out = frame.drop(columns=[ROW, REASON]).reset_index(drop=True)
    out.insert(0, "quarantine_reason", frame[REASON].astype(object).to_numpy())
    out.insert(0, "source_row", frame[ROW].to_numpy() + 1)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return write_table(out, folder / f"{table}-{stamp}.csv")


# --------------------------------------------------------------------------- tables


@dataclass
class DaskTables:
    """Validated tables on the cluster: the kept rows, partitioned by customer (partition j
    of each table holds the same customers), with what was set aside.

    ``customers`` has every column of the validated customers table; ``interactions`` the
    columns ``build_features`` reads. Both carry the row's number in its table (column
    ``ROW``), which puts the results back in the local engine's order."""

    client: Client
    customers: dd.DataFrame
    interactions: dd.DataFrame
    partitions: int
    customer_rows: int
    interaction_rows: int
    categories: dict[str, tuple[str, ...]]  # text columns of the customers: sorted values
    set_aside: dict[str, int]
    quarantine_files: tuple[Path, ...] = ()
    meta: dict[str, pd.DataFrame] = field(default_factory=dict)

    def customers_frame(self) -> pd.DataFrame:
        """The kept customers as one pandas frame, in table order: ``Tables.customers``."""
        with _cluster_errors("collecting the customers"):
            frame = self.client.compute(self.customers).result()
        frame = frame.sort_values(ROW, kind="stable").drop(columns=[ROW])
        return frame.reset_index(drop=True)


def _partition_count(client: Client, interaction_rows: int | None) -> int:
    workers = sum(client.nthreads().values()) or 1
    wanted = math.ceil((interaction_rows or 0) / ROWS_PER_PARTITION)
    return max(2 * workers, wanted, 1)


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
) -> DaskTables:
    """``validation.load_tables`` on the cluster: read, check every rule, stop or set aside
    (the same messages, the same quarantine files), and keep the rows on the workers."""
    import dask.dataframe as dd
    from dask import delayed

    customers_path, interactions_path = Path(customers_path), Path(interactions_path)
    sources = {"customers": customers_path.name, "interactions": interactions_path.name}
    plans = {
        "customers": _plan(customers_path, "customers", piece_rows),
        "interactions": _plan(interactions_path, "interactions", piece_rows),
    }
    # Missing required columns stop before any row is read (the local engine stops too).
    empty = checks.check_tables(
        plans["customers"][1],
        plans["interactions"][1],
        customers_source=sources["customers"],
        interactions_source=sources["interactions"],
    )
    _stop_if_needed([b for b in empty.breaches if b.rule == "required_columns"], strict=False)
    no_rows = [b for b in empty.breaches if b.rule == "no_rows"]

    with _cluster_errors("reading the tables"):
        kinds: dict[str, dict[str, str]] = {}
        for table, (pieces, meta) in plans.items():
            extras = _text_extras(meta, table)
            kinds[table] = {}
            if extras and len(pieces) > 1:
                parts = [delayed(_piece_kinds)(delayed(_read_piece)(p, extras)) for p in pieces]
                kinds[table] = _table_kinds(list(client.compute(parts, sync=True)))

    interaction_rows = None
    if not plans["interactions"][0][0].csv:
        interaction_rows = sum(
            pq.ParquetFile(path).metadata.num_rows
            for path in {p.path for p in plans["interactions"][0]}
        )
    n = partitions or _partition_count(client, interaction_rows)
    if n < 1:
        raise ConfigError(f"partitions {n}: expected at least 1")

    with _cluster_errors("checking the tables"):
        typed: dict[str, list] = {}
        for table, (pieces, meta) in plans.items():
            raw = dd.from_map(_read_piece, pieces, meta=meta, enforce_metadata=False)
            typed[table] = [
                delayed(_type_piece, nout=2)(
                    part, table, sources[table], piece.offset, kinds[table]
                )
                for part, piece in zip(raw.to_delayed(), pieces, strict=True)
            ]
        split_c = [delayed(_split, nout=n)(t[0], CUSTOMER_ID, n) for t in typed["customers"]]
        split_i = [delayed(_split, nout=n)(t[0], CUSTOMER_ID, n) for t in typed["interactions"]]
        split_ids = [delayed(_split_ids, nout=n)(t[0], n) for t in typed["interactions"]]
        found = [
            delayed(_duplicates)([s[j] for s in split_ids], sources["interactions"])
            for j in range(n)
        ]
        duplicates = delayed(_dup_rows)(found)
        checked = [
            delayed(_check_partition, nout=3)(
                [s[j] for s in split_c],
                [s[j] for s in split_i],
                duplicates,
                sources["customers"],
                sources["interactions"],
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
    breaches += [b for s in summaries for b in s["breaches"]]
    if sum(s["customer_rows"] for s in summaries) == 0:
        breaches += no_rows
    breaches = _merge(breaches)
    try:
        _stop_if_needed(breaches, strict)
    except ContractError:
        client.cancel(kept)
        raise

    files: list[Path] = []
    counts = {}
    for table in ("customers", "interactions"):
        frames = [s["set_aside"][table] for s in summaries if len(s["set_aside"][table])]
        counts[table] = sum(len(frame) for frame in frames)
        if not frames:
            continue
        if quarantine_dir is None:
            client.cancel(kept)
            raise ContractError(
                f"{table}: {counts[table]} rows break the contract and there is no quarantine "
                "folder to set them aside; run churnml validate"
            )
        path = _write_set_aside(pd.concat(frames), table, quarantine_dir)
        files.append(path)
        if report is not None:
            report(f"set aside {counts[table]} {table} rows that break the contract: see {path}")

    metas = {
        table: _type_piece(meta.iloc[:0], table, sources[table], 0, kinds[table])[0]
        for table, (_pieces, meta) in plans.items()
    }
    customer_meta = metas["customers"].drop(columns=[REASON])
    interaction_meta = metas["interactions"][[*INTERACTION_COLUMNS, ROW]]
    categories: dict[str, set[str]] = {}
    for summary in summaries:
        for name, values in summary["categories"].items():
            categories.setdefault(name, set()).update(values)
    with dask.config.set(_LOCAL):
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


# --------------------------------------------------------------------------- features


def pinned_settings(tables: DaskTables, settings: FeatureSettings | None) -> FeatureSettings:
    """``settings`` with the categories of every categorical feature column pinned to the
    values of the whole customers table, as the local engine finds them unpinned."""
    settings = settings or FeatureSettings()
    pinned = dict(settings.categories)
    for column in CATEGORICAL_FEATURES:
        pinned.setdefault(column, tables.categories.get(column, ()))
    known = {column.name for column in contract.CUSTOMER_COLUMNS}
    columns = list(tables.meta["customers"].columns)
    if settings.profile_columns is None:
        extra = [c for c in columns if c not in known and c != ROW]
    else:
        extra = list(settings.profile_columns)
    for name in extra:
        if name not in settings.exclude_profile_columns and name in tables.categories:
            pinned.setdefault(PROFILE_PREFIX + name, tables.categories[name])
    return replace(settings, categories=tuple(pinned.items()))


def _features_part(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    day: pd.Timestamp,
    settings: FeatureSettings,
) -> pd.DataFrame:
    """features.build_features on one partition, with each row's number in the table."""
    rows = customers[ROW].to_numpy()
    customers = customers.drop(columns=[ROW])
    frame = build_features(customers, interactions.drop(columns=[ROW]), day, settings)
    frame[ROW] = rows[pd.Index(customers[CUSTOMER_ID]).get_indexer(frame.index)]
    return frame


def features_dask(
    tables: DaskTables,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> dd.DataFrame:
    """The features of every customer active on ``as_of``, lazily, one partition per
    customer partition (with a ROW column; ``collect`` gives the local engine's frame)."""
    import dask.dataframe as dd

    day = parse_as_of(as_of)
    settings = pinned_settings(tables, settings)
    meta = _features_part(tables.meta["customers"], tables.meta["interactions"], day, settings)
    with dask.config.set(_LOCAL):
        return dd.map_partitions(
            _features_part,
            tables.customers,
            tables.interactions,
            day,
            settings,
            meta=meta,
            align_dataframes=False,
            enforce_metadata=False,
        )


def collect(frame: dd.DataFrame, client: Client, what: str = "computing") -> pd.DataFrame:
    """A partitioned result as one pandas frame in the customers table's order; all of it
    or DaskEngineError."""
    with _cluster_errors(what):
        parts = client.gather(client.compute(frame.to_delayed()))
    if len(parts) != frame.npartitions:  # never expected: Dask returns all or raises
        raise DaskEngineError(f"{what} failed: {len(parts)} of {frame.npartitions} partitions")
    result = pd.concat(parts) if parts else frame._meta
    if not result[ROW].is_unique:
        raise DaskEngineError(f"{what} failed: a customer came back twice; run again")
    return result.sort_values(ROW, kind="stable").drop(columns=[ROW])


def build_features_dask(
    tables: DaskTables,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> pd.DataFrame:
    """``features.build_features`` of the validated tables, computed on the cluster: the
    same frame (index, columns, dtypes, values, row order)."""
    return collect(features_dask(tables, as_of, settings), tables.client, "building features")


# --------------------------------------------------------------------------- scores


class _Model:
    """Holds the model as one value of the task graph: sent once to each worker."""

    def __init__(self, model: ChurnModel) -> None:
        self.model = model


def _score_part(features: pd.DataFrame, holder: _Model) -> pd.DataFrame:
    model = holder.model
    x = model.prepare(features.drop(columns=[ROW]))
    if len(x):
        probability, reasons = model.explained_scores(x)
    else:
        probability, reasons = np.empty(0), []
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series(features.index.astype(str), dtype=TEXT).to_numpy(),
            "churn_probability": probability,
            "risk_band": model.risk_band(probability),
            "reasons": pd.Series(reasons, dtype=object).to_numpy(),
            ROW: features[ROW].to_numpy(),
        }
    )


def score_dask(
    model: ChurnModel, tables: DaskTables, as_of: dt.date | str | pd.Timestamp
) -> pd.DataFrame:
    """Scores of every customer active on ``as_of``, computed on the cluster: columns
    customer_id, churn_probability, risk_band and reasons (the model's drivers, a list of
    dicts per customer, as make_risk_list keeps them), in the customers table's order."""
    features = model_features_dask(model, tables, as_of)
    meta = _score_part(features._meta, _Model(model))
    with dask.config.set(_LOCAL):
        holder = dask.delayed(_Model(model), pure=False)
        scores = features.map_partitions(_score_part, holder, meta=meta, enforce_metadata=False)
    frame = collect(scores, tables.client, "scoring").reset_index(drop=True)
    if frame.empty:
        day = parse_as_of(as_of)
        raise DataError(f"no customer is active on {day:%Y-%m-%d}; pick a later --as-of")
    return frame


def score_file_frame(scores: pd.DataFrame, as_of: dt.date | str | pd.Timestamp) -> pd.DataFrame:
    """``score_dask``'s frame as ``churnml score`` writes it (ChurnModel.score_tables'
    columns): the reasons as text and codes, and the day."""
    frame = scores[[CUSTOMER_ID, "churn_probability", "risk_band"]].copy()
    frame["reasons"] = ["; ".join(d["text"] for d in row) for row in scores["reasons"]]
    frame["reason_codes"] = [",".join(d["code"] for d in row) for row in scores["reasons"]]
    frame["as_of"] = f"{parse_as_of(as_of):%Y-%m-%d}"
    return frame


# --------------------------------------------------------------------------- any per-partition work


def model_features_dask(
    model: ChurnModel, tables: DaskTables, as_of: dt.date | str | pd.Timestamp
) -> dd.DataFrame:
    """``features_dask`` with the model's feature settings (``ChurnModel.features_from_tables``
    on the cluster); ModelError for a model trained on a customer table."""
    from features.model import KIND_INTERACTIONS

    if model.kind != KIND_INTERACTIONS:
        from churnml.errors import ModelError

        raise ModelError(
            "this model was trained on a customer table; score it with --table, "
            "or pass a model trained on interaction logs"
        )
    settings = (
        FeatureSettings.from_dict(model.feature_settings)
        if model.feature_settings is not None
        else None
    )
    return features_dask(tables, as_of, settings)


def map_with_model(
    function: Callable[..., Any],
    model: ChurnModel,
    tables: DaskTables,
    as_of: dt.date | str | pd.Timestamp,
    *args: Any,
    what: str = "computing",
) -> list[Any]:
    """``function(model, features, customers, interactions, *args)`` on every partition,
    with the model's features of ``as_of``: one result per partition, in partition order,
    all of them or DaskEngineError. The frames are those the local engine holds for the
    partition's customers (no ROW column), so the function can be the local engine's own;
    the customers' index is their row number in the table (orders them across partitions).

    For work whose result is not a frame (counts, sums, a few values per customer):
    ``dd.map_partitions`` wants frames, so each partition is one delayed call on the
    partitions of the features and of both tables; the model goes once to each worker."""
    features = model_features_dask(model, tables, as_of)
    with dask.config.set(_LOCAL):
        holder = dask.delayed(_Model(model), pure=False)
        tasks = [
            dask.delayed(_call_with_model, pure=True)(function, holder, *parts, *args)
            for parts in zip(
                features.to_delayed(),
                tables.customers.to_delayed(),
                tables.interactions.to_delayed(),
                strict=True,
            )
        ]
    with _cluster_errors(what):
        results = tables.client.gather(tables.client.compute(tasks))
    if len(results) != tables.partitions:  # never expected: Dask returns all or raises
        raise DaskEngineError(f"{what} failed: {len(results)} of {tables.partitions} partitions")
    return list(results)


def _call_with_model(
    function: Callable[..., Any],
    holder: _Model,
    features: pd.DataFrame,
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    *args: Any,
) -> Any:
    # The customers' index is their row in the table: it orders results across partitions.
    order = pd.Index(customers[ROW].to_numpy(), dtype=np.int64)
    return function(
        holder.model,
        features.drop(columns=[ROW]),
        customers.drop(columns=[ROW]).set_axis(order),
        interactions.drop(columns=[ROW]).reset_index(drop=True),
        *args,
    )


def latest_contact_day(tables: DaskTables) -> dt.date | None:
    """The day of the latest kept contact (UTC), as the local engine's default --as-of;
    None when no contact is kept."""
    if not tables.interaction_rows:
        return None
    with _cluster_errors("finding the latest contact"):
        latest = tables.client.compute(tables.interactions["started_at"].max()).result()
    return None if pd.isna(latest) else pd.Timestamp(latest).date()
