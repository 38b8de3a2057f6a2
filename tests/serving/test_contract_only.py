"""Customers as the contract alone describes them: a customers table without the sample's
extra profile columns (``contract_type``, ``region``, ``payment_method``), and customers
with no contact at all. The batch commands count the rows lacking each field the model was
trained on almost always having (the fields ``POST /score`` warns about) and the list
stores the counts; a missing value is never a reason, and never puts a customer in the
high band alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from churnml.cli import main
from churnml.validation import load_tables
from model.predictor import Predictor
from model.schema import warned_fields
from serving.lists import Filters, Lists
from serving.risklist import make_risk_list
from serving.settings import RiskListSettings
from serving.store import RiskListStore
from tests.serving.helpers import SAMPLE

# The columns ../shared/contract.md names for the customers table.
CONTRACT_COLUMNS = [
    "customer_id",
    "signup_date",
    "churned_at",
    "segment",
    "plan",
    "monthly_revenue",
]
DAY = dt.date(2026, 6, 10)
PROFILE_FAMILY = "profile"


@pytest.fixture(scope="module")
def contract_files(tmp_path_factory) -> tuple[Path, Path]:
    """The sample's customers written with the contract's columns alone, and its contacts."""
    folder = tmp_path_factory.mktemp("contract-only")
    customers = pd.read_csv(SAMPLE / "customers.csv", dtype=str)[CONTRACT_COLUMNS]
    customers.to_csv(folder / "customers.csv", index=False)
    return folder / "customers.csv", SAMPLE / "interactions.csv"


@pytest.fixture(scope="module")
def contract_tables(contract_files):
    return load_tables(*contract_files)


@pytest.fixture(scope="module")
def sample_tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


def lacked(served, table_columns) -> list[str]:
    """The warned fields a table with these columns lacks, in the schema's order."""
    return [f.name for f in warned_fields(served.model.input_schema) if f.name not in table_columns]


def test_the_sample_model_warns_about_the_profile_fields_the_contract_does_not_name(
    served,
) -> None:
    assert {"contract_type", "region", "payment_method"} <= set(lacked(served, CONTRACT_COLUMNS))


def test_the_list_stores_and_prints_how_many_rows_lacked_each_field(
    contract_tables, served, tmp_path
) -> None:
    store = RiskListStore(f"sqlite:///{tmp_path / 'lists.db'}")
    result = make_risk_list(
        contract_tables.customers,
        contract_tables.interactions,
        DAY,
        served,
        store,
        RiskListSettings(capacity=20),
    )
    scored = result.header["scored"]
    expected = dict.fromkeys(lacked(served, CONTRACT_COLUMNS), scored)
    assert result.header["lacking_fields"] == expected
    assert store.header()["lacking_fields"] == expected
    assert Lists(tmp_path, store.url).page(Filters(), 5)["lacking_fields"] == expected
    lines = [line for line in result.summary().splitlines() if "warning: of" in line]
    assert len(lines) == 1
    assert all(f"{name} {scored:,}" in lines[0] for name in expected)


def test_a_list_of_complete_profiles_stores_no_count(sample_tables, served, tmp_path) -> None:
    tables = sample_tables
    store = RiskListStore(f"sqlite:///{tmp_path / 'lists.db'}")
    result = make_risk_list(
        tables.customers, tables.interactions, DAY, served, store, RiskListSettings()
    )
    assert result.header["lacking_fields"] == {}
    assert store.header()["lacking_fields"] == {}
    assert "warning: of" not in result.summary()


@pytest.fixture()
def command_env(registry_home: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("CHURNML_HOME", str(registry_home))
    monkeypatch.setenv("CHURNML_RISK_STORE", f"sqlite:///{tmp_path / 'command.db'}")
    return tmp_path


def call(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.mark.parametrize("command", ["score", "risk-list"])
def test_the_batch_commands_print_one_line_of_the_rows_lacking_each_field(
    capsys, command_env, contract_files, served, command: str
) -> None:
    customers, interactions = contract_files
    out_file = command_env / "out.csv"
    args = [command, "--customers", str(customers), "--interactions", str(interactions)]
    code, out, err = call(capsys, *args, "--as-of", f"{DAY}", "--out", str(out_file), "-q")
    assert code == 0, err
    lines = [line for line in out.splitlines() if "warning: of" in line]
    assert len(lines) == 1, out
    scored = len(pd.read_csv(out_file))
    assert f"warning: of {scored:,} rows scored," in lines[0]
    for name in lacked(served, CONTRACT_COLUMNS):
        assert f"{name} {scored:,}" in lines[0]


def test_score_prints_no_count_when_no_row_lacks_a_field(capsys, command_env) -> None:
    args = ["score", "--customers", str(SAMPLE / "customers.csv")]
    args += ["--interactions", str(SAMPLE / "interactions.csv"), "--as-of", f"{DAY}"]
    code, out, err = call(capsys, *args, "--out", str(command_env / "out.csv"), "-q")
    assert code == 0, err
    assert "warning" not in out


# -- reasons ------------------------------------------------------------------------------------
def unknown_reasons(reasons: list[list[dict]]) -> list[str]:
    return [r["text"] for row in reasons for r in row if "unknown" in r["text"].lower()]


def test_a_table_written_from_the_contract_alone_has_no_unknown_reason(
    contract_tables, served
) -> None:
    predictor = Predictor(served.model)
    features = served.model.features_from_tables(
        contract_tables.customers, contract_tables.interactions, pd.Timestamp(DAY)
    )
    prediction = predictor.explain(predictor.prepare(features))
    assert len(prediction.reasons) == len(features) > 100
    assert unknown_reasons(prediction.reasons) == []


SIGNUPS = ["2026-06-01", "2026-05-01", "2025-06-10", "2020-01-01", "2010-01-04"]


def no_contact_customers(tables, *, profile: bool) -> pd.DataFrame:
    """Customers with no contact at all, joined at SIGNUPS; with ``profile`` the sample's
    most common profile values, else only the contract's required columns."""
    customers = pd.DataFrame(
        {
            "customer_id": [f"N{i:03d}" for i in range(len(SIGNUPS))],
            "signup_date": pd.to_datetime(SIGNUPS),
            "churned_at": pd.NaT,
        }
    )
    if profile:
        sample = tables.customers
        for column in ("segment", "plan", "region", "contract_type", "payment_method"):
            customers[column] = sample[column].mode()[0]
        customers["monthly_revenue"] = sample["monthly_revenue"].median()
    return customers


def scored(served, tables, customers: pd.DataFrame):
    predictor = Predictor(served.model)
    features = served.model.features_from_tables(
        customers, tables.interactions.iloc[:0], pd.Timestamp(DAY)
    )
    assert len(features) == len(customers)
    return predictor.explain(predictor.prepare(features))


def test_a_customer_with_no_contact_and_a_usual_profile_is_not_high_risk(
    served, sample_tables
) -> None:
    customers = no_contact_customers(sample_tables, profile=True)
    prediction = scored(served, sample_tables, customers)
    assert "high" not in prediction.band.tolist()


@pytest.mark.parametrize("profile", [True, False], ids=["profile", "no-profile"])
def test_the_reasons_of_a_customer_with_no_contact_come_from_tenure_alone(
    served, sample_tables, profile: bool
) -> None:
    customers = no_contact_customers(sample_tables, profile=profile)
    prediction = scored(served, sample_tables, customers)
    for row in prediction.reasons:
        # Nothing is known of them but their tenure (and the profile given): no reason
        # speaks of a missing value, and without a profile none but tenure comes from it.
        if not profile:
            profile_reasons = [r for r in row if r["family"] == PROFILE_FAMILY]
            assert all(r["feature"] == "tenure_days" for r in profile_reasons), row
        assert all(r["value"] is not None for r in row), row
    assert unknown_reasons(prediction.reasons) == []
