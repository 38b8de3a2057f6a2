"""The real ``churnml serve`` (BentoML) on a free port of 127.0.0.1, called over HTTP.

One server for the module: health and metrics open, auth 401/403, a score, the model,
a reload, and schemathesis against the served OpenAPI spec finding no 5xx.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.servers import free_port, running
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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = trained_home()
    port = free_port()
    env = {**os.environ, **service_env(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    churnml = Path(sys.executable).with_name("churnml")
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(churnml), "serve", "--port", str(port), "--host", "127.0.0.1"],
        ready_url=f"{url}/readyz",
        log_path=log_path,
        start_seconds=START_SECONDS,
        env=env,
    ):
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
    assert all(s["reasons"] and s["action"] for s in scores)


def test_model_and_reload_over_http(server: str) -> None:
    status, raw = call(server + "/model")
    assert status == 200 and json.loads(raw)["version"] == "1"
    status, raw = call(server + "/admin/reload", method="POST", body={}, key=ADMIN_KEY)
    assert status == 200, raw
    assert json.loads(raw)["reloaded"] is True


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
