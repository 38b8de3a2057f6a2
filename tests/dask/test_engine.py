"""The Dask engine gives what the local engine gives: the same checks, the same rows set
aside, the same features (index, columns, dtypes, values, order) and the same scores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.engines.dask import DaskEngine, cluster
from churnml.engines.dask.checking import load_tables_dask
from churnml.engines.dask.partitions import build_features_dask, score_dask
from churnml.engines.scoring import score_day
from churnml.errors import ContractError
from churnml.validation import load_tables
from features import build_features
from tests.dask.helpers import AS_OF, SAMPLE, break_rules, sample_text, write_parquet_folder


@pytest.fixture(scope="module")
def local_sample():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


@pytest.fixture(scope="module")
def dask_sample(dask_client):
    return load_tables_dask(
        SAMPLE / "customers.csv", SAMPLE / "interactions.csv", client=dask_client, partitions=5
    )


@pytest.fixture(scope="module")
def broken_world(tmp_path_factory) -> Path:
    """The sample world with broken rows, as folders of Parquet files in many pieces."""
    root = tmp_path_factory.mktemp("broken-world")
    customers, interactions = sample_text()
    break_rules(customers, interactions)
    write_parquet_folder(customers, root / "customers", files=3, row_group=500)
    write_parquet_folder(interactions, root / "interactions", files=3, row_group=4000)
    return root


def test_features_equal_the_local_engine_on_the_sample(dask_sample, local_sample) -> None:
    assert dask_sample.partitions == 5
    assert (dask_sample.customer_rows, dask_sample.interaction_rows) == (
        len(local_sample.customers),
        len(local_sample.interactions),
    )
    expected = build_features(local_sample.customers, local_sample.interactions, AS_OF)
    features = build_features_dask(dask_sample, AS_OF)
    pd.testing.assert_frame_equal(features, expected, check_exact=True)
    assert features.shape == (2921, 89)
    # Every partition held customers: the hash spreads them.
    sizes = dask_sample.customers.map_partitions(len).compute()
    assert len(sizes) == 5 and sizes.min() > 0.1 * sizes.sum() / 5


def test_the_engine_keeps_the_customers_table(dask_sample, local_sample) -> None:
    pd.testing.assert_frame_equal(dask_sample.customers_frame(), local_sample.customers)


def test_broken_rows_are_set_aside_as_the_local_engine_does(
    dask_client, broken_world, tmp_path
) -> None:
    paths = (broken_world / "customers", broken_world / "interactions")
    local_messages: list[str] = []
    local = load_tables(*paths, quarantine_dir=tmp_path / "local", report=local_messages.append)
    messages: list[str] = []
    tables = load_tables_dask(
        *paths,
        client=dask_client,
        partitions=4,
        piece_rows=1500,
        quarantine_dir=tmp_path / "dask",
        report=messages.append,
    )
    assert tables.set_aside == local.set_aside
    assert local.set_aside["customers"] == 3 and local.set_aside["interactions"] > 7
    assert [m.split(": see ")[0] for m in messages] == [
        m.split(": see ")[0] for m in local_messages
    ]
    for ours, theirs in zip(tables.quarantine_files, local.quarantine_files, strict=True):
        assert ours.name.split("-")[0] == theirs.name.split("-")[0]
        pd.testing.assert_frame_equal(pd.read_csv(ours), pd.read_csv(theirs))
    pd.testing.assert_frame_equal(tables.customers_frame(), local.customers)
    # The extra columns are typed on the whole table: "loyalty" is text (one "gold"),
    # "score" a number, even in the pieces without the text value.
    assert tables.meta["customers"]["loyalty"].dtype == local.customers["loyalty"].dtype
    assert local.customers["score"].dtype == np.float64
    for day in ("2025-09-30", AS_OF):
        expected = build_features(local.customers, local.interactions, day)
        pd.testing.assert_frame_equal(build_features_dask(tables, day), expected, check_exact=True)


@pytest.mark.parametrize("strict", [False, True])
def test_a_stop_gives_the_local_engines_message(dask_client, tmp_path, strict) -> None:
    customers, interactions = sample_text()
    break_rules(customers, interactions)
    customers.loc[4000, "customer_id"] = customers.loc[20, "customer_id"]  # repeated id: stop
    folder = tmp_path / "world"
    write_parquet_folder(customers, folder / "customers", files=2, row_group=700)
    write_parquet_folder(interactions, folder / "interactions", files=2, row_group=5000)
    paths = (folder / "customers", folder / "interactions")
    with pytest.raises(ContractError) as local:
        load_tables(*paths, quarantine_dir=tmp_path / "q", strict=strict)
    with pytest.raises(ContractError) as ours:
        load_tables_dask(
            *paths,
            client=dask_client,
            piece_rows=1000,
            quarantine_dir=tmp_path / "q2",
            strict=strict,
        )
    assert str(ours.value) == str(local.value)
    assert "\n" not in str(ours.value)
    assert not (tmp_path / "q2").exists()


def test_without_a_quarantine_folder_broken_rows_stop(dask_client, broken_world) -> None:
    with pytest.raises(ContractError, match="no quarantine folder"):
        load_tables_dask(
            broken_world / "customers", broken_world / "interactions", client=dask_client
        )


@pytest.mark.slow
def test_scores_equal_the_local_engine(dask_sample, local_sample) -> None:
    from serving.loading import load_served_model
    from tests.serving.helpers import trained_home

    home = trained_home()
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )
    predictor = served.predictor
    features = predictor.model.features_from_tables(
        local_sample.customers, local_sample.interactions, pd.Timestamp(AS_OF)
    )
    local = predictor.explain(predictor.prepare(features))
    probability, reasons = local.probability, local.reasons
    scores = score_dask(predictor, dask_sample, AS_OF)
    assert list(scores.columns) == [
        "customer_id",
        "churn_probability",
        "risk_band",
        "thin_history",
        "reasons",
    ]
    assert scores["thin_history"].tolist() == local.thin_history.tolist()
    assert scores["customer_id"].tolist() == features.index.astype(str).tolist()
    np.testing.assert_allclose(scores["churn_probability"], probability, rtol=0, atol=1e-9)
    assert scores["risk_band"].tolist() == local.band.tolist()
    # Reasons: the same families, features, words and values. A contribution may differ in
    # its last bit: the local scorer's own float sums depend on which rows share a batch
    # (Predictor.explain of rows 1000: alone moves one contribution of the sample by 1e-18).
    assert len(scores) == len(reasons)
    for ours, theirs in zip(scores["reasons"], reasons, strict=True):
        assert [_words(r) for r in ours] == [_words(r) for r in theirs]
        np.testing.assert_allclose(
            [r["contribution"] for r in ours], [r["contribution"] for r in theirs], atol=1e-12
        )
    # As `churnml score` writes them (Predictor.score_tables' columns), by the scoring
    # path both engines share (churnml.engines.scoring.score_day over Engine.map).
    exported = score_day(DaskEngine.on_tables(dask_sample), predictor, dt.date.fromisoformat(AS_OF))
    written = predictor.score_tables(local_sample.customers, local_sample.interactions, AS_OF)
    assert list(exported.columns) == list(written.columns)
    np.testing.assert_allclose(
        exported["churn_probability"], written["churn_probability"], atol=1e-9
    )
    for column in ("customer_id", "risk_band", "reasons", "reason_codes", "as_of"):
        assert exported[column].tolist() == written[column].tolist(), column


def _words(reason: dict) -> dict:
    return {key: value for key, value in reason.items() if key != "contribution"}


def test_unreadable_inputs_give_the_local_engines_errors(dask_client, tmp_path) -> None:
    from churnml.errors import InputError

    missing = tmp_path / "nowhere.parquet"
    with pytest.raises(InputError) as local:
        load_tables(missing, SAMPLE / "interactions.csv")
    with pytest.raises(InputError) as ours:
        load_tables_dask(missing, SAMPLE / "interactions.csv", client=dask_client)
    assert str(ours.value) == str(local.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no .parquet files"):
        load_tables_dask(SAMPLE / "customers.csv", tmp_path / "empty", client=dask_client)


def test_the_client_connects_to_a_running_scheduler(dask_client) -> None:
    from churnml.errors import ConfigError

    with cluster.client(dask_client.scheduler.address) as other:
        assert len(other.nthreads()) == 2
    with pytest.raises(ConfigError, match="cannot connect"):
        with cluster.client("tcp://127.0.0.1:9", timeout=1):
            pass


def test_retention_contacts_are_checked_as_the_local_engine_does(dask_client, tmp_path) -> None:
    """The sample's retention table with broken rows, one per rule, on both engines."""
    customers, interactions = sample_text()
    contacts = pd.read_csv(SAMPLE / "retention_contacts.csv", dtype=str, keep_default_na=False)
    contacts.loc[3, "customer_id"] = "C999999"  # no such customer
    contacts.loc[50, "group"] = "maybe"  # unknown group
    contacts.loc[70, "outcome"] = "thrilled"  # unknown outcome
    contacts.loc[90, "contacted_at"] = "2000-01-01"  # before signup
    contacts.loc[len(contacts)] = contacts.loc[120]  # a repeated row
    control = contacts.index[contacts["group"] == "control"][5]
    treated = contacts.loc[control].copy()
    treated["group"], treated["outcome"], treated["channel"] = "treated", "reached", "phone"
    contacts.loc[len(contacts)] = treated  # the promise of a control row broken
    # a customer set aside takes their contacts along
    customers.loc[customers["customer_id"] == contacts.loc[200, "customer_id"], "churned_at"] = (
        "2000-01-01"
    )
    folder = tmp_path / "world"
    folder.mkdir()
    customers.to_csv(folder / "customers.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    contacts.to_csv(folder / "retention_contacts.csv", index=False)
    paths = (folder / "customers.csv", folder / "interactions.csv")
    retention = folder / "retention_contacts.csv"
    local_messages: list[str] = []
    local = load_tables(
        *paths,
        retention_contacts_path=retention,
        quarantine_dir=tmp_path / "local",
        report=local_messages.append,
    )
    messages: list[str] = []
    tables = load_tables_dask(
        *paths,
        client=dask_client,
        partitions=3,
        retention_contacts_path=retention,
        quarantine_dir=tmp_path / "dask",
        report=messages.append,
    )
    assert local.set_aside["retention_contacts"] >= 7
    assert tables.set_aside == local.set_aside
    assert [m.split(": see ")[0] for m in messages] == [
        m.split(": see ")[0] for m in local_messages
    ]
    for ours, theirs in zip(tables.quarantine_files, local.quarantine_files, strict=True):
        pd.testing.assert_frame_equal(pd.read_csv(ours), pd.read_csv(theirs))
    pd.testing.assert_frame_equal(tables.retention_contacts, local.retention_contacts)
    with pytest.raises(ContractError) as local_stop:
        load_tables(*paths, retention_contacts_path=retention, strict=True)
    with pytest.raises(ContractError) as dask_stop:
        load_tables_dask(*paths, client=dask_client, retention_contacts_path=retention, strict=True)
    assert str(dask_stop.value) == str(local_stop.value)
