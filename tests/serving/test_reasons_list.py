"""Reasons that are reasons on the sample world, with the model trained on it: every reason
of a whole risk list has a value unusual in its feature's risky direction, actions come
before context and make the next step, and a profile field the input lacks (or a category
the model never saw) is never a reason, in the list or in a ``POST /score`` answer."""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from churnml.validation import load_tables
from features.columns import (
    LESS_IS_RISKIER,
    MORE_IS_RISKIER,
    NO_RISKY_DIRECTION,
    family_kind,
    risky_direction,
)
from features.reasons import DEFAULT_STEP, LOW_RISK_STEP, NEXT_STEPS
from serving.risklist import CONTROL_ACTION, make_risk_list
from serving.schemas import Customer
from serving.settings import RiskListSettings
from serving.store import RiskListStore
from tests.serving.helpers import AS_OF, SAMPLE, payload_customers

DAY = dt.date(2026, 6, 10)


@pytest.fixture(scope="module")
def tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


@pytest.fixture(scope="module")
def risk_list(tables, served) -> pd.DataFrame:
    store = RiskListStore(f"sqlite:///{Path(tempfile.mkdtemp()) / 'lists.db'}")
    result = make_risk_list(
        tables.customers, tables.interactions, DAY, served, store, RiskListSettings(capacity=50)
    )
    return result.frame


def in_the_risky_direction(reason: dict, categories: dict[str, list[str]]) -> bool:
    """The reason's value, read against its feature's declared risky direction."""
    value, usual, feature = reason["value"], reason["usual"], reason["feature"]
    if feature in categories:
        return value in categories[feature]
    if value is None or not math.isfinite(value) or usual is None:
        return False
    direction = risky_direction(feature)
    if direction == MORE_IS_RISKIER:
        return value > usual and value > 0
    if direction == LESS_IS_RISKIER:
        return value < usual
    if direction == NO_RISKY_DIRECTION:
        return False
    return value != usual


def test_no_reason_of_the_whole_list_has_a_value_in_the_safe_direction(risk_list, served):
    # The little-history line states the tenure (a fact, not a value judged unusual).
    reasons = [r for row in risk_list["reasons"] for r in row if r["code"] != "thin_history"]
    assert len(reasons) >= len(risk_list)  # the list has reasons to check
    categories = served.model.categories
    wrong = [r for r in reasons if not in_the_risky_direction(r, categories)]
    assert wrong == [], f"{len(wrong)} reasons with a usual or safe value, first: {wrong[0]}"
    assert not [r["text"] for r in reasons if "as usual" in r["text"] or "unknown" in r["text"]]


def test_everyone_on_the_list_has_something_to_act_on(risk_list):
    on_list = risk_list.loc[risk_list["on_list"], "reasons"]
    assert all(row and row[0]["kind"] == "action" for row in on_list)


def test_actions_come_first_and_make_the_next_step(risk_list):
    rows = risk_list[["reasons", "risk_band", "action", "group"]]
    assert (rows["group"] == "control").any() and (rows["group"] == "treated").any()
    for reasons, band, action, group in rows.itertuples(index=False):
        kinds = [r["kind"] for r in reasons]
        assert kinds == sorted(kinds)  # "action" < "context"
        assert all(r["kind"] == family_kind(r["family"]) for r in reasons)
        actionable = [r["family"] for r in reasons if r["kind"] == "action"]
        if group == "control":  # the random holdout is never called, whatever its reasons
            assert action == CONTROL_ACTION
        elif band == "low":
            assert action == LOW_RISK_STEP
        elif actionable:
            assert action == NEXT_STEPS.get(actionable[0], DEFAULT_STEP)
        else:
            assert action == DEFAULT_STEP


def test_a_profile_field_missing_from_the_customers_table_is_never_a_reason(tables, served):
    customers = tables.customers.copy()
    customers["contract_type"] = pd.Series(pd.NA, index=customers.index, dtype="string")
    predictor = served.predictor
    features = served.model.features_from_tables(customers, tables.interactions, pd.Timestamp(DAY))
    prediction = predictor.explain(predictor.prepare(features))
    features_quoted = {r["feature"] for row in prediction.reasons for r in row}
    assert "profile_contract_type" in set(served.model.feature_names)
    assert "profile_contract_type" not in features_quoted
    assert features_quoted  # the others still speak


@pytest.mark.parametrize("contract_type", [None, "weekly"])
def test_a_scored_customer_without_a_known_contract_type_gets_no_reason_from_it(
    served, contract_type
):
    payloads = payload_customers(40, min_contacts=1)
    for payload in payloads:
        payload["contract_type"] = contract_type
    customers = [Customer.model_validate(p) for p in payloads]
    scores = served.scorer.score(customers, dt.date.fromisoformat(AS_OF))
    quoted = [r for s in scores for r in s["reasons"]]
    assert quoted and not [r for r in quoted if r["feature"] == "profile_contract_type"]
    assert not [r for r in quoted if "contract type" in r["text"]]


def test_reasons_stored_before_they_had_a_kind_read_back_with_one():
    from serving.store import decode_reasons, encode_reasons

    legacy = (
        '[["profile","profile","tenure_days","has been a customer for 9 months",263.0,832.0,0.4]]'
    )
    (reason,) = decode_reasons(legacy)
    assert reason["kind"] == "context" and reason["feature"] == "tenure_days"
    now = {**reason, "code": "waiting", "family": "waiting", "kind": "action"}
    assert decode_reasons(encode_reasons([now])) == [now]
