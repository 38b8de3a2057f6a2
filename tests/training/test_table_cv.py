"""The customer-table path's cross-validation: out-of-fold metrics, the default-LightGBM
baseline, the refit on every row and a calibration that never sees in-fold rows."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from model.loading import load_model
from training import TrainingSettings, table_cv, train_from_table

ROWS = 600


def small_table(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A labelled customer table whose churn follows calls, tenure and the plan."""
    rng = np.random.default_rng(seed)
    calls = rng.poisson(1.5, rows)
    tenure = rng.uniform(1, 72, rows)
    plan = rng.choice(["basic", "plus", "max"], rows)
    logit = -2.0 + 0.8 * calls - 0.03 * tenure + (plan == "basic") * 0.7
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_service_calls": calls,
            "tenure_months": tenure.round(1),
            "plan": plan,
            "churn": np.where(churn, "yes", "no"),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("table-cv")
    settings = TrainingSettings(home=home, table_repeats=1)
    return settings, train_from_table(small_table(), "churn", settings)


def test_the_evaluated_metrics_are_out_of_fold_over_every_row(trained) -> None:
    settings, result = trained
    for who in ("model", "logistic", "lightgbm", "rule"):
        assert (
            result.test[who]["rows"] == ROWS
        )  # every row scored once, by a model not fitted on it
    assert result.folds[0].name == "oof"
    assert "out-of-fold" in result.summary()
    run = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(result.test["model"]["roc_auc"])
    assert "out-of-fold, stratified 5-fold CV x1" in run.data.params["evaluation"]


def test_default_lightgbm_is_a_baseline_in_metrics_mlflow_and_the_summary(trained) -> None:
    settings, result = trained
    run = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)
    assert run.data.metrics["test_lightgbm_roc_auc"] == pytest.approx(
        result.test["lightgbm"]["roc_auc"]
    )
    assert "test_lightgbm_pr_auc" in run.data.metrics
    assert "baseline lightgbm: ROC-AUC" in result.summary()
    assert "beats_default_lightgbm" in result.gate.checks


def test_the_registered_model_is_refit_on_every_row(trained) -> None:
    settings, result = trained
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    assert model.metadata["fit_rows"] == ROWS
    fold_train_rows = ROWS * 4 / 5
    expected = table_cv.scaled_rounds(model.metadata["cv_best_rounds"], ROWS, fold_train_rows)
    assert model.metadata["refit_rounds"] == expected
    assert model.booster.current_iteration() == expected
    assert model.base_rate == pytest.approx((small_table()["churn"] == "yes").mean())


def test_small_tables_repeat_the_folds() -> None:
    assert table_cv.fold_repeats(5000) == 1
    assert table_cv.fold_repeats(1500) == 2
    assert table_cv.fold_repeats(300) == 3
    assert table_cv.fold_repeats(300, requested=1) == 1


def test_every_row_is_held_out_once_per_repeat_and_never_trained_on_there() -> None:
    y = (np.arange(200) % 4 == 0).astype("int8")
    splits = table_cv.cv_splits(y, folds=5, repeats=2, seed=1)
    for repeat in (0, 1):
        held = np.concatenate([s.held_out for s in splits if s.repeat == repeat])
        assert sorted(held.tolist()) == list(range(200))
    for split in splits:
        assert not set(split.train) & set(split.held_out)
        assert y[split.held_out].mean() == pytest.approx(0.25, abs=0.03)  # stratified


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_a_split_calibration_does_not_depend_on_its_own_labels(method: str) -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.2).astype("int8")
    raw = np.clip(0.15 + 0.3 * y + rng.normal(0, 0.15, 500), 0.01, 0.99)
    splits = table_cv.cv_splits(y, folds=5, repeats=1, seed=0)
    rows = table_cv.stacked_rows(splits)
    flipped = y.copy()
    first = splits[0].held_out
    flipped[first] = 1 - flipped[first]  # only the first split's own labels change
    calibrate = table_cv.cross_fitted_calibration

    def probabilities(labels: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows))
        position = np.cumsum([0] + [len(s.held_out) for s in splits])
        for i in range(len(splits)):
            others = np.concatenate(
                [np.arange(position[j], position[j + 1]) for j in range(len(splits)) if j != i]
            )
            calibrator = table_cv.table_calibrator(method, raw[rows][others], labels[rows][others])
            out[position[i] : position[i + 1]] = calibrator.predict(
                raw[rows][position[i] : position[i + 1]]
            )
        return out

    before, after = probabilities(y), probabilities(flipped)
    own = slice(0, len(first))
    np.testing.assert_allclose(before[own], after[own])
    assert not np.allclose(before[len(first) :], after[len(first) :])  # the others did see them
    chosen, _, cross_fitted = calibrate(raw[rows], y, splits, rows)
    if chosen == method:
        np.testing.assert_allclose(cross_fitted, before)


def test_the_isotonic_calibrator_keeps_the_ranking() -> None:
    rng = np.random.default_rng(5)
    raw = rng.random(400)
    y = (rng.random(400) < raw).astype("int8")
    calibrated = table_cv.table_calibrator("isotonic", raw, y).predict(raw)
    inside = (raw > raw.min()) & (raw < raw.max())
    order = np.argsort(raw[inside])
    assert np.all(np.diff(calibrated[inside][order]) > 0)


def test_the_registered_calibrator_is_fitted_on_out_of_fold_scores_only(tmp_path: Path) -> None:
    table = small_table(400, seed=2)
    y = (table["churn"] == "yes").to_numpy(dtype="int8")
    from model.artifact import table_features
    from training.table import infer_schema

    schema = infer_schema(table, "churn", None)
    x = table_features(table, schema)
    oof = table_cv.cross_validate(
        x,
        y,
        list(schema["categorical"]),
        folds=5,
        repeats=1,
        blend="stack",
        budget_seconds=0,
        seed=0,
        threads=1,
    )
    refit = table_cv.refit_on_all_rows(x, y, list(schema["categorical"]), oof, seed=0)
    expected = table_cv.table_calibrator(oof.calibration, oof.calibration_raw, y[oof.rows])
    assert refit.calibrator == expected
    # Each OOF score is its split booster's score of a row that booster never trained on.
    best = oof.choice
    assert len(best.oof_raw) == len(y) and sorted(oof.rows.tolist()) == list(range(len(y)))
