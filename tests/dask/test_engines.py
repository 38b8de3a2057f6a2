"""Both engines behind churnml.engines.Engine give the same frames: the tables' checks,
the latest day, the features and the day's scores."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from churnml.engines.dask import DaskEngine
from churnml.engines.local import LocalEngine
from churnml.engines.scoring import score_day
from churnml.settings import Settings
from tests.dask.helpers import break_rules, sample_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def predictor():
    from serving.loading import load_served_model
    from tests.serving.helpers import trained_home

    home = trained_home()
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    return load_served_model("models:/churn-risk@champion", uri).predictor


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("engines")
    customers, interactions = sample_text()
    break_rules(customers, interactions)
    customers.to_csv(folder / "customers.csv", index=False)
    interactions.to_csv(folder / "interactions.csv", index=False)
    return Settings(
        home=folder / "home",
        customers=folder / "customers.csv",
        interactions=folder / "interactions.csv",
    )


@pytest.fixture(scope="module")
def engines(dask_client, settings) -> tuple[LocalEngine, DaskEngine]:
    heard: dict[str, list[str]] = {"local": [], "dask": []}
    local = LocalEngine(settings, heard["local"].append)
    on_dask = DaskEngine(dask_client, settings, heard["dask"].append, partitions=4)
    assert local.tables().set_aside == on_dask.tables().set_aside
    local.tables(), on_dask.tables()  # cached: read and reported once
    assert [len(heard["local"]), len(heard["dask"])] == [2, 2]
    return local, on_dask


def test_both_engines_find_the_same_latest_day(engines) -> None:
    local, on_dask = engines
    assert local.latest_day() == on_dask.latest_day() is not None


def test_both_engines_give_the_same_features(engines) -> None:
    local, on_dask = engines
    day = local.latest_day()
    pd.testing.assert_frame_equal(on_dask.features(day), local.features(day), check_exact=True)


def test_both_engines_give_the_same_scores(engines, predictor) -> None:
    local, on_dask = engines
    day = local.latest_day()
    ours = score_day(on_dask, predictor, day)
    theirs = score_day(local, predictor, day)
    # A probability may differ in its last bit: LightGBM's float sums depend on which rows
    # share a batch (the local engine scores all customers at once, Dask by partition).
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0, atol=1e-12)
    for column in ("customer_id", "risk_band", "reasons", "reason_codes", "as_of"):
        assert ours[column].tolist() == theirs[column].tolist(), column
    assert list(theirs.columns) == [
        "customer_id",
        "churn_probability",
        "risk_band",
        "thin_history",
        "reasons",
        "reason_codes",
        *(["call_effect", "saved_revenue"] if predictor.has_call_effect else []),
        "as_of",
    ]
    assert predictor.has_call_effect  # the sample model is trained with its retention team


def test_an_engine_on_given_tables_reads_nothing(engines) -> None:
    _local, on_dask = engines
    again = DaskEngine.on_tables(on_dask.tables())
    assert again.tables() is on_dask.tables() and again.settings is None
    assert dataclasses.is_dataclass(again.tables())
