"""The exports agree: ``churnml risk-list --out`` and ``GET /risk-list.csv`` (its reader,
``Lists.csv``) write the same columns in the same order, by one writer, rounded for people,
with the currency named; the drift warning and departures in a retention lead's words."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.cli import main
from churnml.errors import ConfigError
from churnml.validation import load_tables
from serving.export import (
    EXPORT_COLUMNS,
    OPTIONAL_COLUMNS,
    csv_text,
    export_table,
    significant,
    write_export,
)
from serving.lists import Filters, Lists
from serving.loading import load_served_model
from serving.risklist import drift_in_words, export_frame, make_risk_list
from serving.settings import RiskListSettings, ServingSettings
from serving.store import RiskListStore
from tests.serving.helpers import SAMPLE, environment

DAY1, DAY2 = dt.date(2026, 6, 10), dt.date(2026, 6, 17)
CONTRACT_COLUMNS = ["customer_id", "churn_probability", "risk_band", "rank", "reason_1"]
# The sample model has a call-effect head: its columns and the day's group follow
# revenue_at_risk (contract v1.1).
_AT = EXPORT_COLUMNS.index("revenue_at_risk") + 1
WITH_CALL_EFFECT = [*EXPORT_COLUMNS[:_AT], *OPTIONAL_COLUMNS, *EXPORT_COLUMNS[_AT:]]


@pytest.fixture(scope="module")
def made(registry_home: Path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )
    store = RiskListStore(f"sqlite:///{folder / 'lists.db'}")
    settings = RiskListSettings(capacity=30)
    first = make_risk_list(tables.customers, tables.interactions, DAY1, served, store, settings)
    second = make_risk_list(tables.customers, tables.interactions, DAY2, served, store, settings)
    return folder, store, first, second


@pytest.mark.parametrize("scope", ["all", "list"])
def test_out_and_the_csv_endpoint_write_the_same_file(made, scope: str) -> None:
    folder, store, _, result = made
    out = write_export(export_frame(result, currency="GBP", scope=scope), folder / f"{scope}.csv")
    _, served = Lists(folder, store.url).csv(Filters(scope=scope), None, "GBP")
    assert out.read_text() == served
    rows = list(csv.DictReader(io.StringIO(served)))
    on = int(result.frame["on_list"].sum())
    assert len(rows) == (on if scope == "list" else len(result.frame))


def test_the_columns_their_order_and_their_rounding(made) -> None:
    folder, store, _, result = made
    _, text = Lists(folder, store.url).csv(Filters(scope="all"), None, "EUR")
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == WITH_CALL_EFFECT
    assert set(CONTRACT_COLUMNS) <= set(reader.fieldnames)
    rows = list(reader)
    assert {r["currency"] for r in rows} == {"EUR"}
    for row in rows:
        p = row["churn_probability"]
        assert len(p.replace("0.", "", 1).lstrip("0")) <= 4, p  # 4 significant digits
        for money in ("monthly_revenue", "revenue_at_risk"):
            if row[money]:
                assert len(row[money].partition(".")[2]) <= 2, row[money]
        for flag in ("thin_history", "on_list", "suppressed"):
            assert row[flag] in ("true", "false")
        assert row["previous_rank"] == "" or row["previous_rank"].isdigit()
    stored = result.frame.set_index("customer_id")["churn_probability"]
    for row in rows[:50]:
        assert float(row["churn_probability"]) == pytest.approx(
            stored[row["customer_id"]], rel=5e-4
        )


def test_parquet_keeps_the_same_columns_with_native_booleans(made) -> None:
    folder, _, _, result = made
    path = write_export(export_frame(result, currency="EUR"), folder / "list.parquet")
    table = pd.read_parquet(path)
    assert list(table.columns) == WITH_CALL_EFFECT
    assert table["on_list"].dtype == bool and table["currency"].eq("EUR").all()


def test_rounding_for_people() -> None:
    values = np.array([0.123456, 0.000123456, 0.99995, 0.0, np.nan, 1.0])
    rounded = significant(values, 4)
    assert rounded[:4].tolist() == [0.1235, 0.0001235, 1.0, 0.0] and np.isnan(rounded[4])
    rows = pd.DataFrame(
        {
            "customer_id": ["C1"],
            "rank": [1],
            "segment": [None],
            "plan": ["basic"],
            "monthly_revenue": [19.999],
            "churn_probability": [0.4567891],
            "risk_band": ["high"],
            "thin_history": [False],
            "revenue_at_risk": [109.61234],
            "reasons": [[{"code": "waiting", "text": "waited long"}]],
            "action": ["call"],
            "on_list": [True],
            "change": [None],
            "previous_rank": [None],
            "previous_probability": [None],
            "suppressed": [False],
            "last_contacted": [None],
        }
    )
    text = csv_text(export_table(rows, "2026-06-17", "3", "USD"))
    assert text.splitlines()[1] == (
        "2026-06-17,C1,1,,basic,USD,20.0,0.4568,high,false,109.61,waited long,,,waiting,"
        "call,true,,,,false,,3"
    )


def test_the_currency_is_a_setting_with_a_one_line_error() -> None:
    assert RiskListSettings.from_env({}).currency == "EUR"
    assert RiskListSettings.from_env({"CHURNML_CURRENCY": "USD"}).currency == "USD"
    env = {"CHURNML_CURRENCY": "dollars", "CHURNML_AUTH": "off"}
    for build in (RiskListSettings.from_env, ServingSettings.from_env):
        with pytest.raises(ConfigError) as error:
            build(env)
        assert str(error.value).startswith("CHURNML_CURRENCY='dollars': expected a three-letter")


def test_out_scope_needs_out(registry_home: Path, capsys) -> None:
    with environment({"CHURNML_HOME": str(registry_home)}), pytest.raises(SystemExit) as done:
        main(["risk-list", "--as-of", f"{DAY2}", "--out-scope", "list", "--quiet"])
    assert done.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--out-scope is for the export: add --out FILE (.csv or .parquet)")


def test_the_command_writes_the_list_scope(made, registry_home: Path, capsys) -> None:
    folder, store, _, _ = made
    out = folder / "command.csv"
    args = ["risk-list", "--as-of", f"{DAY2}", "--capacity", "30", "--store", store.url]
    args += ["--customers", str(SAMPLE / "customers.csv")]
    args += ["--interactions", str(SAMPLE / "interactions.csv")]
    with environment({"CHURNML_HOME": str(registry_home), "CHURNML_CURRENCY": "CHF"}):
        with pytest.raises(SystemExit) as done:
            main([*args, "--out", str(out), "--out-scope", "list", "--quiet"])
    assert done.value.code in (0, None), capsys.readouterr().err
    _, served = Lists(folder, store.url).csv(Filters(scope="list"), None, "CHF")
    assert out.read_text() == served


# -- words -----------------------------------------------------------------------------------
def test_the_drift_warning_names_families_in_words_not_columns() -> None:
    moved = ["wait_p90_seconds_30d", "long_waits_7d", "oldest_open_case_age_days", "profile_x"]
    words = drift_in_words(moved)
    assert words == (
        "customers differ from the training data in how long customers wait, and how "
        "often they give up waiting (2 measures); account facts (tenure, plan, segment, "
        "revenue); how many cases stay open or escalated, and for how long"
    )
    assert not any(column in words for column in moved) and "_" not in words


def test_the_stored_drift_warnings_have_no_column_names(made) -> None:
    _, _, _, result = made
    drift = result.header["drift"]
    for warning in drift["warnings"]:
        assert not any(column in warning for column in drift["psi_over"]), warning


def test_a_departure_who_left_says_churned_on(made) -> None:
    _, _, _, result = made
    whys = result.departures["why"].tolist()
    assert not any(w.startswith("left on") for w in whys)
    assert all(w.startswith(("churned on ", "now rank", "not active")) for w in whys), whys
