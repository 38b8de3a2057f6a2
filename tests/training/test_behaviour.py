"""Behaviour tests of a trained model (Made-With-ML's directional and invariance tests).

On the model trained on the committed sample world (``tests.serving.helpers.trained_home``,
trained once per session): one more unresolved case, long wait or abandoned call never
lowers a customer's probability beyond ``TOLERANCE``, and renaming the ids changes nothing.
The directions hold by construction for the trees (``training.learners.monotone_params``);
these tests hold the whole served model to them (blend and calibrator included).
"""

from __future__ import annotations

import pandas as pd
import pytest

from churnml.validation import load_tables
from model.artifact import ChurnModel
from tests.serving.helpers import SAMPLE, trained_home
from tests.training.behaviour import (
    AS_OF,
    CHANGES,
    SHORT_WAIT_PENDING,
    against_direction,
    change_in_probability,
    load_trained,
    probabilities,
    trees_falling,
)

# A pending case also adds a contact and a case started, which the trees are free on (a
# contact can be a question); with the sample model that lowers one customer in 301 by
# 0.0084. Constraining the contact counts, or the cases started and the contact trend,
# made that 0, but cost 0.010-0.011 ROC-AUC on world A of benchmarks/model_quality_bench.py
# (and 0.000-0.002 on B-D), so they stay free and the tolerance is 0.01: the unconstrained
# model of before the monotone constraints fell by 0.0103 (README, "Behaviour").
TOLERANCE = 0.01
# A customer on whom an earlier model fell by 0.010 when a pending case was added.
WATCHED = "C003119"


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    return load_trained(trained_home())


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    loaded = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    return loaded.customers, loaded.interactions


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_bad_contact_more_never_lowers_the_probability(model, tables, name):
    customers, interactions = tables
    delta = change_in_probability(model, customers, interactions, CHANGES[name], WATCHED)
    assert len(delta) > 250
    worst = delta.idxmin()
    assert delta.min() >= -TOLERANCE, f"{name}: {worst} falls by {-delta.min():.4f}"
    # The change is seen: on average it raises the risk.
    assert delta.mean() > 0


def test_a_pending_case_with_a_short_wait_does_not_lower_the_watched_customer(model, tables):
    """The case that showed the trees' free directions: a pending case on a phone call
    answered in 60 s halves the watched customer's mean wait (one earlier 28 h email
    wait); unconstrained, abandoned contacts, bad experiences and waits had parts learned
    the wrong way round, and the probability fell by 0.010."""
    customers, interactions = tables
    delta = change_in_probability(model, customers, interactions, SHORT_WAIT_PENDING, WATCHED)
    assert delta[WATCHED] >= -TOLERANCE
    assert delta.min() >= -TOLERANCE, f"{delta.idxmin()} falls by {-delta.min():.4f}"


def test_raising_a_feature_of_known_direction_never_moves_the_trees_against_it(model, tables):
    customers, interactions = tables
    assert trees_falling(model, customers, interactions) == 0


def test_the_linear_term_has_no_coefficient_against_a_known_direction(model):
    assert model.blend is not None  # the sample world's model is stacked
    assert against_direction(model) == {}


def renamed(frame: pd.DataFrame, column: str, prefix: str) -> pd.DataFrame:
    """``frame`` with every value of ``column`` renamed, consistently."""
    out = frame.copy()
    values = out[column]
    codes, uniques = pd.factorize(values)
    names = pd.array([f"{prefix}{i:07d}" for i in range(len(uniques))], dtype=values.dtype)
    out[column] = pd.Series(names.take(codes, allow_fill=True), index=out.index).where(
        values.notna()
    )
    return out.astype({column: values.dtype})


def test_renaming_ids_changes_nothing(model, tables):
    customers, interactions = tables
    before = probabilities(model, customers, interactions)
    new_ids = renamed(customers, "customer_id", "Z")["customer_id"]
    mapping = dict(zip(customers["customer_id"], new_ids, strict=True))
    new_customers = customers.assign(customer_id=customers["customer_id"].map(mapping))
    new_interactions = interactions.assign(
        customer_id=interactions["customer_id"].map(mapping)
    ).astype({"customer_id": interactions["customer_id"].dtype})
    new_interactions = renamed(new_interactions, "interaction_id", "J")
    new_interactions = renamed(new_interactions, "case_id", "K")
    assert not new_interactions["case_id"].isin(interactions["case_id"].dropna()).any()
    after = probabilities(model, new_customers, new_interactions)
    assert list(after.index) == [mapping[c] for c in before.index]
    pd.testing.assert_series_equal(
        pd.Series(after.to_numpy()), pd.Series(before.to_numpy()), check_exact=True
    )


def test_the_watched_customer_is_active_on_the_day(model, tables):
    customers, interactions = tables
    assert WATCHED in probabilities(model, customers, interactions).index
    assert AS_OF == pd.Timestamp("2026-06-01")
