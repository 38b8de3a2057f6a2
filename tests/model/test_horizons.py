"""The horizon model's files and predictions (model.horizons)."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churnml.errors import DataError, ModelError
from model.artifact import Calibrator
from model.horizons import (
    BOOSTER_FILE,
    SPEC_FILE,
    HorizonModel,
    column_name,
    likely_within,
    period_matrix,
)

HORIZONS = (7, 30, 90)


@pytest.fixture(scope="module")
def model() -> HorizonModel:
    """A small hazard model fitted on random customer-period rows."""
    rng = np.random.default_rng(0)
    n = 3000
    features = pd.DataFrame(
        {
            "contacts_30d": rng.poisson(2, n).astype("float64"),
            "plan": pd.Categorical(rng.choice(["basic", "premium"], n)),
        }
    )
    codes = features["plan"].cat.codes.to_numpy().astype("float64")
    base = np.column_stack([features["contacts_30d"].to_numpy(), codes])
    x = np.concatenate([period_matrix(base, end) for end in HORIZONS])
    logit = -4 + 0.4 * x[:, 0] + 0.02 * x[:, 2]
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 7, "seed": 1},
        lgb.Dataset(x, label=y, categorical_feature=[1]),
        num_boost_round=30,
    )
    return HorizonModel(
        booster=booster,
        horizons=HORIZONS,
        feature_names=["contacts_30d", "plan"],
        categories={"plan": ["basic", "premium"]},
        # a calibrator that lifts the 7-day point above the raw 30-day one: the order
        # must hold anyway
        calibrators={7: Calibrator("platt", slope=1.0, intercept=3.0)},
        training_horizon=30,
    )


def _customers(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "contacts_30d": rng.poisson(2, n).astype("float64"),
            "plan": rng.choice(["basic", "premium", "family"], n),
        },
        index=pd.Index([f"C{i}" for i in range(n)], name="customer_id"),
    )


def test_the_calibrated_curve_never_decreases_with_the_horizon(model: HorizonModel) -> None:
    curve = model.curve(_customers())
    assert (np.diff(curve, axis=1) >= 0).all()
    raw = model.raw_curve(model.matrix(_customers()))
    # the calibrator broke the order on some rows before the cumulative maximum
    assert (model.calibrators[7].predict(raw[:, 0]) > raw[:, 1]).any()


def test_predict_names_a_column_per_horizon_and_picks_a_subset(model: HorizonModel) -> None:
    customers = _customers()
    frame = model.predict(customers, [7, 90])
    assert (
        list(frame.columns)
        == [column_name(7), column_name(90)]
        == [
            "churn_probability_7d",
            "churn_probability_90d",
        ]
    )
    assert frame.index.equals(customers.index)
    np.testing.assert_allclose(frame.to_numpy(), model.curve(customers)[:, [0, 2]])


def test_a_horizon_the_model_was_not_trained_on_is_one_line(model: HorizonModel) -> None:
    with pytest.raises(DataError, match="trained on the horizons 7,30,90") as error:
        model.predict(_customers(), [14])
    assert "\n" not in str(error.value)


def test_anchoring_sets_the_training_horizon_and_keeps_the_order(model: HorizonModel) -> None:
    customers = _customers()
    curve = model.curve(customers)
    churn_probability = np.linspace(0.01, 0.9, len(customers))
    anchored = model.anchored(curve, churn_probability)
    np.testing.assert_array_equal(anchored[:, 1], churn_probability)
    assert (np.diff(anchored, axis=1) >= 0).all()


def test_one_booster_call_gives_the_hazards_of_every_period(model: HorizonModel) -> None:
    matrix = model.matrix(_customers())
    one_call = model.hazards(matrix)
    per_period = np.column_stack(
        [model.booster.predict(period_matrix(matrix, h)) for h in HORIZONS]
    )
    np.testing.assert_allclose(one_call, per_period, rtol=0, atol=1e-12)


def test_anchoring_moves_the_whole_curve_with_the_anchor(model: HorizonModel) -> None:
    """Where the churn model says twice the curve's 30-day risk, the 90-day risk rises too
    (the cumulative hazard is scaled) instead of being cut flat at the anchor."""
    curve = model.raw_curve(model.matrix(_customers()))  # the fixture's 7-day calibrator
    doubled = np.minimum(2 * curve[:, 1], 0.9)  # flattens the calibrated curve
    anchored = model.anchored(curve, doubled)
    np.testing.assert_array_equal(anchored[:, 1], doubled)
    rising = (curve[:, 2] > curve[:, 1]) & (doubled < 0.9)
    assert rising.sum() > 50
    assert (anchored[rising, 2] > doubled[rising]).all()
    assert (anchored[rising, 0] > curve[rising, 0]).all()
    factor = -np.log1p(-anchored[rising]) / -np.log1p(-curve[rising])
    np.testing.assert_allclose(factor[:, 0], factor[:, 2], rtol=1e-9)  # one factor a row


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([0.10, 0.15, 0.20], 7),  # half of 0.20 by day 7: leaves early if at all
        ([0.02, 0.12, 0.20], 30),
        ([0.01, 0.05, 0.20], 90),  # slow erosion
        ([0.0, 0.0, 0.0], None),  # no churn to place
    ],
)
def test_likely_within_is_the_first_horizon_with_half_the_longest_risk(row, expected) -> None:
    (within,) = likely_within(np.array([row]), HORIZONS)
    assert np.isnan(within) if expected is None else within == expected


def test_save_and_load_give_the_same_curve(model: HorizonModel, tmp_path: Path) -> None:
    model.save(tmp_path / "horizons")
    loaded = HorizonModel.load(tmp_path / "horizons")
    assert loaded.horizons == HORIZONS
    assert loaded.training_horizon == 30
    assert loaded.calibrators == model.calibrators
    np.testing.assert_array_equal(loaded.curve(_customers()), model.curve(_customers()))
    assert not list((tmp_path / "horizons").glob("*.pkl"))


def test_a_damaged_booster_file_is_refused_before_lightgbm_reads_it(
    model: HorizonModel, tmp_path: Path
) -> None:
    folder = model.save(tmp_path / "horizons")
    text = (folder / BOOSTER_FILE).read_bytes()
    (folder / BOOSTER_FILE).write_bytes(text[: len(text) // 2])
    with pytest.raises(ModelError, match="does not match the sha256") as error:
        HorizonModel.load(folder, source="models:/churn-risk/3")
    assert str(error.value).startswith("models:/churn-risk/3: horizons.txt")


def test_a_spec_of_another_format_is_refused(model: HorizonModel, tmp_path: Path) -> None:
    folder = model.save(tmp_path / "horizons")
    spec = (folder / SPEC_FILE).read_text().replace('"format_version": 1', '"format_version": 9')
    (folder / SPEC_FILE).write_text(spec)
    with pytest.raises(ModelError, match="format 9"):
        HorizonModel.load(folder)


def test_a_missing_feature_column_is_one_line_naming_it(model: HorizonModel) -> None:
    with pytest.raises(DataError, match="horizon model features: 1 column.*contacts_30d"):
        model.curve(_customers().drop(columns="contacts_30d"))
