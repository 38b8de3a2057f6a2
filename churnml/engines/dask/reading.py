"""Planned reading: the pieces of an input table that the tasks read.

A Parquet file is read in pieces of whole row groups (about ``piece_rows`` rows each), a
folder of Parquet files file by file in name order (big files in pieces too), a CSV file as
one piece (CSV cannot be split safely at line breaks: quoted fields may hold them; use
Parquet for big tables). Every piece knows the number of its first row in the table, from
the Parquet footers, so rows keep their table-wide number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnml.errors import InputError
from churnml.io import TEXT, arrow_to_pandas, csv_header, existing_input, read_table

PIECE_ROWS = 1_000_000


@dataclass(frozen=True)
class Piece:
    """A part of one input table that one task reads."""

    path: str
    table: str
    csv: bool
    offset: int  # number of its first row in the table
    row_groups: tuple[int, ...] = ()
    columns: tuple[str, ...] = ()  # the folder's column order (its first file's)


def plan(path: Path | str, table: str, piece_rows: int) -> tuple[list[Piece], pd.DataFrame]:
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
        names = [name.strip() for name in csv_header(path)]
        meta = pd.DataFrame({name: pd.Series(dtype=TEXT) for name in names})
        return [Piece(str(path), table, True, 0)], meta
    elif path.suffix.lower() == ".parquet":
        files = [path]
    else:
        raise InputError(
            f"{table}: {path} is neither .csv nor .parquet nor a folder; "
            "rename it with the extension of its format"
        )
    pieces: list[Piece] = []
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
                pieces.append(Piece(str(file), table, False, start, tuple(group), tuple(columns)))
                start, group, offset, rows = start + rows, [], offset + rows, 0
        if group:
            pieces.append(Piece(str(file), table, False, start, tuple(group), tuple(columns)))
            offset += rows
    if not pieces:  # no rows at all: one empty piece, so that the checks see the columns
        pieces.append(Piece(str(files[0]), table, False, 0, (), tuple(columns or ())))
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
    frame = arrow_to_pandas(arrow_table)
    if isinstance(frame.index, pd.RangeIndex):
        frame.index = pd.RangeIndex(len(frame))
    return frame


def read_piece(piece: Piece, columns: Sequence[str] | None = None) -> pd.DataFrame:
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
