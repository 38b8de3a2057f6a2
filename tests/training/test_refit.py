"""Evaluate, then refit: the registered model is fitted on every labelled snapshot, its
calibrator never sees a row that the model scoring it was fitted on, the evaluated
metrics and the gate stay fold 1's, and the parameter search logs every trial."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from churnml.contract import CUSTOMER_ID
from model.loading import load_model
from tests.training.helpers import load_world, simple_builder
from training import TrainingSettings, learners, promote
from training.folds import FoldData, LocalSnapshots
from training.pipeline import TrainResult, train_on_snapshots
from training.refit import REFIT_FOLD_NUMBER, _blocks
from training.snapshots import (
    LABEL,
    SNAPSHOT_DATE,
    Fold,
    build_snapshot_frame,
    default_as_of,
    fold_rows,
    snapshot_plan,
)

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = pytest.mark.slow


@dataclass
class RecordingSource:
    """``LocalSnapshots`` that keeps the (customer, day) keys of every fold's rows it hands
    out: what each refit model was fitted on and what it scored."""

    inner: LocalSnapshots
    handed: list[tuple[Fold, set[tuple[str, pd.Timestamp]], set[tuple[str, pd.Timestamp]]]] = field(
        default_factory=list
    )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def fold(self, fold: Fold) -> FoldData:
        part = self.inner.fold(fold)
        frame = self.inner.snapshots
        train = frame.loc[fold_rows(frame, fold.train), [CUSTOMER_ID, SNAPSHOT_DATE]]
        scored = frame.loc[fold_rows(frame, fold.validation), [CUSTOMER_ID, SNAPSHOT_DATE]]
        self.handed.append((fold, _keys(train), _keys(scored)))
        return part


def _keys(rows: pd.DataFrame) -> set[tuple[str, pd.Timestamp]]:
    return set(zip(rows[CUSTOMER_ID], rows[SNAPSHOT_DATE], strict=True))


@dataclass
class Trained:
    settings: TrainingSettings
    as_of: pd.Timestamp
    folds: list[Fold]
    needed: list[pd.Timestamp]
    snapshots: pd.DataFrame
    refit: TrainResult
    refit_source: RecordingSource
    off: TrainResult


def _train(
    snapshots: pd.DataFrame, sampling: Any, settings: TrainingSettings, plan: tuple, as_of: Any
) -> tuple[TrainResult, RecordingSource]:
    folds, needed = plan
    source = RecordingSource(LocalSnapshots(snapshots, sampling, settings))
    result = train_on_snapshots(
        source,
        folds=folds,
        needed=needed,
        as_of=as_of,
        settings=settings,
        feature_settings=None,
        champion_features=lambda champion, day: pytest.fail("same features: no rebuild"),
        data_params={"engine": "local"},
        train_sampling="none",
        say=lambda message: None,
        clock={"start": 0.0},
    )
    return result, source


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    customers, interactions = load_world(SAMPLE)
    settings = TrainingSettings(
        home=tmp_path_factory.mktemp("home"),
        backtest_folds=1,
        tuning_budget_seconds=600,
        tuning_max_trials=3,
    )
    as_of = default_as_of(interactions)
    plan = snapshot_plan(pd.Timestamp(interactions["started_at"].min()), as_of, settings)
    snapshots, sampling = build_snapshot_frame(
        customers, interactions, plan[1], simple_builder, settings
    )
    refit, source = _train(snapshots, sampling, settings, plan, as_of)
    if not refit.gate.promote:  # the simple builder's features: the gate may keep it
        promote(refit.model_version, settings, reason="the refit model as champion")
    # Then fold 1's model alone, without a search, into the same registry.
    off_settings = settings.with_changes(refit="off", tuning_budget_seconds=0)
    off, _ = _train(snapshots, sampling, off_settings, plan, as_of)
    return Trained(settings, as_of, plan[0], plan[1], snapshots, refit, source, off)


def _model(result: TrainResult, settings: TrainingSettings) -> Any:
    return load_model(result.model_uri, settings.resolved_tracking_uri()).model


def _run(result: TrainResult, settings: TrainingSettings) -> Any:
    return mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)


def test_the_registered_model_is_fitted_up_to_as_of_minus_the_horizon(trained) -> None:
    settings = trained.settings
    last_labelled = trained.as_of - pd.Timedelta(days=settings.horizon_days)
    window = _model(trained.refit, settings).metadata["train_window"]
    fold1 = trained.folds[0]
    assert pd.Timestamp(window["last"]) == last_labelled == max(trained.needed)
    assert pd.Timestamp(window["first"]) == min(trained.needed)
    assert window["days"] == len(trained.needed)  # the gaps between folds too
    assert pd.Timestamp(window["last"]) > max(fold1.train)
    off_window = _model(trained.off, settings).metadata["train_window"]
    assert pd.Timestamp(off_window["last"]) == max(fold1.train)

    params = _run(trained.refit, settings).data.params
    assert params["refit"] == "crossfit"
    assert params["refit.train_last_day"] == f"{last_labelled:%Y-%m-%d}"
    assert params["evaluated.train_last_day"] == f"{max(fold1.train):%Y-%m-%d}"
    assert int(params["refit.train_rows"]) == len(trained.snapshots)
    assert int(params["refit.train_rows"]) > int(params["evaluated.train_rows"])


def test_each_calibration_row_was_scored_by_a_model_not_fitted_near_it(trained) -> None:
    settings = trained.settings
    horizon = pd.Timedelta(days=settings.horizon_days)
    blocks = [h for h in trained.refit_source.handed if h[0].number > REFIT_FOLD_NUMBER]
    assert len(blocks) == settings.refit_blocks
    for fold, fitted, scored in blocks:
        assert scored and fitted and not fitted & scored
        nearest = min(abs(d - s) for d in fold.train for s in fold.validation)
        assert nearest > horizon  # no fitted label window reaches a scored day
    # Every labelled row is scored once: the calibrator sees each exactly one time.
    scored_days = [d for fold, _, _ in blocks for d in fold.validation]
    assert sorted(scored_days) == sorted(trained.needed)
    params = _run(trained.refit, settings).data.params
    assert int(params["refit.calibration_rows"]) == sum(len(s) for _, _, s in blocks)


def test_the_gate_and_the_metrics_are_the_evaluated_model_s(trained) -> None:
    """The refit changes what is registered, not the evaluation: the run's test metrics and
    the gate are fold 1's fit (tuned), the model records them."""
    refit_metrics = _run(trained.refit, trained.settings).data.metrics
    assert refit_metrics["test_roc_auc"] == trained.refit.test["model"]["roc_auc"]
    assert "refit_oof_roc_auc" in refit_metrics
    fold1 = trained.refit.folds[0].metrics
    beats = fold1["model"]["roc_auc"] > fold1["logistic"]["roc_auc"]
    assert trained.refit.gate.checks["beats_baselines"] == beats
    assert (
        _model(trained.refit, trained.settings).metadata["evaluated"]["test_roc_auc"]
        == (trained.refit.test["model"]["roc_auc"])
    )


def test_a_refit_champion_is_compared_on_its_evaluated_roc_auc(trained) -> None:
    """The champion (the refit) was fitted on the second run's test days: its score there
    would flatter it, so the gate uses the ROC-AUC it was evaluated with."""
    reasons = " ".join(trained.off.gate.reasons)
    assert "compared with its evaluated test ROC-AUC" in reasons
    client = mlflow.MlflowClient(trained.settings.resolved_tracking_uri())
    record = json.loads(
        Path(client.download_artifacts(trained.off.run_id, "gate.json")).read_text()
    )
    assert record["evidence"]["champion_test_roc_auc"] == trained.refit.test["model"]["roc_auc"]


def test_a_zero_tuning_budget_fits_today_s_parameters(trained) -> None:
    frame = trained.snapshots
    train = frame.loc[fold_rows(frame, trained.folds[0].train), LABEL].to_numpy()
    settings = trained.settings
    expected = learners.lightgbm_params(len(train), int(train.sum()), settings.seed, 1)
    run = _run(trained.off, settings)
    lgbm = {k.removeprefix("lgbm."): v for k, v in run.data.params.items() if k[:5] == "lgbm."}
    assert lgbm == {k: str(v) for k, v in expected.items()}
    assert "tuning_trials" not in run.data.metrics


def test_a_tuning_budget_logs_every_trial_with_the_defaults_first(trained) -> None:
    client = mlflow.MlflowClient(trained.settings.resolved_tracking_uri())
    run = client.get_run(trained.refit.run_id)
    assert run.data.metrics["tuning_trials"] == 3  # tuning_max_trials: the defaults and two
    history = client.get_metric_history(run.info.run_id, "tuning_validation_log_loss")
    assert sorted(m.step for m in history) == [0, 1, 2]
    stored = json.loads(
        Path(client.download_artifacts(run.info.run_id, "tuning/trials.json")).read_text()
    )
    table = pd.DataFrame(stored["data"], columns=stored["columns"])
    assert list(table["number"]) == [0, 1, 2]
    frame = trained.snapshots
    train = frame.loc[fold_rows(frame, trained.folds[0].train), LABEL].to_numpy()
    defaults = learners.lightgbm_params(len(train), int(train.sum()), 42, 1)
    first = table.iloc[0]
    for name in learners.booster_space(defaults):
        assert first[name] == pytest.approx(defaults[name])
    assert np.isfinite(table["validation_log_loss"]).all()
    chosen = int(np.argmin(table["validation_log_loss"].to_numpy()))
    assert int(run.data.params["lgbm.num_leaves"]) == int(table.iloc[chosen]["num_leaves"])


@pytest.mark.parametrize("method", ["crossfit", "holdout"])
def test_calibration_blocks_leave_a_horizon_around_the_held_out_days(method: str) -> None:
    days = list(pd.date_range("2025-01-06", periods=40, freq="7D"))
    settings = TrainingSettings(refit=method, refit_blocks=3)
    blocks = _blocks(days, settings)
    assert len(blocks) == (3 if method == "crossfit" else 1)
    horizon = pd.Timedelta(days=settings.horizon_days)
    for held_out, fitted_on in blocks:
        assert min(abs(d - s) for d in fitted_on for s in held_out) > horizon
    if method == "holdout":
        held_out, fitted_on = blocks[0]
        assert max(held_out) == days[-1] and max(fitted_on) + horizon < min(held_out)
    else:
        assert sorted(d for held_out, _ in blocks for d in held_out) == days
