"""Input tables for the Dask engine's tests: the sample world as CSV or as a folder of
Parquet files in several pieces, optionally with rows that break the contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
AS_OF = "2026-06-01"


def sample_text() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample world's tables as text, as a CRM export holds them."""
    read = {"dtype": str, "keep_default_na": False}
    return (
        pd.read_csv(SAMPLE / "customers.csv", **read),
        pd.read_csv(SAMPLE / "interactions.csv", **read),
    )


def break_rules(customers: pd.DataFrame, interactions: pd.DataFrame) -> None:
    """Rows that break set-aside rules, in place: one per rule, spread over the tables."""
    customers.loc[10, "monthly_revenue"] = "lots"  # not a number
    customers.loc[2000, "churned_at"] = "2000-01-01"  # churned before signup: with its contacts
    customers.loc[3000, "monthly_revenue"] = "-5"  # negative
    # Extra columns: numbers everywhere except one text in the last file; numbers everywhere.
    customers["loyalty"] = [str(i % 7) for i in range(len(customers))]
    customers.loc[len(customers) - 5, "loyalty"] = "gold"
    customers["score"] = [f"{i / 10:.1f}" for i in range(len(customers))]
    interactions.loc[5, "wait_seconds"] = "-3"  # negative
    interactions.loc[7000, "channel"] = "pigeon"  # unknown
    interactions.loc[9000, "csat"] = "9"  # out of range
    interactions.loc[12000, "started_at"] = "yesterday"  # not a timestamp
    interactions.loc[15000, "customer_id"] = "C999999"  # no such customer
    # A repeated interaction id, of another customer, far later in the table.
    interactions.loc[30000, "interaction_id"] = interactions.loc[100, "interaction_id"]
    signup = customers.set_index("customer_id")["signup_date"]
    late_customer = customers.loc[customers["signup_date"] > "2025-06-01", "customer_id"].iloc[0]
    row = interactions.index[interactions["customer_id"] == late_customer][0]
    interactions.loc[row, "started_at"] = "2025-01-01T00:00:00Z"  # before signup
    assert signup[late_customer] > "2025-01-01"


def write_parquet_folder(frame: pd.DataFrame, folder: Path, files: int, row_group: int) -> Path:
    """``frame`` (text) as ``files`` Parquet files of row groups of ``row_group`` rows."""
    folder.mkdir(parents=True)
    size = -(-len(frame) // files)
    for index in range(files):
        part = frame.iloc[index * size : (index + 1) * size]
        table = pa.Table.from_pandas(part.astype(object), preserve_index=False)
        table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
        pq.write_table(table, folder / f"part-{index:02d}.parquet", row_group_size=row_group)
    return folder
