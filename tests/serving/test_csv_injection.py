"""CSV formula injection: a customer id or profile value that a spreadsheet would run as a
formula comes out of every CSV churnml writes with a leading ``'``; Parquet keeps it raw."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from churnml.cli import main
from churnml.io import csv_safe, write_table
from tests.integration.servers import churnml_serve
from tests.serving.helpers import API_KEY, SAMPLE, environment, service_env

AS_OF = "2026-06-01"
FORMULA_ID = '=HYPERLINK("http://x")'
FORMULA_SEGMENT = "@SUM(1)"


@pytest.fixture(scope="module")
def formula_world(tmp_path_factory) -> tuple[Path, Path]:
    """The sample world with one active customer renamed to a formula and in a formula
    segment."""
    folder = tmp_path_factory.mktemp("formula-world")
    customers = pd.read_csv(SAMPLE / "customers.csv", dtype=str, keep_default_na=False)
    interactions = pd.read_csv(SAMPLE / "interactions.csv", dtype=str, keep_default_na=False)
    active = (customers["signup_date"] <= AS_OF) & (
        (customers["churned_at"] == "") | (customers["churned_at"] > AS_OF)
    )
    victim = customers.loc[active, "customer_id"].iloc[0]
    customers.loc[customers["customer_id"] == victim, "segment"] = FORMULA_SEGMENT
    customers["customer_id"] = customers["customer_id"].replace(victim, FORMULA_ID)
    interactions["customer_id"] = interactions["customer_id"].replace(victim, FORMULA_ID)
    customers.to_csv(folder / "customers.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    return folder / "customers.csv", folder / "interactions.csv"


@pytest.fixture(scope="module")
def stored_list(formula_world, registry_home, tmp_path_factory) -> dict[str, Path | str]:
    """`churnml risk-list --out` of the formula world, to CSV and to Parquet, in a store
    of its own (the registry's champion scores it)."""
    folder = tmp_path_factory.mktemp("formula-list")
    customers, interactions = formula_world
    store = f"sqlite:///{folder / 'lists.db'}"
    outputs = {"store": store}
    with environment({"CHURNML_HOME": str(registry_home)}):
        for suffix in ("csv", "parquet"):
            out = folder / f"list.{suffix}"
            args = ["risk-list", "--as-of", AS_OF, "--customers", str(customers)]
            args += ["--interactions", str(interactions), "--store", store]
            with pytest.raises(SystemExit) as exited:
                main([*args, "--out", str(out), "--quiet"])
            assert exited.value.code in (0, None)
            outputs[suffix] = out
    return outputs


def _cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _row_of(rows: list[dict[str, str]], customer: str) -> dict[str, str]:
    found = [row for row in rows if row["customer_id"] == customer]
    assert len(found) == 1, f"{customer} not exported once"
    return found[0]


def test_risk_list_out_csv_neutralises_a_formula_id_and_segment(stored_list):
    rows = _cells(Path(stored_list["csv"]).read_text())
    row = _row_of(rows, "'" + FORMULA_ID)
    assert row["segment"] == "'" + FORMULA_SEGMENT
    assert not any(cell.startswith(("=", "@")) for r in rows for cell in r.values())


def test_risk_list_out_parquet_keeps_the_raw_values(stored_list):
    frame = pd.read_parquet(stored_list["parquet"])
    row = frame[frame["customer_id"] == FORMULA_ID]
    assert len(row) == 1
    assert row["segment"].iloc[0] == FORMULA_SEGMENT


def test_risk_list_csv_endpoint_neutralises_a_formula_id_and_segment(
    stored_list, registry_home, tmp_path
):
    # The real `churnml serve` over HTTP: a second ASGI app in this process would register
    # BentoML's metrics twice (the module fixture `client` of other tests holds one).
    env = {
        **os.environ,
        **service_env(registry_home, CHURNML_RISK_STORE=str(stored_list["store"])),
    }
    with churnml_serve(env, tmp_path / "serve.log", start_seconds=120) as url:
        answer = httpx.get(
            f"{url}/risk-list.csv",
            params={"scope": "all"},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    rows = _cells(answer.text)
    row = _row_of(rows, "'" + FORMULA_ID)
    assert row["segment"] == "'" + FORMULA_SEGMENT
    # Numbers stay numbers: every probability reads back as a float.
    assert all(0.0 <= float(r["churn_probability"]) <= 1.0 for r in rows)


@pytest.mark.parametrize(
    "cell",
    ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1)", "-1+1", "\tx", "\rx"],
)
def test_each_formula_start_gets_a_quote(cell):
    frame = pd.DataFrame({"customer_id": [cell, "C1"]})
    assert csv_safe(frame)["customer_id"].tolist() == ["'" + cell, "C1"]


def test_a_negative_number_column_is_untouched(tmp_path):
    frame = pd.DataFrame({"customer_id": ["-C1", "C2"], "score": [-0.5, 1.25]})
    out = write_table(frame, tmp_path / "scores.csv")
    lines = out.read_text().splitlines()
    assert lines == ["customer_id,score", "'-C1,-0.5", "C2,1.25"]


def test_a_formula_column_name_is_neutralised_too(tmp_path):
    out = write_table(pd.DataFrame({"=cmd": [1]}), tmp_path / "x.csv")
    assert out.read_text().splitlines()[0] == "'=cmd"


def test_the_quarantine_file_neutralises_what_it_sets_aside(tmp_path):
    from churnml.validation import write_quarantine

    rows = pd.DataFrame({"customer_id": ["=1+1"], "signup_date": ["@yesterday"]})
    path = write_quarantine(rows, np.array([0]), ["signup_date that is not a date"], "c", tmp_path)
    row = _cells(path.read_text())[0]
    assert row["customer_id"] == "'=1+1" and row["signup_date"] == "'@yesterday"
