"""A booster blended with a linear term: scores, per-feature shares and files agree."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from model.artifact import KIND_TABLE, Calibrator, ChurnModel
from model.linear import Blend, LinearTerm
from model.predictor import Predictor

FEATURES = ["waits_30d", "contacts_30d", "profile_plan"]
PLANS = ["basic", "plus", "pro"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 2_000
    waits = rng.exponential(300, n)
    waits[rng.random(n) < 0.1] = np.nan
    plan = rng.choice([*PLANS, None], n, p=[0.5, 0.3, 0.15, 0.05])
    return pd.DataFrame(
        {
            "waits_30d": waits,
            "contacts_30d": rng.poisson(2, n).astype(float),
            "profile_plan": pd.Categorical(plan, categories=PLANS),
        }
    )


@pytest.fixture(scope="module")
def booster(frame: pd.DataFrame) -> lgb.Booster:
    rng = np.random.default_rng(4)
    logit = -2 + 0.004 * np.nan_to_num(frame["waits_30d"].to_numpy(), nan=300)
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 1}
    return lgb.train(params, lgb.Dataset(frame, label=y), num_boost_round=30)


LINEAR = LinearTerm(
    feature_names=tuple(FEATURES),
    numeric={
        "waits_30d": {"fill": 250.0, "mean": 290.0, "scale": 280.0, "coef": 0.4},
        "contacts_30d": {"fill": 2.0, "mean": 2.0, "scale": 1.4, "coef": 0.7},
    },
    categorical={"profile_plan": {"codes": [-0.1, 0.05, 0.6], "missing": 0.2}},
    bias=-2.1,
)


def _predictor(booster: lgb.Booster, blend: Blend | None) -> Predictor:
    return Predictor(_artifact(booster, blend))


def _artifact(booster: lgb.Booster, blend: Blend | None) -> ChurnModel:
    return ChurnModel(
        kind=KIND_TABLE,
        booster=booster,
        calibrator=Calibrator("platt", slope=0.9, intercept=-0.1),
        feature_names=FEATURES,
        categories={"profile_plan": PLANS},
        base_rate=0.12,
        blend=blend,
    )


@pytest.mark.parametrize("weight", [0.25, 0.75])
def test_blended_shares_add_up_to_the_blended_raw_score(booster, frame, weight) -> None:
    model = _predictor(booster, Blend(weight, LINEAR))
    x = model.prepare(frame)
    shares = model.shares(x)
    raw = model.raw_score(x)
    np.testing.assert_allclose(model.attributions.bias + shares.sum(axis=1), raw, atol=1e-9)
    probability = model.explain(x).probability
    np.testing.assert_allclose(probability, model.probability(x), atol=1e-12)
    # TreeSHAP splits the same score around the mean prediction instead of the root values.
    exact = model.exact_shares(x)
    assert np.ptp(exact.sum(axis=1) - shares.sum(axis=1)) < 1e-6
    # The linear part really moves the score: not the booster's raw score alone.
    assert np.abs(raw - booster.predict(x, raw_score=True)).max() > 0.1


def test_a_linear_weight_of_zero_is_the_booster_alone(booster, frame) -> None:
    alone = _predictor(booster, None)
    zero = _predictor(booster, Blend(0.0, LINEAR))
    x = alone.prepare(frame)
    np.testing.assert_allclose(zero.probability(x), alone.probability(x), atol=1e-12)
    np.testing.assert_allclose(zero.shares(x), alone.shares(x), atol=1e-12)


def test_each_feature_gets_the_weighted_sum_of_its_two_shares(booster, frame) -> None:
    alone = _predictor(booster, None)
    model = _predictor(booster, Blend(0.5, LINEAR))
    x = model.prepare(frame)
    trees = alone.shares(x)
    contacts = 0.7 * (x["contacts_30d"].to_numpy() - 2.0) / 1.4
    plan = np.array([-0.1, 0.05, 0.6, 0.2])[x["profile_plan"].cat.codes.to_numpy()]  # -1: 0.2
    shares = model.shares(x)
    np.testing.assert_allclose(shares[:, 1], 0.5 * trees[:, 1] + 0.5 * contacts, atol=1e-12)
    np.testing.assert_allclose(shares[:, 2], 0.5 * trees[:, 2] + 0.5 * plan, atol=1e-12)


def test_the_serving_matrix_gives_the_shares_of_prepared_features(booster, frame) -> None:
    model = _predictor(booster, Blend(0.25, LINEAR))
    x = model.prepare(frame)
    codes = x["profile_plan"].cat.codes.to_numpy().astype(float)
    codes[codes < 0] = np.nan
    matrix = np.column_stack([x["waits_30d"], x["contacts_30d"], codes])
    np.testing.assert_allclose(
        model.attributions.explain_rows(booster, matrix), model.shares(x), atol=1e-12
    )


def test_a_blended_model_survives_its_files(booster, frame, tmp_path: Path) -> None:
    model = _predictor(booster, Blend(0.25, LINEAR))
    loaded = Predictor(ChurnModel.load(model.model.save(tmp_path / "model")))
    assert loaded.model.blend == model.model.blend
    x = model.prepare(frame)
    np.testing.assert_allclose(loaded.probability(x), model.probability(x), atol=1e-12)
