"""The call-effect model (training.uplift, model.call_effect) and its metrics
(training.uplift_metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnml.errors import DataError, ModelError
from model.call_effect import CallEffectModel, booster_file
from training import uplift
from training.uplift_metrics import (
    auuc,
    bootstrap_interval,
    effect_correlation,
    evaluate_uplift,
    qini_coefficient,
    qini_curve,
    true_auuc,
    true_effect_kept_at_k,
    uplift_at_k,
    uplift_curve,
)


def planted(
    rows: int = 4000, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Picks with 80% treated: an open case helps (effect +0.25), a content customer
    without a case is harmed (-0.10), everyone else is unmoved; risk varies apart."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "open_cases": rng.poisson(0.6, rows),
            "satisfaction": rng.random(rows),
            "price_pressure": rng.random(rows),
            "segment": rng.choice(["consumer", "business"], rows),
        }
    )
    effect = np.where(X["open_cases"] > 0, 0.25, np.where(X["satisfaction"] > 0.7, -0.10, 0.0))
    risk = 0.15 + 0.4 * X["price_pressure"].to_numpy()
    treated = (rng.random(rows) < 0.8).astype(int)
    churned = (rng.random(rows) < np.clip(risk - treated * effect, 0, 1)).astype(int)
    return X, treated, churned, effect


@pytest.fixture(scope="module")
def picks() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    return planted()


@pytest.fixture(scope="module", params=uplift.LEARNERS)
def fitted(request: pytest.FixtureRequest, picks: tuple) -> CallEffectModel:
    X, t, y, _ = picks
    return uplift.fit(X, t, y, propensity=0.8, learner=request.param, seed=3)


# -- the learners ------------------------------------------------------------------------
def test_a_helped_group_ranks_above_a_harmed_group(fitted: CallEffectModel, picks: tuple) -> None:
    X, _, _, effect = picks
    predicted = fitted.predict(X)
    helped, harmed = effect > 0, effect < 0
    assert predicted[helped].mean() > predicted[harmed].mean()
    separation = roc_auc_score(helped[helped | harmed], predicted[helped | harmed])
    assert separation > 0.8, f"{fitted.learner}-learner separates with AUC {separation:.2f}"


def test_the_same_seed_fits_the_same_model(picks: tuple) -> None:
    X, t, y, _ = picks
    first = uplift.fit(X, t, y, learner="x", seed=5).predict(X)
    again = uplift.fit(X, t, y, learner="x", seed=5).predict(X)
    np.testing.assert_array_equal(first, again)


def test_saved_and_loaded_model_predicts_the_same(
    fitted: CallEffectModel, picks: tuple, tmp_path: Path
) -> None:
    X, _, _, _ = picks
    fitted.save(tmp_path)
    loaded = CallEffectModel.load(tmp_path)
    assert loaded.learner == fitted.learner
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert not list(tmp_path.glob("*.pkl")), "no pickle among the model's files"


def test_a_category_unseen_in_training_is_predicted_as_missing(fitted: CallEffectModel) -> None:
    rows = pd.DataFrame(
        {"open_cases": [1, 1], "satisfaction": [0.5, 0.5], "price_pressure": [0.3, 0.3]}
    ).assign(segment=["consumer", "wholesale"])
    predicted = fitted.predict(rows)
    assert np.isfinite(predicted).all()


def test_a_damaged_booster_file_is_refused_in_one_line(tmp_path: Path, picks: tuple) -> None:
    X, t, y, _ = picks
    uplift.fit(X, t, y, learner="dr").save(tmp_path)
    path = tmp_path / booster_file("effect")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ModelError, match="truncated or damaged") as error:
        CallEffectModel.load(tmp_path)
    assert "\n" not in str(error.value)


def test_features_missing_a_training_column_are_refused(fitted: CallEffectModel) -> None:
    with pytest.raises(DataError, match=r"missing \(satisfaction\)"):
        fitted.predict(
            pd.DataFrame({"open_cases": [1], "price_pressure": [0.2], "segment": ["consumer"]})
        )


def bad_inputs() -> list:
    X, t, y, _ = planted(rows=400)
    return [
        pytest.param(X, np.ones_like(t), y, None, "0 control row", id="no control rows"),
        pytest.param(X, np.zeros_like(t), y, None, "0 treated row", id="no treated rows"),
        pytest.param(X, t, np.zeros_like(y), None, "have no churner", id="nobody churned"),
        pytest.param(X, t, np.ones_like(y), None, "no customer who stayed", id="everybody churned"),
        pytest.param(X, np.where(t == 1, 2, 0), y, None, "not 0 or 1", id="treatment flag 2"),
        pytest.param(X, t[:-1], y, None, "t has 399 values for 400", id="short treatment"),
        pytest.param(X, t, y, 1.0, "outside", id="propensity 1"),
        pytest.param(X, t, y, np.full(3, 0.5), "3 values for 400 rows", id="short propensity"),
    ]


@pytest.mark.parametrize(("X", "t", "y", "propensity", "message"), bad_inputs())
def test_bad_rows_give_a_one_line_error(
    X: pd.DataFrame, t: np.ndarray, y: np.ndarray, propensity: object, message: str
) -> None:
    with pytest.raises(DataError, match=message) as error:
        uplift.fit(X, t, y, propensity=propensity)
    assert "\n" not in str(error.value)


def test_an_unknown_learner_is_refused() -> None:
    X, t, y, _ = planted(rows=400)
    with pytest.raises(DataError, match="expected one of t, x, dr"):
        uplift.fit(X, t, y, learner="s")


# -- the metrics on cases computed by hand -----------------------------------------------
# Ranked by score: treated stayer, control churner, treated churner, control stayer.
SCORE = np.array([4.0, 3.0, 2.0, 1.0])
TREATED = np.array([1, 0, 1, 0])
CHURNED = np.array([0, 1, 1, 0])


def test_qini_curve_by_hand() -> None:
    # Q(k) = Yc Nt / Nc - Yt: k=1 no control yet 0; k=2 1*1/1-0 = 1; k=3 1*2/1-1 = 1;
    # k=4 1*2/2-1 = 0; divided by the 4 rows.
    share, qini = qini_curve(SCORE, TREATED, CHURNED)
    np.testing.assert_allclose(share, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(qini, [0, 0, 0.25, 0.25, 0])
    # trapezoids 0.25 * (0 + 0.125 + 0.25 + 0.125); the random line ends at 0
    assert qini_coefficient(SCORE, TREATED, CHURNED) == pytest.approx(0.125)


def test_uplift_curve_and_auuc_by_hand() -> None:
    # U(k) = (Yc/Nc - Yt/Nt) k/N: 0, (1 - 0) 2/4, (1 - 1/2) 3/4, (1/2 - 1/2) 1
    _, gain = uplift_curve(SCORE, TREATED, CHURNED)
    np.testing.assert_allclose(gain, [0, 0, 0.5, 0.375, 0])
    assert auuc(SCORE, TREATED, CHURNED) == pytest.approx(0.25 * (0.25 + 0.4375 + 0.1875))


@pytest.mark.parametrize(("k", "expected"), [(2, 1.0), (3, 0.5), (4, 0.0)])
def test_uplift_at_k_by_hand(k: int, expected: float) -> None:
    assert uplift_at_k(SCORE, TREATED, CHURNED, k) == pytest.approx(expected)


def test_uplift_at_k_without_a_control_row_in_the_top_is_undefined() -> None:
    assert np.isnan(uplift_at_k(SCORE, TREATED, CHURNED, 1))


def test_ranking_by_the_true_effect_beats_random_and_its_reverse_loses(picks: tuple) -> None:
    _, t, y, effect = picks
    assert qini_coefficient(effect, t, y) > 0 > qini_coefficient(-effect, t, y)
    assert auuc(effect, t, y) > auuc(-effect, t, y)


def test_a_constant_score_is_random_targeting() -> None:
    assert qini_coefficient(np.zeros(4), TREATED, CHURNED) == pytest.approx(0.0)


def test_true_effect_kept_at_k_by_hand() -> None:
    true_effect = np.array([0.3, -0.1, 0.2, 0.0])
    score = np.array([1.0, 2.0, 3.0, 4.0])  # top 2: rows 3 and 2, 0.0 + 0.2; best 0.3 + 0.2
    assert true_effect_kept_at_k(score, true_effect, 2) == pytest.approx(0.4)
    assert true_effect_kept_at_k(true_effect, true_effect, 2) == pytest.approx(1.0)


def test_true_auuc_by_hand() -> None:
    # ranked true effects 0.3, 0.2, 0.0, -0.1: cumulative / 4 = 0, .075, .125, .125, .1
    true_effect = np.array([0.3, -0.1, 0.2, 0.0])
    expected = 0.25 * (0.0375 + 0.1 + 0.125 + 0.1125)
    assert true_auuc(true_effect, true_effect) == pytest.approx(expected)


def test_effect_correlation_of_a_monotone_score_is_one() -> None:
    true_effect = np.array([0.3, -0.1, 0.2, 0.0])
    assert effect_correlation(np.exp(true_effect), true_effect)["spearman"] == pytest.approx(1.0)


def test_bootstrap_interval_holds_the_estimate_and_repeats_with_its_seed() -> None:
    rng = np.random.default_rng(2)
    t = rng.integers(0, 2, 400)
    score = rng.random(400)
    y = (rng.random(400) < 0.3 + 0.2 * score * (1 - t)).astype(int)  # the call helps high scores
    first = bootstrap_interval(qini_coefficient, score, t, y, samples=100, seed=4)
    again = bootstrap_interval(qini_coefficient, score, t, y, samples=100, seed=4)
    assert first == again
    assert first.low < first.estimate < first.high


def test_bootstrap_of_a_metric_without_spread_is_a_point() -> None:
    interval = bootstrap_interval(qini_coefficient, SCORE, TREATED, np.zeros(4), samples=20)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_evaluate_uplift_names_every_metric(picks: tuple) -> None:
    X, t, y, effect = picks
    metrics = evaluate_uplift(effect, t, y, capacity=400, true_effect=effect, samples=20)
    assert {"qini", "qini_low", "auuc_high", "uplift_at_400", "true_effect_kept_at_400"} <= set(
        metrics
    )
    assert metrics["true_effect_kept_at_400"] == pytest.approx(1.0)
    assert metrics["uplift_at_400_low"] <= metrics["uplift_at_400"] <= metrics["uplift_at_400_high"]


def test_metrics_refuse_rows_of_unequal_length() -> None:
    with pytest.raises(DataError, match="4 scores, 3 treatment flags"):
        qini_coefficient(SCORE, TREATED[:3], CHURNED)
