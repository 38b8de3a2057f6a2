"""Training on the committed sample world: the MLflow run, the model it registers, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from churnml.contract import CONTRACT_VERSION
from churnml.validation import load_tables
from model.loading import load_model
from training import TrainingSettings, score_tables, train_from_tables
from training.learners import BLEND_WEIGHTS
from training.pipeline import TrainResult

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[TrainResult, TrainingSettings, object]:
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    settings = TrainingSettings(home=tmp_path_factory.mktemp("home"), backtest_folds=1)
    return train_from_tables(tables.customers, tables.interactions, settings), settings, tables


def test_the_run_records_metrics_fingerprint_features_and_contract(trained) -> None:
    result, settings, _ = trained
    run = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)
    for metric in (
        "test_roc_auc",
        "test_pr_auc",
        "test_brier",
        "test_log_loss",
        "test_ece",
        "test_lift_top_decile",
        "test_precision_at_k",
        "test_recall_at_k",
        "test_logistic_roc_auc",
        "test_rule_roc_auc",
    ):
        assert metric in run.data.metrics
    params = run.data.params
    assert params["contract_version"] == CONTRACT_VERSION
    assert len(params["customers_sha256"]) == 64 and int(params["interactions_rows"]) > 0
    assert params["setting.horizon_days"] == "30"
    assert run.data.tags["gate.decision"] in {"promote", "keep"}


def test_the_run_records_the_stack_weight_the_registered_model_uses(trained) -> None:
    result, settings, _ = trained
    run = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)
    params = run.data.params
    weight = float(params["blend.linear_weight"])
    assert params["blend.method"] == "stack" and weight in BLEND_WEIGHTS
    assert set(json.loads(params["blend.validation_log_loss"])) == {str(w) for w in BLEND_WEIGHTS}
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    assert (model.blend.linear_weight if model.blend else 0.0) == weight


def test_the_model_is_calibrated_on_the_held_out_test_fold(trained) -> None:
    result, _, _ = trained
    test = result.test["model"]
    assert test["ece"] < 0.02
    assert test["brier"] < test["churn_rate"] * (1 - test["churn_rate"])  # beats the base rate
    assert test["roc_auc"] > result.test["rule"]["roc_auc"]


def test_the_registered_model_scores_contract_tables_with_reasons(trained) -> None:
    result, settings, tables = trained
    scores = score_tables(
        tables.customers, tables.interactions, "2026-06-01", settings, model_uri=result.model_uri
    )
    assert {"customer_id", "churn_probability", "risk_band", "reasons"} <= set(scores.columns)
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["customer_id"].is_unique
    assert scores["reasons"].str.len().gt(0).mean() > 0.5
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}


def test_a_customer_scored_alone_gets_the_same_probability(trained) -> None:
    result, settings, tables = trained
    batch = score_tables(
        tables.customers,
        tables.interactions,
        "2026-06-01",
        settings,
        model_uri=result.model_uri,
        with_reasons=False,
    )
    one = batch["customer_id"].iloc[7]
    alone = score_tables(
        tables.customers[tables.customers["customer_id"] == one],
        tables.interactions[tables.interactions["customer_id"] == one],
        "2026-06-01",
        settings,
        model_uri=result.model_uri,
        with_reasons=False,
    )
    assert alone["churn_probability"].iloc[0] == pytest.approx(batch["churn_probability"].iloc[7])
