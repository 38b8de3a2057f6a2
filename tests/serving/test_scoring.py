"""``serving.scoring`` without HTTP: the rules checked on whole arrays, contact times read
in UTC once per request, the features built from the request's columns, the feature
matrix and the reasons' values taken from arrays, each against the slower row-by-row or
DataFrame way it replaces."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from model.predictor import Prediction
from serving.schemas import Customer
from serving.scoring import (
    RequestColumns,
    RequestProblems,
    _problems,
    check_rows,
    table_columns,
    tables,
)
from tests.serving.helpers import AS_OF, payload_customers

DAY = dt.date.fromisoformat(AS_OF)
REQUEST = TypeAdapter(list[Customer])


def _parse(customers: list[dict[str, Any]]) -> list[Customer]:
    """Customers as the service gets them: parsed from JSON."""
    return REQUEST.validate_json(json.dumps(customers))


@pytest.fixture(scope="module")
def scorer(registry_home: Path) -> Any:
    from serving.loading import load_served_model

    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )
    return served.scorer


def _contact(body: list[dict[str, Any]], i: int, j: int, **values: Any) -> list[dict[str, Any]]:
    body[i]["interactions"][j].update(values)
    return body


def _only(body: list[dict[str, Any]], i: int, **values: Any) -> list[dict[str, Any]]:
    """Customer i keeps one contact, changed."""
    body[i]["interactions"] = [{**body[i]["interactions"][0], **values}]
    return body


def _customer(body: list[dict[str, Any]], i: int, **values: Any) -> list[dict[str, Any]]:
    body[i].update(values)
    return body


# Each change breaks a rule (True) or stays just inside it (False).
CHANGES: dict[str, tuple[Callable[[list[dict[str, Any]]], list[dict[str, Any]]], bool]] = {
    "as sent": (lambda b: b, False),
    "duplicate customer": (lambda b: _customer(b, 1, customer_id=b[0]["customer_id"]), True),
    "duplicate contact across customers": (
        lambda b: _contact(b, 2, 0, interaction_id=b[0]["interactions"][0]["interaction_id"]),
        True,
    ),
    "last microsecond of as_of": (
        lambda b: _contact(b, 0, 0, started_at=f"{AS_OF}T23:59:59.999999Z"),
        False,
    ),
    "midnight after as_of": (lambda b: _contact(b, 0, 0, started_at="2026-06-02T00:00:00Z"), True),
    "after as_of only in UTC": (
        lambda b: _contact(b, 0, 0, started_at=f"{AS_OF}T23:30:00-01:00"),
        True,
    ),
    "after as_of only in local time": (
        lambda b: _contact(b, 0, 0, started_at="2026-06-02T01:30:00+02:00"),
        False,
    ),
    "at signup midnight": (
        lambda b: _only(_customer(b, 0, signup_date="2026-01-10"), 0, started_at="2026-01-10"),
        False,
    ),
    "before signup": (
        lambda b: _only(
            _customer(b, 0, signup_date="2026-01-10"), 0, started_at="2026-01-09T23:59:59Z"
        ),
        True,
    ),
    "after the churn day": (
        lambda b: _only(
            _customer(b, 0, churned_at="2026-05-20"), 0, started_at="2026-05-21T00:00:00Z"
        ),
        True,
    ),
    "churned on as_of": (lambda b: _customer(b, 3, churned_at=AS_OF), True),
    "churned before signup": (
        lambda b: _customer(b, 3, signup_date="2026-05-01", churned_at="2026-04-01"),
        True,
    ),
    "signup after as_of": (lambda b: _customer(b, 4, signup_date="2026-06-02"), True),
    "signup on as_of": (lambda b: _customer(b, 4, signup_date=AS_OF, interactions=[]), False),
    "customers without contacts": (
        lambda b: [{**c, "interactions": []} for c in b],
        False,
    ),
}


@pytest.mark.parametrize("case", list(CHANGES))
def test_the_rules_on_arrays_agree_with_the_row_by_row_check(case: str) -> None:
    change, breaks = CHANGES[case]
    customers = _parse(change(copy.deepcopy(payload_customers(6))))
    problems = _problems(customers, DAY)
    assert bool(problems) is breaks, problems
    assert RequestColumns.read(customers).breaks_rules(DAY) is breaks
    assert check_rows(customers, DAY) == problems


def test_problems_name_contact_times_in_utc() -> None:
    body = _contact(copy.deepcopy(payload_customers(1)), 0, 2, started_at=f"{AS_OF}T23:30:00-01:00")
    (problem,) = check_rows(_parse(body), DAY)
    assert problem.loc == ("customers", 0, "interactions", 2, "started_at")
    assert problem.msg.startswith(f"started_at 2026-06-02T00:30:00 is after as_of {AS_OF};")


def _shifted(customers: list[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    """The same moments written in another zone (or without one: UTC)."""
    offset = {"": dt.timedelta(0), "+05:30": dt.timedelta(hours=5, minutes=30)}[zone]
    out = copy.deepcopy(customers)
    for customer in out:
        for contact in customer["interactions"]:
            moment = dt.datetime.fromisoformat(contact["started_at"].replace("Z", "+00:00"))
            local = moment.astimezone(dt.timezone(offset)).replace(tzinfo=None)
            contact["started_at"] = local.isoformat() + zone
    return out


def test_a_contact_time_with_a_zone_is_read_in_utc(scorer: Any) -> None:
    customers = payload_customers(20)
    as_utc = _parse(customers)
    tables_utc = tables(as_utc, scorer.profile_columns, scorer.categorical_profile)[1]
    expected = scorer.score(as_utc, DAY)
    for zone in ("", "+05:30"):
        shifted = _parse(_shifted(customers, zone))
        got = tables(shifted, scorer.profile_columns, scorer.categorical_profile)[1]
        pd.testing.assert_series_equal(got["started_at"], tables_utc["started_at"])
        assert scorer.score(shifted, DAY) == expected


@pytest.mark.parametrize(
    ("moment", "refused"),
    [
        ("2200-12-31T23:00:00-05:00", "date 2201-01-01 outside 1900-01-01 .. 2200-12-31"),
        ("1900-01-01T01:00:00+05:00", "date 1899-12-31 outside 1900-01-01 .. 2200-12-31"),
        ("1899-12-31T23:00:00", "date 1899-12-31 outside 1900-01-01 .. 2200-12-31"),
        ("2200-12-31T23:00:00+05:00", None),
        ("1900-01-01T01:00:00-05:00", None),
        ("2200-12-31T23:59:59.999999Z", None),
    ],
)
def test_a_contact_time_is_refused_when_its_utc_date_is_out_of_range(
    moment: str, refused: str | None
) -> None:
    fine = {"interaction_id": "I0", "started_at": "2026-01-01T00:00:00Z", "channel": "email"}
    contact = {"interaction_id": "I1", "started_at": moment, "channel": "phone"}
    customer = {"customer_id": "C1", "signup_date": "1900-01-01", "interactions": [fine, contact]}
    if refused is None:
        _parse([customer])
        return
    with pytest.raises(ValidationError) as caught:
        _parse([customer])
    (error,) = caught.value.errors()
    assert error["loc"] == (0, "interactions", 1, "started_at")
    assert error["msg"] == f"Value error, {refused}"
    assert error["type"] == "value_error"


def test_every_contact_time_out_of_range_is_named() -> None:
    body = copy.deepcopy(payload_customers(1))
    body[0]["interactions"][1]["started_at"] = "1899-12-31T23:00:00Z"
    body[0]["interactions"][3]["started_at"] = "2201-01-01T00:00:00Z"
    with pytest.raises(ValidationError) as caught:
        _parse(body)
    assert [e["loc"] for e in caught.value.errors()] == [
        (0, "interactions", 1, "started_at"),
        (0, "interactions", 3, "started_at"),
    ]


def test_a_contact_is_a_dict_with_every_field() -> None:
    """Fields left out are None (what the columns read), fields beyond the contract dropped."""
    contact = {"interaction_id": "I1", "started_at": "2026-05-01T10:00:00Z", "channel": "chat"}
    customer = {
        "customer_id": "C1",
        "signup_date": "2020-01-01",
        "interactions": [{**contact, "mood": "grumpy"}],
    }
    (parsed,) = _parse([customer])[0].interactions
    assert parsed == {
        "interaction_id": "I1",
        "started_at": dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC),
        "channel": "chat",
        "case_id": None,
        "topic": None,
        "wait_seconds": None,
        "handle_seconds": None,
        "agent_id": None,
        "transfers": None,
        "abandoned": None,
        "status": None,
        "csat": None,
    }


def test_the_matrix_from_arrays_is_the_matrix_from_the_frame(scorer: Any) -> None:
    from features.build import build_features

    body = payload_customers(40)
    body[3]["region"] = None  # a missing category
    body[5]["payment_method"] = "cheque"  # an unknown one
    customers = _parse(body)
    arrays = scorer.feature_arrays(customers, DAY)
    frame = arrays.frame()
    customer_table, interaction_table = tables(
        customers, scorer.profile_columns, scorer.categorical_profile
    )
    expected = build_features(
        customer_table, interaction_table, pd.Timestamp(DAY), scorer.feature_settings
    )
    pd.testing.assert_frame_equal(frame, expected)
    np.testing.assert_array_equal(
        scorer.predictor.matrix_of(arrays), scorer.predictor.matrix(frame)
    )


def test_the_features_from_columns_are_the_features_from_the_tables(scorer: Any) -> None:
    from features.build import build_feature_arrays, build_features

    body = payload_customers(30)
    body[2]["interactions"] = []
    body[4]["segment"] = None
    body[6]["contract_type"] = 12  # a number where the model knows text
    customers = _parse(body)
    day = pd.Timestamp(DAY)
    settings = scorer.feature_settings
    from_columns = build_feature_arrays(
        *table_columns(customers, scorer.profile_columns, scorer.categorical_profile),
        day,
        settings,
    )
    from_tables = build_features(
        *tables(customers, scorer.profile_columns, scorer.categorical_profile), day, settings
    )
    pd.testing.assert_frame_equal(from_columns.frame(), from_tables)
    for name in from_tables.columns:
        pd.testing.assert_series_equal(  # NaN equals NaN, in object arrays too
            pd.Series(from_columns.column(name)), pd.Series(from_tables[name].to_numpy())
        )


def test_reasons_from_arrays_are_the_reasons_from_the_frame(scorer: Any) -> None:
    body = payload_customers(60)
    body[1]["region"] = None
    customers = _parse(body)
    arrays = scorer.feature_arrays(customers, DAY)
    contributions = scorer.predictor.shares(scorer.predictor.matrix_of(arrays))
    from_frame = scorer.explainer.explain(contributions, arrays.frame(), 3)
    from_arrays = scorer.explainer.explain(contributions, arrays.column, 3)
    assert from_arrays == from_frame
    assert any(reason["text"] for reasons in from_arrays for reason in reasons)


def test_scores_are_the_scores_of_the_dataframe_path(scorer: Any) -> None:
    """The fast path (columns, arrays, matrix) against the frame path it replaces: built
    from the DataFrame tables, reindexed, the model's own ``prepare``."""
    from features.build import build_features

    customers = _parse(payload_customers(50))
    ids = [c.customer_id for c in customers]
    frame = build_features(
        *tables(customers, scorer.profile_columns, scorer.categorical_profile),
        pd.Timestamp(DAY),
        scorer.feature_settings,
    ).reindex(ids)
    predictor = scorer.predictor
    contributions = predictor.shares(predictor.prepare(frame))
    probability = predictor.probability_of_shares(contributions)
    prediction = Prediction(
        probability,
        predictor.model.risk_band(probability),
        scorer.explainer.explain(contributions, frame),
    )
    expected = scorer.results(ids, prediction, DAY)
    assert scorer.score(customers, DAY) == expected


def test_a_request_breaking_rules_raises_every_problem(scorer: Any) -> None:
    body = copy.deepcopy(payload_customers(3))
    body[1]["customer_id"] = body[0]["customer_id"]
    body[2]["signup_date"] = "2026-06-02"
    with pytest.raises(RequestProblems) as caught:
        scorer.score(_parse(body), DAY)
    assert [p.loc for p in caught.value.problems][:2] == [
        ("customers", 1, "customer_id"),
        ("customers", 2, "signup_date"),
    ]
