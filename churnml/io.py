"""Reading and writing the contract's tables.

A table is a CSV file, a Parquet file or a folder of Parquet files, chosen by the
path (``.csv``, ``.parquet``, folder). Reading returns the table as it is in the
file, with CSV values kept as text, so that validation can report a value that
does not parse instead of guessing. Writing is atomic: a temporary file in the
target folder, renamed into place once complete, with the permissions of churnml's
state (``private_mode``). Every CSV churnml writes goes through ``csv_safe`` first: a text
cell that a spreadsheet would run as a formula gets a leading ``'`` (OWASP's advice).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churnml.errors import ConfigError, InputError

OUTPUT_SUFFIXES = (".csv", ".parquet")
# What makes Excel, LibreOffice or Sheets read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# pandas' default text dtype: Arrow-backed, missing values as NaN.
TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def existing_input(path: Path | str, table: str) -> Path:
    """``path`` as a Path; InputError naming the table when nothing is there."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{table}: {path} does not exist; pass an existing .csv file, .parquet file "
            "or folder of Parquet files"
        )
    return path


def read_table(path: Path | str, table: str) -> pd.DataFrame:
    """Read one input table as stored; raise InputError when it cannot be read at all."""
    path = existing_input(path, table)
    if path.is_dir():
        return _read_parquet_folder(path, table)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, table)
    if suffix == ".parquet":
        return _read_parquet_file(path, table)
    raise InputError(
        f"{table}: {path} is neither .csv nor .parquet nor a folder; "
        "rename it with the extension of its format"
    )


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError(
            f"{path}: the file is empty; expected a header line with the {table} columns"
        )
    header = csv_header(path)
    names = [name.strip() for name in header]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InputError(f"{path}: column {repeated[0]!r} appears more than once in the header")
    try:
        arrow_table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0]
        if "UTF8" in reason or "utf-8" in reason.lower():
            raise InputError(
                f"{path}: the file is not UTF-8 text; re-export it as UTF-8 CSV"
            ) from None
        raise InputError(f"{path}: not a readable CSV file ({reason})") from None
    return arrow_table.to_pandas(types_mapper=string_mapper)


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's header line; InputError when it is not one."""
    with open(path, "rb") as handle:
        first = handle.readline()
    if b"\x00" in first:
        raise InputError(
            f"{path}: this is a binary file, not CSV; export the table as CSV or Parquet"
        )
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the file is not UTF-8 text; re-export it as UTF-8 CSV") from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise InputError(
            f"{path}: the first line is blank; expected a header line with column names"
        )
    if "," not in text and "\t" in text:
        raise InputError(f"{path}: the header is tab-separated; churnml reads comma-separated CSV")
    import csv

    return next(csv.reader([text]))


def string_mapper(arrow_type: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    """Arrow's text types as ``TEXT`` (``to_pandas(types_mapper=...)``), as files are read."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return TEXT
    return None


def arrow_to_pandas(arrow_table: pa.Table) -> pd.DataFrame:
    """A Parquet file's table as pandas, text as ``TEXT``. Binary and nested columns
    (lists, structs, maps) come as stored, bytes and arrays, whatever the file's pandas
    metadata claims (a binary column said to hold str fails to convert at its first byte
    that is not UTF-8): validation then tells which values or column it cannot read."""
    index_columns = {
        name
        for name in (arrow_table.schema.pandas_metadata or {}).get("index_columns", [])
        if isinstance(name, str)
    }
    as_stored = [
        field.name
        for field in arrow_table.schema
        if field.name not in index_columns and _kept_as_stored(field.type)
    ]
    if not as_stored:
        return arrow_table.to_pandas(types_mapper=string_mapper)
    frame = arrow_table.drop_columns(as_stored).to_pandas(types_mapper=string_mapper)
    converted = iter(frame.columns)
    order = [
        name if name in as_stored else next(converted)
        for name in arrow_table.column_names
        if name not in index_columns
    ]
    for name in as_stored:
        frame[name] = arrow_table.column(name).to_numpy(zero_copy_only=False)
    return frame[order]


def _kept_as_stored(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
        or pa.types.is_nested(arrow_type)
    )


def _read_parquet_file(path: Path, table: str) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty; expected a Parquet file of {table}")
    try:
        return arrow_to_pandas(pq.read_table(path))
    except (pa.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0]
        raise InputError(f"{path}: not a readable Parquet file ({reason})") from None


def _read_parquet_folder(path: Path, table: str) -> pd.DataFrame:
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise InputError(f"{table}: the folder {path} holds no .parquet files")
    frames = [_read_parquet_file(file, table) for file in files]
    columns = list(frames[0].columns)
    for file, frame in zip(files, frames, strict=True):
        if set(frame.columns) != set(columns):
            raise InputError(
                f"{file}: its columns differ from {files[0].name}'s; every file of a folder "
                "must have the same columns"
            )
    return pd.concat([frame[columns] for frame in frames], ignore_index=True)


def check_output_path(path: Path | str) -> Path:
    """Return ``path`` when churnml can write a table there; ConfigError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {path}: use a .csv or .parquet file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ConfigError(f"--out {path}: the folder {parent} does not exist; create it first")
    if path.is_dir():
        raise ConfigError(
            f"--out {path}: this is a folder; give a file name ending in .csv or .parquet"
        )
    return path


def write_table(frame: pd.DataFrame, path: Path | str, *, index: bool = False) -> Path:
    """Write ``frame`` to ``path`` (format from the extension), atomically."""
    path = check_output_path(path)
    suffix = path.suffix.lower()

    def write(target: Path) -> None:
        if suffix == ".csv":
            csv_safe(frame).to_csv(target, index=index, date_format="%Y-%m-%dT%H:%M:%SZ")
        else:
            frame.to_parquet(target, index=index)

    atomic_write(path, write)
    return path


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` ready for a CSV file: each text cell, column name and index label that
    starts with ``FORMULA_STARTS`` gets a leading ``'``, so that a spreadsheet shows it as
    text instead of running it (``=HYPERLINK(...)``, ``@SUM(...)``, ``-1+1``). Numbers,
    dates and booleans are left alone (-0.5 in a number column stays -0.5); the frame is
    not changed. Parquet files keep the raw values: no spreadsheet runs them."""
    safe = frame.copy(deep=False)
    safe.columns = [_safe_cell(name) for name in frame.columns]
    for position in range(safe.shape[1]):
        values = safe.iloc[:, position]
        if _holds_text(values):
            safe.isetitem(position, _safe_text(values))
    if _holds_text(safe.index.to_series()):
        safe.index = pd.Index(_safe_text(safe.index.to_series()), name=safe.index.name)
    return safe


def _holds_text(values: pd.Series) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _holds_text(pd.Series(dtype.categories))
    return pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)


def _safe_text(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories
        return values.cat.rename_categories([_safe_cell(c) for c in categories])
    starts = values.str.startswith(FORMULA_STARTS)
    risky = starts.fillna(False).to_numpy(dtype=bool)  # non-text cells give NA: left alone
    if not risky.any():
        return values
    values = values.astype(object)
    values[risky] = ["'" + text for text in values[risky]]
    return values


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The file gets the mode a new file gets under the process's umask (0600 under churnml's
    default, ``churnml.settings``); mkstemp's own 0600 would ignore a wider one."""
    with _temporary_beside(path) as tmp:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)  # elsewhere: set and restore at once
    os.umask(umask)
    return umask


@contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    descriptor, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or "."
    )
    os.close(descriptor)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        if tmp.exists():
            tmp.unlink()


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table: its column names and every value, in row order.

    SHA-256 over each column's Arrow buffers, copied into one fresh array first so that
    slices and chunking do not change the hash (1-2 s for 10^7 contacts; pandas'
    hash_pandas_object took 17 s)."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(f"rows={len(frame)}".encode())
    for name in frame.columns:
        values = frame[name]
        try:
            array = pa.array(values, from_pandas=True)
            chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
            # Concatenating copies into one array at offset 0, however it was chunked.
            array = pa.concat_arrays([*chunks, pa.array([], array.type)])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            digest.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
            continue
        digest.update(str(array.type).encode())
        for buffer in array.buffers():
            if buffer is not None:
                digest.update(buffer)
    return digest.hexdigest()


# A content hash that can be computed in parts: what the Dask engine gives per partition
# adds up to what one process gives for the whole table.
CONTENT_HASH = "rowsum64"  # the method's name, written before the value
_MISSING_VALUE = np.uint64(0x9E3779B97F4A7C15)  # stands for a missing value of any type
_ROW_PRIME = np.uint64(1_099_511_628_211)


@dataclass(frozen=True)
class ContentHash:
    """The row count and the sum (modulo 2^64) of the 64-bit hashes of the rows of a table.

    A row's hash depends on its values in the chosen columns and on the columns' names,
    never on the row's position, the dtype that holds a value (text in a str or object
    column, a date at any datetime resolution, an integer or a float of the same value),
    nor on how the table is split: the hash of a table is the sum of its parts' hashes.
    So it tells whether two runs saw the same rows (as a multiset), whichever engine read
    them; it is a checksum against mistakes, not a defence against a forger. Values:
    text by SipHash-2-4 of its UTF-8 bytes (``pandas.util.hash_array``'s, fixed key),
    timestamps by their nanoseconds since 1970 UTC, numbers and booleans by their float64
    bits (-0.0 as 0.0), each mixed with the column name's hash (splitmix64)."""

    rows: int = 0
    total: int = 0

    def __add__(self, other: ContentHash) -> ContentHash:
        return ContentHash(self.rows + other.rows, (self.total + other.total) % 2**64)

    @property
    def text(self) -> str:
        """``rowsum64:`` and the sum as 16 hex digits."""
        return f"{CONTENT_HASH}:{self.total:016x}"


def content_hash(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> ContentHash:
    """``ContentHash`` of ``frame`` over ``columns`` (default: all), those it has."""
    chosen = sorted(str(c) for c in (frame.columns if columns is None else columns))
    chosen = [c for c in chosen if c in frame.columns]
    rows = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in chosen:
            salt = pd.util.hash_array(np.array([name], dtype=object), categorize=False)[0]
            rows = _mix(rows * _ROW_PRIME + _mix(_value_hashes(frame[name]) ^ salt))
        total = int(np.add.reduce(rows, dtype=np.uint64)) if len(rows) else 0
    return ContentHash(len(frame), total)


def _value_hashes(values: pd.Series) -> np.ndarray:
    """One uint64 per value, the same for the same value whatever the column's dtype."""
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz else values
        nanos = stamps.to_numpy(dtype="datetime64[ns]").view(np.int64).view(np.uint64).copy()
        nanos[values.isna().to_numpy()] = _MISSING_VALUE
        return nanos
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 -> 0.0
        bits = numbers.view(np.uint64).copy()
        bits[np.isnan(numbers)] = _MISSING_VALUE
        return bits
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([u if isinstance(u, str) else str(u) for u in uniques], dtype=object)
    hashed = pd.util.hash_array(texts, categorize=False) if len(texts) else np.empty(0, np.uint64)
    return np.where(codes >= 0, hashed[np.maximum(codes, 0)] if len(texts) else 0, _MISSING_VALUE)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))
