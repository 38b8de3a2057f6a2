"""The model's input schema over HTTP, from the real ``churnml serve``: published at
``GET /model`` and in the OpenAPI spec, and a warning per rarely missing field a
customer lacks in ``POST /score``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import churnml_serve
from tests.integration.test_service_http import START_SECONDS, call
from tests.serving.helpers import ADMIN_KEY, SAMPLE, service_env, trained_home

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"
SAMPLE_EXTRAS = {"contract_type", "region", "payment_method"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**os.environ, **service_env(trained_home())}
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield url


def readme_score_body() -> dict:
    """The body of the README's ``curl ... /score`` example, as written there."""
    text = README.read_text()
    found = re.search(
        r"-d '(\{\"as_of\".*?\})' \\\n\s*http://127\.0\.0\.1:3000/score\n", text, re.S
    )
    assert found, "the README's /score example moved; update this test"
    return json.loads(found.group(1))


def test_get_model_publishes_the_input_schema(server: str) -> None:
    status, raw = call(server + "/model")
    assert status == 200, raw
    schema = {field["name"]: field for field in json.loads(raw)["input_schema"]}
    assert SAMPLE_EXTRAS <= set(schema)
    regions = {line.split(",")[6] for line in (SAMPLE / "customers.csv").read_text().split()[1:]}
    assert set(schema["region"]["categories"]) == regions
    assert schema["region"]["type"] == "category" and schema["region"]["missing_share"] == 0.0
    assert schema["monthly_revenue"]["type"] == "number"


def test_the_openapi_spec_declares_the_schema_and_the_warnings(server: str) -> None:
    status, raw = call(server + "/docs.json", key=ADMIN_KEY)
    assert status == 200, raw
    components = json.loads(raw)["components"]["schemas"]
    assert "input_schema" in components["ModelInfo"]["properties"]
    assert "warnings" in components["CustomerScore"]["properties"]
    assert set(components["FieldWarning"]["properties"]) == {"field", "text"}


def test_the_readme_example_is_warned_about_each_sample_field_it_lacks(server: str) -> None:
    status, raw = call(server + "/score", method="POST", body=readme_score_body())
    assert status == 200, raw
    (score,) = json.loads(raw)["scores"]
    assert {w["field"] for w in score["warnings"]} == SAMPLE_EXTRAS
    for warning in score["warnings"]:
        assert warning["text"].startswith(f"{warning['field']} is missing")


def test_a_customer_with_every_field_gets_no_warning(server: str) -> None:
    body = readme_score_body()
    body["customers"][0].update(
        contract_type="monthly", region="north", payment_method="direct_debit"
    )
    status, raw = call(server + "/score", method="POST", body=body)
    assert status == 200, raw
    assert json.loads(raw)["scores"][0]["warnings"] == []


def test_a_null_field_is_missing_too(server: str) -> None:
    body = readme_score_body()
    body["customers"][0].update(
        contract_type="monthly", region=None, payment_method="direct_debit", plan=None
    )
    status, raw = call(server + "/score", method="POST", body=body)
    assert status == 200, raw
    assert [w["field"] for w in json.loads(raw)["scores"][0]["warnings"]] == ["plan", "region"]
