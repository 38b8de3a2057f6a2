"""The call-effect head of `train`: rows, gate, MLflow, the registered files, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from churnml.errors import ChurnmlError, ModelError
from model.artifact import ChurnModel
from model.loading import load_model
from model.predictor import Predictor
from tests.training.effect_world import HORIZON, picks_with_planted_effect
from tests.training.helpers import load_world
from training import TrainingSettings, train_from_tables
from training.call_effect_fit import (
    EffectEvaluation,
    call_effect_gate,
    call_effect_rows,
    effect_folds,
    treated_snapshot_rows,
)
from training.snapshots import default_builder

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers, interactions = load_world(SAMPLE)
    customers, contacts = picks_with_planted_effect(customers, every_days=3, per_day=30)
    return customers, interactions, contacts


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory: pytest.TempPathFactory):
    customers, interactions, contacts = world
    settings = TrainingSettings(
        home=tmp_path_factory.mktemp("home"),
        backtest_folds=1,
        tuning_budget_seconds=0,
        refit="off",
    )
    result = train_from_tables(customers, interactions, settings, retention_contacts=contacts)
    return result, settings


# -- rows --------------------------------------------------------------------------------
def test_a_pick_becomes_a_row_on_the_day_before_with_its_label(world) -> None:
    customers, interactions, contacts = world
    as_of = pd.Timestamp("2026-06-24")
    rows = call_effect_rows(
        customers, interactions, contacts, default_builder(), as_of=as_of, horizon_days=HORIZON
    )
    complete = contacts[contacts["contacted_at"] - pd.Timedelta(days=1 - HORIZON) <= as_of]
    assert 0 < len(rows) <= len(complete)
    assert (pd.to_datetime(rows.day) + pd.Timedelta(days=HORIZON) <= as_of).all()
    first = 0
    customer, day = rows.customer_id[first], pd.Timestamp(rows.day[first])
    pick = contacts[(contacts["customer_id"] == customer)]
    assert (pick["contacted_at"] == day + pd.Timedelta(days=1)).any()
    churned = customers.set_index("customer_id").loc[customer, "churned_at"]
    expected = pd.notna(churned) and day < churned <= day + pd.Timedelta(days=HORIZON)
    assert rows.y[first] == int(expected)
    assert "retention_calls_total" in rows.features and "contacts_30d" in rows.features
    assert rows.propensity == pytest.approx(rows.t.mean())


def test_snapshot_rows_near_a_treated_call_are_left_out_and_control_picks_stay() -> None:
    snapshots = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B"],
            "snapshot_date": pd.to_datetime(
                ["2026-01-01", "2026-02-05", "2026-03-20", "2026-01-01"]
            ),
        }
    )
    contacts = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "contacted_at": pd.to_datetime(["2026-01-20", "2026-01-10"]),
            "group": ["treated", "control"],
        }
    )
    left_out = treated_snapshot_rows(snapshots, contacts, 30)
    assert left_out.tolist() == [True, True, False, False]


def test_no_training_label_of_an_effect_fold_reaches_its_validation_days() -> None:
    days = pd.date_range("2025-06-01", "2026-05-01", freq="D").to_numpy()
    folds = effect_folds(days, HORIZON)
    assert [f.number for f in folds] == [1, 2, 3]
    assert folds[0].validation_end > folds[1].validation_end > folds[2].validation_end
    for fold in folds:
        assert fold.train_until + pd.Timedelta(days=HORIZON) <= fold.validation_start
        assert fold.train_until > pd.Timestamp(days.min())


# -- the gate ----------------------------------------------------------------------------
def _evaluation(model: float, risk: float) -> EffectEvaluation:
    fold = {
        "number": 1,
        "describe": "fold",
        "model": {"uplift_at_k": model, "qini": 0.0, "auuc": 0.0},
        "risk": {"uplift_at_k": risk, "qini": 0.0, "auuc": 0.0},
    }
    return EffectEvaluation(capacity=100, folds=[fold])


@pytest.mark.parametrize(
    ("model", "risk", "rank_by"),
    [(0.05, 0.01, "saved-revenue"), (0.01, 0.05, "risk"), (0.02, 0.02, "risk")],
)
def test_the_head_is_promoted_only_when_it_beats_ranking_by_risk(model, risk, rank_by) -> None:
    gate = call_effect_gate(_evaluation(model, risk))
    assert gate["rank_by"] == rank_by and gate["promoted"] is (rank_by == "saved-revenue")
    assert "ranking by risk" in gate["reason"]


def test_without_a_usable_fold_the_list_keeps_ranking_by_risk_and_says_why() -> None:
    evaluation = EffectEvaluation(
        capacity=100, folds=[{"number": 1, "describe": "f", "skipped": "3 control row(s)"}]
    )
    gate = call_effect_gate(evaluation)
    assert gate["rank_by"] == "risk" and "3 control row(s)" in gate["reason"]


# -- the run -----------------------------------------------------------------------------
def test_the_run_logs_the_head_beside_the_churn_metrics(trained) -> None:
    result, settings = trained
    run = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)
    metrics = run.data.metrics
    assert "test_roc_auc" in metrics
    for who in ("model", "risk"):
        for name in ("qini", "auuc", "uplift_at_k"):
            assert f"effect_{who}_{name}" in metrics
    assert "effect_fold1_model_uplift_at_k_low" in metrics
    assert run.data.tags["call_effect.rank_by"] in {"saved-revenue", "risk"}
    assert run.data.tags["call_effect.reason"] == result.call_effect["reason"]
    assert int(run.data.params["churn_target.rows_left_out"]) > 0
    assert int(run.data.params["effect.control_rows"]) > 0


def test_the_registered_model_carries_the_head_and_its_gate(trained) -> None:
    result, settings = trained
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    assert model.call_effect is not None
    assert model.call_effect_gate == json.loads(json.dumps(result.call_effect))
    assert model.rank_by == result.call_effect["rank_by"]


def test_scores_carry_call_effect_and_saved_revenue_and_the_planted_effect(trained, world) -> None:
    result, settings = trained
    customers, interactions, contacts = world
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    predictor = Predictor(model)
    scores = predictor.score_tables(
        customers, interactions, "2026-05-25", retention_contacts=contacts, months=6
    )
    assert {"call_effect", "saved_revenue"} <= set(scores.columns)
    revenue = customers.set_index("customer_id")["monthly_revenue"].reindex(scores["customer_id"])
    np.testing.assert_allclose(
        scores["saved_revenue"], scores["call_effect"] * revenue.to_numpy() * 6
    )
    segment = customers.set_index("customer_id")["segment"].reindex(scores["customer_id"])
    by_segment = scores.groupby(segment.to_numpy())["call_effect"].mean()
    assert by_segment["consumer"] > by_segment["business"]  # only consumers were saved


def test_a_model_without_a_head_scores_the_v1_columns(trained, world) -> None:
    result, settings = trained
    customers, interactions, contacts = world
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    with_head = Predictor(model).score_tables(customers, interactions, "2026-05-25")
    model.call_effect, model.call_effect_gate = None, None
    plain = Predictor(model).score_tables(
        customers, interactions, "2026-05-25", retention_contacts=contacts
    )
    assert "call_effect" not in plain and "saved_revenue" not in plain
    pd.testing.assert_frame_equal(plain, with_head.drop(columns=["call_effect", "saved_revenue"]))
    assert model.rank_by == "risk"


def test_a_damaged_head_is_refused_before_lightgbm_reads_it(trained, tmp_path) -> None:
    result, settings = trained
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    folder = model.save(tmp_path / "model")
    assert ChurnModel.load(folder).call_effect is not None
    booster = next((folder / "call_effect").glob("call_effect_*.txt"))
    booster.write_text(booster.read_text()[:200])
    with pytest.raises(ModelError, match="sha256"):
        ChurnModel.load(folder)
    spec = folder / "call_effect" / "call_effect.json"
    spec.write_text(spec.read_text().replace('"x"', '"t"'))
    with pytest.raises(ChurnmlError, match="sha256"):
        ChurnModel.load(folder)
