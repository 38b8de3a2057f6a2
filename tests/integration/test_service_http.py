"""The real ``churnml serve`` (BentoML) on a free port of 127.0.0.1, called over HTTP.

One server for the module: health and metrics open, auth 401/403, a score, the model,
a reload, and schemathesis against the served OpenAPI spec finding no 5xx.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.servers import churnml_serve
from tests.serving.helpers import (
    ADMIN_KEY,
    API_KEY,
    AS_OF,
    payload_customers,
    service_env,
    trained_home,
)

pytestmark = pytest.mark.slow
START_SECONDS = 120


def call(url: str, *, method: str = "GET", body: object = None, key: str | None = API_KEY):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def risk_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server's own list store (empty until a test writes a list)."""
    return f"sqlite:///{tmp_path_factory.mktemp('lists') / 'lists.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, risk_store: str) -> Iterator[str]:
    home = trained_home()
    env = {**os.environ, **service_env(home, CHURNML_RISK_STORE=risk_store)}
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield url
    assert API_KEY not in log_path.read_text() and ADMIN_KEY not in log_path.read_text()


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/metrics"])
def test_health_and_metrics_are_open(server: str, path: str) -> None:
    status, body = call(server + path, key=None)
    assert status == 200
    if path == "/metrics":
        assert b"# TYPE" in body


def test_no_key_is_401_and_an_api_key_on_admin_is_403(server: str) -> None:
    body = {"customers": payload_customers(1), "as_of": AS_OF}
    assert call(server + "/score", method="POST", body=body, key=None)[0] == 401
    assert call(server + "/admin/reload", method="POST", body={}, key=API_KEY)[0] == 403


def test_score_over_http(server: str) -> None:
    body = {"customers": payload_customers(3), "as_of": AS_OF}
    status, raw = call(server + "/score", method="POST", body=body)
    assert status == 200, raw
    scores = json.loads(raw)["scores"]
    assert [s["customer_id"] for s in scores] == [c["customer_id"] for c in body["customers"]]
    assert all(s["action"] for s in scores)
    # A customer without reasons is a low one, with nothing unusual to act on.
    assert all(s["reasons"] or s["risk_band"] == "low" for s in scores)
    assert any(s["reasons"] for s in scores)


def test_model_and_reload_over_http(server: str) -> None:
    status, raw = call(server + "/model")
    assert status == 200 and json.loads(raw)["version"] == "1"
    status, raw = call(server + "/admin/reload", method="POST", body={}, key=ADMIN_KEY)
    assert status == 200, raw
    assert json.loads(raw)["reloaded"] is True


def test_risk_list_endpoints_answer_from_the_stored_lists(server: str, risk_store: str) -> None:
    status, raw = call(server + "/risk-list")
    assert status == 404 and b"churnml risk-list" in raw
    assert call(server + "/score_ids", method="POST", body={"customer_ids": ["C1"]})[0] == 404

    import datetime as dt

    from churnml.validation import load_tables
    from serving.loading import load_served_model
    from serving.risklist import make_risk_list
    from serving.settings import RiskListSettings
    from serving.store import RiskListStore
    from tests.serving.helpers import SAMPLE

    home = trained_home()
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    store = RiskListStore(risk_store)
    for day in (dt.date(2026, 6, 10), dt.date(2026, 6, 17)):
        latest = make_risk_list(
            tables.customers,
            tables.interactions,
            day,
            served,
            store,
            RiskListSettings(capacity=30),
        )

    assert call(server + "/risk-list", key=None)[0] == 401
    status, raw = call(server + "/risk-list")
    assert status == 200, raw
    page = json.loads(raw)
    assert page["date"] == "2026-06-17" and page["previous_date"] == "2026-06-10"
    # 30 to call; the first list's controls are held out for the horizon, shown beside them.
    callable_ = [r for r in page["rows"] if not r["suppressed"]]
    assert len(callable_) == 30 and page["total"] == len(page["rows"])
    assert [r["rank"] for r in page["rows"]] == list(range(1, page["total"] + 1))
    held_out = [r for r in page["rows"] if r["suppressed"]]
    assert all("held out as a control on 2026-06-10" in r["not_listed_because"] for r in held_out)
    assert page["dates"] == ["2026-06-17", "2026-06-10"]
    assert all(r["reasons"] and r["change"] for r in page["rows"])
    assert {d["customer_id"] for d in page["departures"]} == set(latest.departures["customer_id"])

    paged = json.loads(call(server + "/risk-list?offset=10&limit=5")[1])
    assert [r["rank"] for r in paged["rows"]] == [11, 12, 13, 14, 15]
    high = json.loads(call(server + "/risk-list?band=high&scope=all&limit=1000")[1])
    expected = int((latest.frame["risk_band"] == "high").sum())
    assert high["total"] == expected and {r["risk_band"] for r in high["rows"]} == {"high"}
    segment = page["segments"][0]
    by_segment = json.loads(call(server + f"/risk-list?segment={segment}")[1])
    assert by_segment["rows"] and {r["segment"] for r in by_segment["rows"]} == {segment}
    first = page["rows"][0]["customer_id"]
    found = json.loads(call(server + f"/risk-list?customer={first[2:]}&scope=all")[1])
    assert first in {r["customer_id"] for r in found["rows"]}
    assert all(first[2:] in r["customer_id"] for r in found["rows"])
    older = json.loads(call(server + "/risk-list?date=2026-06-10")[1])
    assert older["date"] == "2026-06-10" and older["previous_date"] is None
    status, raw = call(server + "/risk-list?date=2020-01-01")
    assert status == 404 and b"2026-06-17" in raw
    assert call(server + "/risk-list?date=yesterday")[0] == 422
    assert call(server + "/risk-list?limit=0")[0] == 422

    status, raw = call(server + "/risk-list.csv?band=high")
    assert status == 200
    lines = raw.decode().splitlines()
    on_list_high = [r for r in page["rows"] if r["risk_band"] == "high"]
    assert lines[0].startswith("list_date,customer_id,rank") and "reason_1" in lines[0]
    assert len(lines) - 1 == len(on_list_high)

    body = {"customer_ids": [first, "nobody"]}
    status, raw = call(server + "/score_ids", method="POST", body=body)
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["not_found"] == ["nobody"] and answer["list_date"] == "2026-06-17"
    (score,) = answer["scores"]
    assert score["customer_id"] == first and score["as_of"] == "2026-06-17"
    assert score["churn_probability"] == pytest.approx(page["rows"][0]["churn_probability"])
    assert score["reasons"][0]["text"] == page["rows"][0]["reasons"][0]["text"]

    status, raw = call(server + "/", key=None)
    assert status == 200 and raw.lower().startswith(b"<!doctype html")


def test_thin_history_is_flagged_in_score_and_the_list_over_http(
    server: str, risk_store: str
) -> None:
    """A customer who joined 20 days before as_of is thin_history in POST /score, with the
    history line among its reasons (context, after the actions); the list's rows and /score_ids carry the same flag."""
    import datetime as dt

    import pandas as pd

    from churnml.validation import load_tables
    from features import FeatureSettings
    from serving.loading import load_served_model
    from serving.risklist import make_risk_list
    from serving.settings import RiskListSettings
    from serving.store import RiskListStore
    from tests.serving.helpers import SAMPLE

    settled = payload_customers(1)[0]
    new = json.loads(json.dumps(settled))
    new["customer_id"] = "NEW-1"
    new["signup_date"] = str((pd.Timestamp(AS_OF) - pd.Timedelta(days=20)).date())
    new["interactions"] = [
        {**c, "interaction_id": f"NEW-{i}"}
        for i, c in enumerate(new["interactions"])
        if c["started_at"] >= new["signup_date"]
    ] or [
        {
            "interaction_id": "NEW-0",
            "started_at": f"{AS_OF}T09:00:00Z",
            "channel": "phone",
            "status": "pending",
            "case_id": "NEW-CASE",
        }
    ]
    status, raw = call(
        server + "/score", method="POST", body={"customers": [settled, new], "as_of": AS_OF}
    )
    assert status == 200, raw
    old_score, new_score = json.loads(raw)["scores"]
    assert old_score["thin_history"] is False
    assert all(r["code"] != "thin_history" for r in old_score["reasons"])
    assert new_score["thin_history"] is True
    (line,) = [r for r in new_score["reasons"] if r["code"] == "thin_history"]
    assert line["text"] == "joined 20 days ago: little history yet"
    assert line["kind"] == "context"  # after the actions, which the team can act on
    kinds = [r["kind"] for r in new_score["reasons"]]
    assert kinds == sorted(kinds)

    home = trained_home()
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    day = dt.date(2026, 6, 17)
    make_risk_list(
        tables.customers,
        tables.interactions,
        day,
        served,
        RiskListStore(risk_store),
        RiskListSettings(capacity=30),
    )
    rows: list[dict] = []
    total = 1
    while len(rows) < total:
        status, raw = call(server + f"/risk-list?scope=all&limit=1000&offset={len(rows)}")
        assert status == 200, raw
        page = json.loads(raw)
        rows, total = rows + page["rows"], page["total"]
    customers = tables.customers.set_index("customer_id")
    longest = max(FeatureSettings().windows)
    tenure = {
        r["customer_id"]: (pd.Timestamp(day) - customers.loc[r["customer_id"], "signup_date"]).days
        for r in rows
    }
    assert any(r["thin_history"] for r in rows)
    assert all(r["thin_history"] == (tenure[r["customer_id"]] < longest) for r in rows)
    thin_one = next(r["customer_id"] for r in rows if r["thin_history"])
    status, raw = call(server + "/score_ids", method="POST", body={"customer_ids": [thin_one]})
    assert status == 200, raw
    (score,) = json.loads(raw)["scores"]
    assert score["thin_history"] is True
    assert "thin_history" in [r["code"] for r in score["reasons"]]


@pytest.fixture(scope="module")
def served_schema(server: str):
    status, raw = call(server + "/docs.json")
    assert status == 200
    return schemathesis.openapi.from_dict(json.loads(raw))


def test_no_input_makes_the_service_answer_5xx(served_schema, server: str) -> None:
    """schemathesis cases for every operation of the served spec, sent with an admin key."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for result in served_schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(operation.as_strategy())
        def no_server_error(case) -> None:
            response = case.call(base_url=server, headers=headers, timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text[:500])

        no_server_error()
