"""The service through its ASGI app: scores, reasons, auth, bad input, model info, reload."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.serving.helpers import ADMIN_KEY, API_KEY, AS_OF, payload_customers

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def score(client, customers, as_of=AS_OF, headers=AUTH):
    body = {"customers": customers}
    if as_of is not None:
        body["as_of"] = as_of
    return client.post("/score", json=body, headers=headers)


def test_a_customer_gets_a_calibrated_score_reasons_and_a_next_step(client) -> None:
    response = score(client, payload_customers(3))
    assert response.status_code == 200, response.text
    results = response.json()["scores"]
    for result in results:
        assert 0 < result["churn_probability"] < 1
        assert result["risk_band"] in {"low", "medium", "high"}
        assert result["model_name"] == "churn-risk" and result["model_version"] == "1"
        assert result["as_of"] == AS_OF
        assert result["action"]
        assert len(result["reasons"]) <= 3
        # Nothing unusual is said of a customer only when there is nothing to act on.
        if not result["reasons"]:
            assert result["risk_band"] == "low"
            assert result["action"].startswith("No retention step needed")
        for reason in result["reasons"]:
            assert reason["code"] and reason["family"] and reason["text"]
            assert any(ch.isdigit() for ch in reason["text"]) or "no " in reason["text"]
    assert any(result["reasons"] for result in results)


def test_reasons_name_distinct_families_actions_first_strongest_first(client) -> None:
    for result in score(client, payload_customers(20)).json()["scores"]:
        codes = [r["code"] for r in result["reasons"]]
        assert len(codes) == len(set(codes))
        for kind in ("action", "context"):
            contributions = [r["contribution"] for r in result["reasons"] if r["kind"] == kind]
            assert contributions == sorted(contributions, reverse=True)
        kinds = [r["kind"] for r in result["reasons"]]
        assert kinds == sorted(kinds)  # "action" before "context"


def test_a_customer_alone_scores_as_inside_a_batch(client) -> None:
    batch = payload_customers(30)
    together = score(client, batch).json()["scores"]
    alone = score(client, [batch[7]]).json()["scores"][0]
    assert alone == together[7]


def test_scores_match_batch_scoring_of_the_same_model(client, registry_home: Path) -> None:
    import pandas as pd

    from churnml.validation import check_tables
    from serving.loading import load_served_model

    customers = payload_customers(25)
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )
    rows = [{k: v for k, v in c.items() if k != "interactions"} for c in customers]
    contacts = [
        {**i, "customer_id": c["customer_id"]} for c in customers for i in c["interactions"]
    ]
    checked = check_tables(pd.DataFrame(rows), pd.DataFrame(contacts))
    assert checked.ok
    batch = served.predictor.score_tables(checked.customers, checked.interactions, AS_OF)
    online = score(client, customers).json()["scores"]
    for expected, got in zip(batch.to_dict("records"), online, strict=True):
        assert got["customer_id"] == expected["customer_id"]
        assert got["churn_probability"] == pytest.approx(expected["churn_probability"], abs=1e-12)
        assert ",".join(r["code"] for r in got["reasons"]) == expected["reason_codes"]


def test_renaming_the_customer_changes_nothing_but_the_id(client) -> None:
    customer = payload_customers(1, offset=3)[0]
    renamed = {**copy.deepcopy(customer), "customer_id": "someone-else"}
    a = score(client, [customer]).json()["scores"][0]
    b = score(client, [renamed]).json()["scores"][0]
    assert a["churn_probability"] == b["churn_probability"] and a["reasons"] == b["reasons"]


def test_as_of_defaults_to_today(client) -> None:
    import datetime as dt

    customer = payload_customers(1)[0]
    response = score(client, [customer], as_of=None)
    assert response.status_code == 200, response.text
    assert response.json()["scores"][0]["as_of"] == dt.datetime.now(dt.UTC).date().isoformat()


# -- auth ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/score", {}, 401),
        ("post", "/score", {"Authorization": "Bearer not-a-key-at-all-000000"}, 401),
        ("post", "/score", {"Authorization": f"Basic {API_KEY}"}, 401),
        ("get", "/model", {}, 401),
        ("get", "/docs.json", {}, 401),
        ("post", "/admin/reload", {}, 401),
        ("post", "/admin/reload", AUTH, 403),
        ("get", "/healthz", {}, 200),
        ("get", "/livez", {}, 200),
        ("get", "/readyz", {}, 200),
        ("get", "/model", AUTH, 200),
        ("get", "/docs.json", AUTH, 200),
    ],
)
def test_every_endpoint_but_health_needs_a_key_with_its_scope(
    client, method, path, headers, status
) -> None:
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == status
    assert API_KEY not in response.text and ADMIN_KEY not in response.text


def test_an_admin_key_may_score(client) -> None:
    assert score(client, payload_customers(1), headers=ADMIN).status_code == 200


# -- bad input -------------------------------------------------------------------------------
def _one() -> dict:
    return payload_customers(1)[0]


def _set(path, value):
    def change(body):
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return body

    return change


def _drop(path):
    def change(body):
        target = body
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return body

    return change


BAD = {
    "unknown channel": (_set(["customers", 0, "interactions", 0, "channel"], "fax"), "channel"),
    "negative wait": (
        _set(["customers", 0, "interactions", 1, "wait_seconds"], -5),
        "wait_seconds",
    ),
    "csat out of range": (_set(["customers", 0, "interactions", 0, "csat"], 9), "csat"),
    "unknown status": (_set(["customers", 0, "interactions", 0, "status"], "lost"), "status"),
    "contact after as_of": (
        _set(["customers", 0, "interactions", 0, "started_at"], "2026-06-02T00:00:00Z"),
        "started_at",
    ),
    "contact time out of range": (
        _set(["customers", 0, "interactions", 2, "started_at"], "2201-01-01T02:00:00+01:00"),
        "interactions.2.started_at",
    ),
    "contact before signup": (
        _set(["customers", 0, "interactions", 0, "started_at"], "1999-01-01T00:00:00Z"),
        "started_at",
    ),
    "duplicate customer ids": (
        lambda b: {**b, "customers": [b["customers"][0], copy.deepcopy(b["customers"][0])]},
        "customer_id",
    ),
    "duplicate interaction ids": (
        _set(["customers", 0, "interactions", 1, "interaction_id"], "SAME")
        if False
        else (lambda b: _dup_contact(b)),
        "interaction_id",
    ),
    "empty batch": (lambda b: {**b, "customers": []}, "customers"),
    "1001 customers": (
        lambda b: {
            **b,
            "customers": [
                {**b["customers"][0], "customer_id": f"C{i}", "interactions": []}
                for i in range(1001)
            ],
        },
        "customers",
    ),
    "wrong type": (_set(["customers", 0, "monthly_revenue"], "lots"), "monthly_revenue"),
    "missing field": (_drop(["customers", 0, "signup_date"]), "signup_date"),
    "missing interaction id": (
        _drop(["customers", 0, "interactions", 0, "interaction_id"]),
        "interaction_id",
    ),
    "bad date": (_set(["customers", 0, "signup_date"], "yesterday"), "signup_date"),
    "bad as_of": (_set(["as_of"], "2026-13-01"), "as_of"),
    "customer not active yet": (_set(["customers", 0, "signup_date"], "2026-07-01"), "signup_date"),
    "customer already left": (_set(["customers", 0, "churned_at"], "2026-05-01"), "churned_at"),
    "nested profile value": (_set(["customers", 0, "region"], {"a": 1}), "customers"),
    "customers not a list": (_set(["customers"], "C1"), "customers"),
}


def _dup_contact(body):
    contacts = body["customers"][0]["interactions"]
    contacts[1]["interaction_id"] = contacts[0]["interaction_id"]
    return body


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_4xx_naming_the_field(client, case) -> None:
    change, field = BAD[case]
    body = change({"customers": [_one()], "as_of": AS_OF})
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code in (400, 422), response.text
    problem = response.json()
    locations = [".".join(map(str, d["loc"])) for d in problem["detail"]]
    assert any(field in where for where in locations), problem


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"[]", b"null", b'{"customers": [1, 2]}', b'{"customers": "\\ud800"}'],
)
def test_malformed_bodies_get_400(client, body) -> None:
    response = client.post(
        "/score", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text


def test_a_body_over_the_limit_gets_413_before_it_is_read(client) -> None:
    body = b'{"customers": [' + b" " * (33 * 1024 * 1024) + b"]}"
    response = client.post(
        "/score", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "body" in response.json()["error"]


# -- other endpoints -------------------------------------------------------------------------
def test_score_ids_answers_404_until_daily_scores_exist(client) -> None:
    response = client.post("/score_ids", json={"customer_ids": ["C000001"]}, headers=AUTH)
    assert response.status_code == 404
    assert "daily" in response.json()["error"]


def test_model_describes_the_served_model(client) -> None:
    info = client.get("/model", headers=AUTH).json()
    assert info["name"] == "churn-risk" and info["version"] == "1"
    assert info["alias"] == "champion" and info["contract_version"] == "1"
    assert "roc_auc" in info["test_metrics"] and info["trained_at"]
    assert "wait_mean_seconds_30d" in info["features"]


def test_the_openapi_spec_describes_every_field(client) -> None:
    spec = client.get("/docs.json", headers=AUTH).json()
    assert {"/score", "/score_ids", "/model", "/admin/reload"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    undocumented = [
        f"{name}.{field}"
        for name in ("Customer", "Interaction", "CustomerScore", "Reason", "ModelInfo")
        for field, schema in schemas[name]["properties"].items()
        if not schema.get("description")
    ]
    assert not undocumented


def test_reload_swaps_in_the_current_champion(client) -> None:
    response = client.post("/admin/reload", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["reloaded"] is True
    assert score(client, payload_customers(1)).status_code == 200


def test_a_failed_reload_keeps_the_old_model_and_says_why(client, registry_home: Path) -> None:
    uri = f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    registry.delete_registered_model_alias("churn-risk", "champion")
    try:
        response = client.post("/admin/reload", headers=ADMIN)
    finally:
        registry.set_registered_model_alias("churn-risk", "champion", "1")
    assert response.status_code == 409
    body = response.json()
    assert body["reloaded"] is False and "champion" in body["message"]
    assert body["model"]["version"] == "1"
    assert score(client, payload_customers(1)).status_code == 200
