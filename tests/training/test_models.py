"""The classifier's defaults, the calibrator and the metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from model.linear import LinearTerm
from training.learners import (
    Calibrator,
    _for_sklearn,
    choose_blend_weight,
    choose_calibrator,
    fit_calibrator,
    fit_logistic_baseline,
    lightgbm_params,
    linear_term,
)
from training.metrics import evaluate, expected_calibration_error, precision_recall_at_k


@pytest.mark.parametrize("rows", [2_000, 100_000, 10_000_000])
def test_lightgbm_defaults_never_reweight_the_classes(rows: int) -> None:
    params = lightgbm_params(rows, rows // 20, seed=1)
    assert "scale_pos_weight" not in params and not params.get("is_unbalance", False)
    assert params["min_data_in_leaf"] >= 20


def test_leaves_need_more_rows_as_the_data_grows() -> None:
    small = lightgbm_params(10_000, 500, seed=1)["min_data_in_leaf"]
    large = lightgbm_params(1_000_000, 50_000, seed=1)["min_data_in_leaf"]
    assert large > small


def _miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-(rng.normal(-3, 1.2, n))))
    y = (rng.random(n) < truth).astype(int)
    raw = np.sqrt(truth)  # right order, far too high
    return raw, y


def test_calibration_holds_on_held_out_data() -> None:
    raw, y = _miscalibrated(40_000, seed=3)
    groups = np.arange(len(y))
    calibrator, _ = choose_calibrator(raw[:20_000], y[:20_000], groups[:20_000], seed=0)
    held_out = calibrator.predict(raw[20_000:])
    assert expected_calibration_error(y[20_000:], raw[20_000:]) > 0.1
    assert expected_calibration_error(y[20_000:], held_out) < 0.01
    assert abs(held_out.mean() - y[20_000:].mean()) < 0.005


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_a_calibrator_survives_its_json_round_trip(method: str) -> None:
    raw, y = _miscalibrated(5_000, seed=4)
    calibrator = fit_calibrator(method, raw, y)
    again = Calibrator.from_dict(calibrator.to_dict())
    np.testing.assert_allclose(again.predict(raw), calibrator.predict(raw))


def test_precision_and_recall_at_k_count_the_top_k_of_each_day() -> None:
    y = np.array([1, 0, 0, 1, 1, 0])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.6])
    days = np.array([1, 1, 1, 2, 2, 2])
    precision, recall = precision_recall_at_k(y, p, k=1, dates=days)
    assert precision == 1.0  # day 1: 0.9 is a churner; day 2: 0.7 is a churner
    assert recall == pytest.approx((1 / 1 + 1 / 2) / 2)


def test_a_ranking_score_gets_no_calibration_metrics() -> None:
    y = np.array([0, 1, 0, 1])
    metrics = evaluate(y, np.array([0, 5, 1, 3]), capacity=1, probabilities=False)
    assert metrics["roc_auc"] == 1.0
    assert np.isnan(metrics["brier"]) and np.isnan(metrics["ece"])


def _mixed_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two numeric features (one with gaps), a categorical one with a rare and a missing
    value, and a label that depends on all three."""
    rng = np.random.default_rng(seed)
    waits = rng.exponential(300, n)
    waits[rng.random(n) < 0.2] = np.nan
    contacts = rng.poisson(2, n).astype(float)
    plan = rng.choice(["basic", "plus", "pro", "legacy", None], n, p=[0.5, 0.3, 0.15, 0.002, 0.048])
    logit = -2 + 0.003 * np.nan_to_num(waits, nan=600) + 0.3 * contacts + (plan == "pro") * 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "wait_mean_seconds_30d": waits,
            "contacts_30d": contacts,
            "profile_plan": pd.Categorical(plan, categories=["basic", "legacy", "plus", "pro"]),
        }
    )
    return frame, y


def _linear(frame: pd.DataFrame, y: np.ndarray):
    pipeline = fit_logistic_baseline(frame, y, ["profile_plan"], seed=0)
    categories = {"profile_plan": list(frame["profile_plan"].cat.categories)}
    return pipeline, linear_term(pipeline, frame, categories)


def test_the_linear_term_scores_as_the_fitted_logistic_regression() -> None:
    frame, y = _mixed_frame(3_000, seed=5)
    pipeline, term = _linear(frame, y)
    expected = pipeline.decision_function(_for_sklearn(frame, ["profile_plan"]))
    np.testing.assert_allclose(term.raw_score(frame), expected, atol=1e-9)
    # The rare "legacy" (below min_frequency) and the missing plan keep their own shares.
    assert frame["profile_plan"].isna().any() and (frame["profile_plan"] == "legacy").any()


def test_linear_shares_add_up_to_the_raw_score_and_centre_on_the_training_rows() -> None:
    frame, y = _mixed_frame(3_000, seed=6)
    _, term = _linear(frame, y)
    shares = term.contributions(frame)
    np.testing.assert_allclose(term.bias + shares.sum(axis=1), term.raw_score(frame), atol=1e-9)
    np.testing.assert_allclose(shares.mean(axis=0), 0.0, atol=1e-9)
    assert shares[:, 0].std() > 0.1  # waits matter, so their share moves


def test_the_linear_term_reads_the_serving_matrix_and_survives_json() -> None:
    frame, y = _mixed_frame(500, seed=7)
    _, term = _linear(frame, y)
    codes = frame["profile_plan"].cat.codes.to_numpy().astype(float)
    codes[codes < 0] = np.nan
    matrix = np.column_stack([frame["wait_mean_seconds_30d"], frame["contacts_30d"], codes])
    again = LinearTerm.from_dict(json.loads(json.dumps(term.to_dict())))
    np.testing.assert_allclose(again.contributions(matrix), term.contributions(frame))


@pytest.mark.parametrize(
    ("tree_raw", "linear_raw", "expected"),
    [
        ("truth", "noise", 0.0),  # the linear part only hurts: the trees alone
        ("noise", "truth", 0.75),  # the trees only hurt: as linear as the grid allows
    ],
)
def test_the_blend_weight_follows_the_validation_log_loss(tree_raw, linear_raw, expected) -> None:
    rng = np.random.default_rng(8)
    truth = rng.normal(-2, 1, 20_000)
    y = (rng.random(len(truth)) < 1 / (1 + np.exp(-truth))).astype(int)
    noise = rng.normal(-2, 1, len(truth))
    scores = {"truth": truth, "noise": noise}
    w, losses = choose_blend_weight(scores[tree_raw], scores[linear_raw], y)
    assert w == expected
    assert losses[w] == min(losses.values())
