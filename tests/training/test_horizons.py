"""The time-to-churn model (training.horizons): censoring, order, quality, the gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnml.errors import ConfigError, DataError
from model.horizons import HorizonModel
from tests.training.helpers import load_world, simple_builder
from training import horizons as hz
from training import learners
from training.settings import TrainingSettings
from training.snapshots import build_snapshot_frame, default_as_of, snapshot_dates

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
HORIZONS = (7, 30, 90)


@dataclass
class Fitted:
    customers: pd.DataFrame
    interactions: pd.DataFrame
    rows: hz.HorizonRows
    fold: hz.HorizonFold
    fit: hz.HorizonFit
    settings: TrainingSettings

    def part(self, name: str) -> hz.HorizonRows:
        return self.rows.on_days(getattr(self.fold, name))


def _rows(customers, interactions, as_of, settings) -> hz.HorizonRows:
    dates = snapshot_dates(interactions["started_at"].min(), as_of, settings)
    snapshots, _ = build_snapshot_frame(customers, interactions, dates, simple_builder, settings)
    return hz.horizon_rows(snapshots, customers)


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    customers, interactions = load_world(SAMPLE)
    settings = TrainingSettings(backtest_folds=1, snapshot_every_days=14, lookback_days=450)
    as_of = default_as_of(interactions)
    rows = _rows(customers, interactions, as_of, settings)
    fold = hz.horizon_folds(sorted(pd.unique(rows.dates)), HORIZONS, settings, as_of=as_of)[0]
    fit = hz.fit_horizon_model(
        rows.on_days(fold.train),
        rows.on_days(fold.validation),
        HORIZONS,
        settings,
        train_cutoff=fold.train_cutoff,
        validation_cutoff=fold.validation_cutoff,
        training_horizon=30,
    )
    return Fitted(customers, interactions, rows, fold, fit, settings)


# -- censoring -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("days_to_churn", "follow_up", "expected"),
    [
        # never churned, 100 days seen: every period, no churn
        (np.inf, 100, [(7, 0), (30, 0), (90, 0)]),
        # never churned, 20 days seen: (7, 30] reaches past the data's end: only (0, 7]
        (np.inf, 20, [(7, 0)]),
        # churned on day 15, seen to day 20: its period is not seen in full, so the
        # churn is not counted (nor would a stayer of that period be)
        (15.0, 20, [(7, 0)]),
        # churned on day 15, seen to day 40: (7, 30] is its period, nothing after it
        (15.0, 40, [(7, 0), (30, 1)]),
        # churned on day 3: the first period, nothing after it
        (3.0, 5, []),
        (3.0, 7, [(7, 1)]),
        # churned after the data's end (unknown then): a stayer of the periods seen
        (200.0, 40, [(7, 0), (30, 0)]),
    ],
)
def test_a_snapshot_contributes_only_the_periods_the_data_show(
    days_to_churn: float, follow_up: float, expected: list[tuple[int, int]]
) -> None:
    matrix = np.zeros((1, 2))
    x, y, source = hz.expand_periods(
        matrix, np.array([days_to_churn]), np.array([float(follow_up)]), HORIZONS
    )
    assert [(int(period), int(label)) for period, label in zip(x[:, -1], y, strict=True)] == (
        expected
    )
    assert (source == 0).all()


def test_data_that_end_early_do_not_count_unseen_churn_as_none(fitted: Fitted) -> None:
    """Cut the world 60 days early: churn after the cut is unknown (churned_at empty,
    contacts dropped). On the snapshots of the last 90 days before the cut, the model
    fitted on the cut data predicts the 90-day churn the full world shows, while
    counting the unseen days as no churn would give a rate far below it."""
    customers, interactions, settings = fitted.customers, fitted.interactions, fitted.settings
    as_of = default_as_of(interactions)
    cut = as_of - pd.Timedelta(days=60)
    early_customers = customers.assign(
        churned_at=customers["churned_at"].where(customers["churned_at"] <= cut)
    )
    early_interactions = interactions[interactions["started_at"] < cut + pd.Timedelta(days=1)]
    early_settings = settings
    rows = _rows(early_customers, early_interactions, cut, early_settings)
    days = [pd.Timestamp(d) for d in sorted(pd.unique(rows.dates))]
    # every other snapshot trains, censored at the cut; early stopping watches older ones
    # whose 90 days lie before it
    validation_days = [d for d in days if d + pd.Timedelta(days=90) < cut][-4:]
    fit = hz.fit_horizon_model(
        rows.on_days([d for d in days if d not in validation_days]),
        rows.on_days(validation_days),
        HORIZONS,
        early_settings,
        train_cutoff=cut,
        validation_cutoff=cut,
        calibrate=False,
    )
    late = rows.on_days([d for d in days if d + pd.Timedelta(days=90) > cut])
    predicted = fit.model.raw_curve(fit.model.matrix(late.features))[:, 2].mean()
    # the truth, from the full world: churn within 90 days of these snapshot days
    full = hz.horizon_rows(
        pd.DataFrame(
            {
                "customer_id": late.customer_ids,
                "snapshot_date": late.dates,
            }
        ),
        customers,
    )
    truth = float((full.days_to_churn <= 90).mean())
    naive, _ = late.labels_at(90, cut)  # unseen days counted as no churn
    assert abs(predicted - truth) < 0.35 * truth
    assert naive.mean() < 0.75 * truth
    assert abs(predicted - truth) < abs(naive.mean() - truth) / 2


# -- order and quality ---------------------------------------------------------------------
def test_probabilities_never_decrease_with_the_horizon(fitted: Fitted) -> None:
    model = fitted.fit.model
    test = fitted.part("test")
    raw = model.raw_curve(model.matrix(test.features))
    curve = model.curve(test.features)
    assert (np.diff(raw, axis=1) >= 0).all()
    assert (np.diff(curve, axis=1) >= 0).all()
    assert set(model.calibrators) == set(HORIZONS)


def test_the_curves_30_day_point_ranks_as_well_as_a_30_day_model(fitted: Fitted) -> None:
    """The 30-day point of the curve against a LightGBM fitted on the 30-day labels of the
    same training rows (those whose label is known), on the same test rows."""
    train, validation, test = fitted.part("train"), fitted.part("validation"), fitted.part("test")
    y, known = train.labels_at(30, fitted.fold.train_cutoff)
    vy, vknown = validation.labels_at(30, fitted.fold.validation_cutoff)
    params = learners.lightgbm_params(int(known.sum()), int(y[known].sum()), 42)
    single = learners.fit_booster(
        train.features[known], y[known], validation.features[vknown], vy[vknown], params
    )
    ty, tknown = test.labels_at(30, test.dates.max() + np.timedelta64(400, "D"))
    assert tknown.all()
    single_auc = roc_auc_score(ty, single.predict(test.features))
    curve_auc = roc_auc_score(ty, fitted.fit.model.curve(test.features)[:, 1])
    # a rough match: about 300 churners in the test rows make a difference of 0.02 noise
    assert curve_auc > single_auc - 0.05


def test_evaluation_gives_every_horizon_and_the_curves_metrics(fitted: Fitted) -> None:
    train, test = fitted.part("train"), fitted.part("test")
    as_of = default_as_of(fitted.interactions)
    baselines = hz.baseline_scores(
        train, test, HORIZONS, train_cutoff=fitted.fold.train_cutoff, seed=1
    )
    metrics = hz.evaluate_horizons(
        fitted.fit.model, test, cutoff=as_of, capacity=100, baselines=baselines
    )
    assert sorted(metrics) == list(HORIZONS)
    for entry in metrics.values():
        assert {"model", "logistic", "rule"} <= set(entry)
        assert 0.5 < entry["model"]["roc_auc"] <= 1
        assert entry["model"]["ece"] < 0.05
    curve = fitted.fit.model.curve(test.features)
    survival = hz.survival_metrics(
        1 - curve, HORIZONS, train, test, train_cutoff=fitted.fold.train_cutoff, test_cutoff=as_of
    )
    assert 0.5 < survival["uno_c"] < 1
    assert 0 < survival["integrated_brier"] < 0.25
    assert 0.5 < survival["td_auc_mean"] < 1


# -- the gate ------------------------------------------------------------------------------
def _fold(model: dict[int, float], logistic: float, rule: float) -> dict:
    return {
        h: {
            "model": {"roc_auc": auc},
            "logistic": {"roc_auc": logistic},
            "rule": {"roc_auc": rule},
        }
        for h, auc in model.items()
    }


def test_the_gate_passes_when_every_horizon_beats_the_baselines() -> None:
    gate = hz.horizon_gate([_fold({7: 0.8, 30: 0.75, 90: 0.7}, 0.68, 0.6)] * 2)
    assert gate.passed
    assert "7,30,90" in gate.reasons[0]


def test_the_training_horizon_is_gated_with_the_churn_model_not_by_the_hazard_model() -> None:
    """At 30 days the served probability is the churn model's (the curve is anchored
    there), so the hazard model's own 30-day ROC-AUC does not hold the model back."""
    fold = _fold({7: 0.8, 30: 0.6, 90: 0.7}, 0.68, 0.61)
    assert not hz.horizon_gate([fold]).passed
    gate = hz.horizon_gate([fold], served_by_churn_model=30)
    assert gate.passed
    assert "7,90" in gate.reasons[0] and "30 days is the churn model's" in gate.reasons[0]
    fold[7]["model"]["roc_auc"] = 0.6
    assert not hz.horizon_gate([fold], served_by_churn_model=30).passed


def test_the_gate_fails_when_a_horizon_has_no_baseline() -> None:
    fold = _fold({7: 0.8, 30: 0.75, 90: 0.7}, 0.68, 0.6)
    del fold[90]["logistic"]
    gate = hz.horizon_gate([fold])
    assert not gate.passed
    assert "fold 1 90d: no logistic baseline" in gate.reasons[0]


def test_the_gate_fails_when_one_horizon_of_one_fold_loses() -> None:
    good = _fold({7: 0.8, 30: 0.75, 90: 0.7}, 0.68, 0.6)
    bad = _fold({7: 0.8, 30: 0.75, 90: 0.66}, 0.68, 0.6)
    gate = hz.horizon_gate([good, bad])
    assert not gate.passed
    assert "fold 2 90d" in gate.reasons[0]


@pytest.mark.parametrize(("churn_passes", "failing"), [(True, 7), (False, 90)])
def test_the_run_gate_keeps_the_model_and_names_the_horizon_that_failed(
    churn_passes: bool, failing: int
) -> None:
    from training.promotion import GateDecision, with_horizon_gate

    aucs = {7: 0.8, 30: 0.75, 90: 0.7, failing: 0.6}
    churn = GateDecision(churn_passes, ("the churn model's reasons",), {"calibrated": churn_passes})
    decision = with_horizon_gate(churn, hz.horizon_gate([_fold(aucs, 0.68, 0.61)]))
    assert not decision.promote
    assert decision.checks["every_horizon_beats_baselines"] is False
    assert f"horizon {failing}d does not beat the baselines" in decision.text()
    assert "the churn model's reasons" in decision.text()


def test_the_run_gate_promotes_when_the_churn_model_and_every_horizon_pass() -> None:
    from training.promotion import GateDecision, with_horizon_gate

    churn = GateDecision(True, ("ok",), {"calibrated": True})
    gate = hz.horizon_gate([_fold({7: 0.8, 30: 0.75, 90: 0.7}, 0.68, 0.6)])
    assert with_horizon_gate(churn, gate).promote


# -- folds and flags -----------------------------------------------------------------------
def test_fold_test_and_validation_rows_see_the_longest_horizon_in_full() -> None:
    days = list(pd.date_range("2025-01-06", periods=60, freq="7D"))
    as_of = days[-1] + pd.Timedelta(days=30)
    settings = TrainingSettings(backtest_folds=2)
    folds = hz.horizon_folds(days, HORIZONS, settings, as_of=as_of)
    for fold in folds:
        assert fold.test[-1] + pd.Timedelta(days=90) <= as_of
        assert fold.validation[-1] + pd.Timedelta(days=90) < fold.test[0]
        assert fold.train[-1] < fold.train_cutoff == fold.validation[0]
    assert folds[1].test[-1] < folds[0].test[0]


def test_a_short_history_names_the_fix() -> None:
    days = list(pd.date_range("2025-01-06", periods=12, freq="7D"))
    with pytest.raises(DataError, match="shorter longest --horizons"):
        hz.horizon_folds(days, HORIZONS, TrainingSettings(), as_of=days[-1])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("7,30.5,90", "'30.5' is not a whole number of days"),
        ("7,abc", "'abc' is not a whole number"),
        ("30,7,90", "must increase"),
        ("7,7,30", "must increase"),
        ("7,90", "lacks the training horizon 30"),
        ("0,30", "'0' is not a whole number of days >= 1"),
    ],
)
def test_bad_horizons_get_one_line_naming_value_and_fix(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        hz.parse_horizons(value, 30)
    assert "\n" not in str(error.value)


def test_horizons_longer_than_the_history_are_refused() -> None:
    with pytest.raises(ConfigError, match="longer than the history allows"):
        hz.parse_horizons("7,30,400", 30, history_days=365)
    assert hz.parse_horizons("7,30,90", 30, history_days=365) == (7, 30, 90)


def test_the_refit_keeps_the_order_and_the_calibrators(fitted: Fitted) -> None:
    as_of = default_as_of(fitted.interactions)
    model = hz.refit_horizon_model(fitted.rows, fitted.fit, fitted.settings, cutoff=as_of)
    assert isinstance(model, HorizonModel)
    assert model.calibrators.keys() == fitted.fit.model.calibrators.keys()
    curve = model.curve(fitted.part("test").features)
    assert (np.diff(curve, axis=1) >= 0).all()
    assert isinstance(model.booster, lgb.Booster)
