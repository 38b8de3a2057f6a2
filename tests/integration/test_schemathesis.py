"""schemathesis against the real ``churnml serve``, with an admin key, over every operation
of the served OpenAPI spec: valid and invalid inputs, a bounded number of each. No answer
may be a 5xx, and none may contradict the spec (status, content type, body schema)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.servers import churnml_serve
from tests.integration.test_service_http import call
from tests.serving.helpers import ADMIN_KEY, service_env, trained_home

pytestmark = pytest.mark.slow
START_SECONDS = 120
EXAMPLES = 40  # per operation and mode: ~800 requests
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = tmp_path_factory.mktemp("lists") / "lists.db"
    env = {**os.environ, **service_env(trained_home(), CHURNML_RISK_STORE=f"sqlite:///{store}")}
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_5xx_and_no_answer_against_the_spec(
    server: str, mode: GenerationMode
) -> None:
    status, raw = call(server + "/docs.json", key=ADMIN_KEY)
    assert status == 200
    schema = schemathesis.openapi.from_dict(json.loads(raw))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    found: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(operation.as_strategy(generation_mode=mode))
        def conforms(case) -> None:
            response = case.call(base_url=server, headers=headers, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as failure:  # collected: no shrinking
                key = f"{case.method} {case.path} -> {response.status_code}"
                found.setdefault(key, str(failure)[:1500])

        try:
            conforms()
        except Unsatisfiable:  # negative mode: an operation with no input cannot be negated
            assert mode == GenerationMode.NEGATIVE
    assert not found, "\n".join(found) + "\n\n" + "\n\n".join(found.values())
