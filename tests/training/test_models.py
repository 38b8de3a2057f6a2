"""The classifier's defaults, the calibrator and the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import evaluate, expected_calibration_error, precision_recall_at_k
from training.models import Calibrator, choose_calibrator, fit_calibrator, lightgbm_params


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
