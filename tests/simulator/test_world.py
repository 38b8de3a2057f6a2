"""generate_world: arguments, determinism, the contract and the oracle."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.contract import CHANNELS, STATUSES, column_names
from churnml.errors import ConfigError
from churnml.simulator import SimulationParams, generate_world, parameter_rows

from .conftest import World


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first = generate_world(300, 60, 5, tmp_path / "a")
    second = generate_world(300, 60, 5, tmp_path / "b")
    for name, path in first.files.items():
        assert path.read_bytes() == second.files[name].read_bytes(), name
    manifests = [json.loads((tmp_path / name / "MANIFEST.json").read_text()) for name in "ab"]
    for manifest in manifests:
        del manifest["command"]  # names the output folder
    assert manifests[0] == manifests[1]


def test_another_seed_gives_another_world(tmp_path: Path) -> None:
    first = generate_world(300, 60, 5, tmp_path / "a")
    second = generate_world(300, 60, 6, tmp_path / "b")
    assert first.files["interactions"].read_bytes() != second.files["interactions"].read_bytes()


def test_parquet_holds_the_same_rows_as_csv(tmp_path: Path) -> None:
    csv = generate_world(200, 45, 3, tmp_path / "csv")
    parquet = generate_world(200, 45, 3, tmp_path / "pq", file_format="parquet")
    from_csv = pd.read_csv(csv.files["interactions"])
    from_parquet = pd.read_parquet(parquet.files["interactions"])
    assert len(from_csv) == len(from_parquet)
    assert list(from_csv["interaction_id"]) == list(from_parquet["interaction_id"])
    assert (pd.to_datetime(from_csv["started_at"]) == from_parquet["started_at"]).all()


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        ({"n_customers": 0}, "--customers"),
        ({"days": 0}, "--days"),
        ({"seed": -1}, "--seed"),
        ({"horizon_days": 0}, "--horizon"),
        ({"file_format": "xlsx"}, "--format"),
        ({"days": 20}, "--days"),
        ({"oracle_as_of": [date(2025, 3, 1)]}, "oracle date"),
        ({"oracle_as_of": [date(2024, 12, 31)]}, "oracle date"),
    ],
)
def test_bad_arguments_raise_a_one_line_config_error(
    tmp_path: Path, arguments: dict, flag: str
) -> None:
    call = {"n_customers": 10, "days": 60, "seed": 1, "out_dir": tmp_path} | arguments
    with pytest.raises(ConfigError) as caught:
        generate_world(**call)
    assert flag in str(caught.value)
    assert "\n" not in str(caught.value)


def test_out_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ConfigError, match="--out"):
        generate_world(10, 60, 1, target)


def test_params_with_shares_not_summing_to_one_are_refused() -> None:
    with pytest.raises(ConfigError, match="channel_shares"):
        SimulationParams(channel_shares=(0.5, 0.5, 0.5, 0.0, 0.0, 0.0))


def test_every_parameter_names_its_source() -> None:
    for name, _, source in parameter_rows():
        assert source.startswith(("domain.md", "assumption")), name


def test_progress_reports_every_day(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    generate_world(50, 40, 1, tmp_path, progress=lambda *call: calls.append(call))
    days = [call for call in calls if call[0] == "simulate"]
    assert days[-1] == ("simulate", 40, 40) and len(days) == 40
    assert ("write", 3, 3) in calls


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    generate_world(50, 40, 1, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "MANIFEST.json",
        "customers.csv",
        "interactions.csv",
        "oracle.csv",
        "retention_contacts.csv",
    ]


def test_tables_have_the_contract_columns(small_world: World) -> None:
    assert set(column_names("customers")) <= set(small_world.customers.columns)
    assert set(column_names("interactions")) <= set(small_world.interactions.columns)
    assert set(column_names("retention_contacts")) == set(small_world.retention_contacts.columns)
    assert list(small_world.oracle.columns) == [
        "customer_id",
        "as_of",
        "true_probability",
        "true_call_effect",
        "label",
    ]


def test_values_are_in_the_allowed_sets_and_ranges(small_world: World) -> None:
    contacts = small_world.interactions
    assert set(contacts["channel"]) <= set(CHANNELS)
    assert set(contacts["status"]) <= set(STATUSES)
    assert (contacts["wait_seconds"] >= 0).all() and (contacts["handle_seconds"] >= 0).all()
    assert (contacts["transfers"] >= 0).all()
    given = contacts["csat"].dropna()
    assert 0 < len(given) < len(contacts)
    assert given.between(1, 5).all() and (given == given.round()).all()
    assert contacts["abandoned"].dtype == bool
    assert (small_world.customers["monthly_revenue"] >= 0).all()


def test_ids_look_real_and_are_unique(small_world: World) -> None:
    customers, contacts = small_world.customers, small_world.interactions
    assert customers["customer_id"].is_unique and contacts["interaction_id"].is_unique
    assert customers["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert contacts["interaction_id"].str.fullmatch(r"I\d{7}").all()
    assert contacts["case_id"].str.fullmatch(r"CASE\d{7}").all()
    assert contacts["agent_id"].dropna().str.fullmatch(r"A\d{3}").all()


def test_abandoned_contacts_have_no_agent_and_served_ones_do(small_world: World) -> None:
    contacts = small_world.interactions
    assert contacts.loc[contacts["abandoned"], "agent_id"].isna().all()
    assert contacts.loc[~contacts["abandoned"], "agent_id"].notna().all()


def test_timestamps_are_iso_utc(small_world: World) -> None:
    raw = pd.read_csv(small_world.summary.files["interactions"], usecols=["started_at"])
    assert raw["started_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert raw["started_at"].is_monotonic_increasing


def test_every_contact_is_by_an_active_customer(small_world: World) -> None:
    customers = small_world.customers.set_index("customer_id")
    contacts = small_world.interactions
    assert contacts["customer_id"].isin(customers.index).all()
    day = contacts["started_at"].dt.tz_localize(None).dt.normalize()
    signup = customers.loc[contacts["customer_id"], "signup_date"].to_numpy()
    churned = customers.loc[contacts["customer_id"], "churned_at"].to_numpy()
    assert (day.to_numpy() >= signup).all()
    left = ~pd.isna(churned)
    assert (day.to_numpy()[left] < churned[left]).all()


def test_churn_dates_stay_inside_the_simulated_days(small_world: World) -> None:
    summary = small_world.summary
    churned = small_world.customers["churned_at"].dropna()
    assert churned.max() <= pd.Timestamp(summary.end_date)
    assert (churned > small_world.customers.loc[churned.index, "signup_date"]).all()


def test_customers_sign_up_during_the_run(small_world: World) -> None:
    signups = small_world.customers["signup_date"]
    assert (signups >= pd.Timestamp(small_world.summary.start_date)).sum() > 0
    assert small_world.summary.arrivals == (signups >= pd.Timestamp("2025-01-01")).sum()


def test_oracle_rows_are_exactly_the_active_customers(small_world: World) -> None:
    customers, oracle = small_world.customers, small_world.oracle
    as_of = pd.Timestamp(small_world.summary.oracle_dates[0])
    assert (oracle["as_of"] == as_of).all()
    active = (customers["signup_date"] <= as_of) & (
        customers["churned_at"].isna() | (customers["churned_at"] > as_of)
    )
    assert sorted(oracle["customer_id"]) == sorted(customers.loc[active, "customer_id"])


def test_oracle_labels_match_the_churn_dates(small_world: World) -> None:
    oracle = small_world.oracle.merge(small_world.customers, on="customer_id")
    horizon = pd.Timedelta(days=30)
    expected = (oracle["churned_at"] > oracle["as_of"]) & (
        oracle["churned_at"] <= oracle["as_of"] + horizon
    )
    assert (oracle["label"] == expected.astype(int)).all()
    assert oracle["label"].sum() > 0


def test_oracle_probabilities_are_calibrated_and_informative(small_world: World) -> None:
    oracle = small_world.oracle
    assert oracle["true_probability"].between(0, 1).all()
    # the realised churn is one draw of what the oracle expects
    expected, realised = oracle["true_probability"].sum(), oracle["label"].sum()
    assert abs(realised - expected) < 4 * np.sqrt(expected) + 3
    assert small_world.summary.oracle_roc_auc[str(small_world.summary.oracle_dates[0])] > 0.65


def test_several_oracle_dates_each_get_all_their_active_customers(tmp_path: Path) -> None:
    dates = [date(2025, 2, 1), date(2025, 3, 1)]
    summary = generate_world(300, 100, 2, tmp_path, oracle_as_of=dates)
    oracle = pd.read_csv(summary.files["oracle"])
    assert sorted(oracle["as_of"].unique()) == ["2025-02-01", "2025-03-01"]
    assert summary.oracle_rows == len(oracle)


def test_churn_rate_is_a_few_percent_a_month(small_world: World) -> None:
    assert 0.01 < small_world.summary.churn_rate_30d < 0.05
