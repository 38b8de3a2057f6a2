"""The features' known directions (``features.columns``) reach both learners."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import FeatureSettings, feature_columns
from features.columns import (
    RISK_FALLING,
    RISK_RISING,
    SNAPSHOT_FEATURES,
    WINDOWED_FEATURES,
    risk_direction,
)
from training.learners import fit_logistic_baseline, linear_term, monotone_params


@pytest.mark.parametrize(
    ("column", "direction"),
    [
        ("long_waits_30d", 1),
        ("wait_p90_seconds_7d", 1),
        ("abandoned_contacts_90d", 1),
        ("open_cases", 1),
        ("bad_experiences_trend_ratio", 1),
        ("csat_last", -1),
        ("first_contact_resolution_rate_90d", -1),
        ("days_since_last_bad_experience", -1),
        ("contacts_30d", 0),
        ("days_since_last_contact", 0),
        ("tenure_days", 0),
        ("segment", 0),
        ("profile_region", 0),
        ("TotalCharges", 0),  # a customer table's own column
    ],
)
def test_a_column_has_the_direction_of_its_family(column, direction):
    assert risk_direction(column) == direction


def test_every_known_direction_names_a_feature():
    assert RISK_RISING | RISK_FALLING <= {*WINDOWED_FEATURES, *SNAPSHOT_FEATURES}
    assert not RISK_RISING & RISK_FALLING


def test_the_trees_get_one_constraint_per_column_in_order():
    columns = feature_columns(FeatureSettings(), ["region"])
    params = monotone_params({"objective": "binary"}, columns)
    assert params["monotone_constraints"] == [risk_direction(c) for c in columns]
    assert len(params["monotone_constraints"]) == len(columns)
    assert params["monotone_constraints_method"] == "intermediate"


def test_a_table_without_known_features_trains_unconstrained():
    params = {"objective": "binary"}
    assert monotone_params(params, ["tenure", "MonthlyCharges"]) == params


def test_a_coefficient_against_its_direction_is_held_at_zero():
    """Long waits that (in this sample) go with staying: the regression leaves them out
    instead of learning that waiting keeps customers."""
    rng = np.random.default_rng(0)
    n = 2000
    open_cases = rng.poisson(1.0, n).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-(open_cases - 2)))).astype(int)
    long_waits = np.where(y == 1, 0.0, rng.poisson(2.0, n)).astype(float)
    x = pd.DataFrame(
        {
            "open_cases": open_cases,
            "long_waits_7d": long_waits,
            "tenure_days": rng.normal(300, 50, n),
            "segment": pd.Categorical(rng.choice(["consumer", "business"], n)),
        }
    )
    free = linear_term(
        fit_logistic_baseline(x.assign(long_waits_7d=-long_waits), y, ["segment"], 0),
        x,
        {"segment": ["business", "consumer"]},
    )
    assert free.numeric["long_waits_7d"]["coef"] > 0  # the fit wants this sign when flipped
    pipeline = fit_logistic_baseline(x, y, ["segment"], 0)
    term = linear_term(pipeline, x, {"segment": ["business", "consumer"]})
    assert term.numeric["long_waits_7d"]["coef"] == 0.0
    assert term.numeric["open_cases"]["coef"] > 0
    # The term still is the pipeline's decision function.
    matrix = x.copy()
    decision = pipeline.decision_function(matrix.assign(segment=matrix["segment"].astype(str)))
    np.testing.assert_allclose(term.raw_score(x), decision, rtol=1e-9, atol=1e-9)
