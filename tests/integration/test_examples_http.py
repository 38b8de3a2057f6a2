"""The example requests users paste, against the real ``churnml serve``: every ``curl``
block of the README as written (with the README's own keys), the one ``churnml serve``
prints when it starts, and a client generated from ``GET /openapi.json`` with
openapi-python-client (a dev dependency) that calls ``/score`` with only the key."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import churnml_serve
from tests.integration.test_service_http import START_SECONDS, call
from tests.serving.helpers import SAMPLE, service_env, trained_home

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_URL = "http://127.0.0.1:3000"
BIN = Path(sys.executable).parent
CLIENT_PACKAGE = "churnml_generated_client"


def readme_blocks() -> list[str]:
    """The README's bash blocks that send a request with curl."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    return [block for block in blocks if re.search(r"^curl ", block, re.M)]


def readme_keys() -> str:
    """The keys the README's own example exports (its requests send them)."""
    found = re.search(r"^export CHURNML_API_KEYS=(\S+)", README.read_text(), re.M)
    assert found, "the README no longer exports CHURNML_API_KEYS; update this test"
    return found.group(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of the pasted commands: its .churnml/api-key holds the key,
    as ``churnml run`` leaves it."""
    where = tmp_path_factory.mktemp("paste")
    (where / ".churnml").mkdir()
    (where / ".churnml" / "api-key").write_text(readme_keys().split(",")[0] + "\n")
    return where


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    store = f"sqlite:///{tmp_path_factory.mktemp('examples') / 'lists.db'}"
    values = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHURNML_") and k != "MLFLOW_TRACKING_URI"
    }
    values.update(service_env(trained_home(), CHURNML_RISK_STORE=store))
    values["CHURNML_API_KEYS"] = readme_keys()
    _store_a_list(store)
    return values


def _store_a_list(store_url: str) -> None:
    """A list in the server's store, as the daily job writes it (the README pulls one)."""
    from churnml.validation import load_tables
    from serving.loading import load_served_model
    from serving.risklist import make_risk_list
    from serving.settings import RiskListSettings
    from serving.store import RiskListStore

    home = trained_home()
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    store = RiskListStore(store_url)
    try:
        day = dt.date(2026, 6, 24)
        make_risk_list(
            tables.customers, tables.interactions, day, served, store, RiskListSettings()
        )
    finally:
        store.engine.dispose()


@pytest.fixture(scope="module")
def served(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield url, log_path


def paste(lines: str, url: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``lines`` run by bash as a user pastes them, against ``url``; a curl answer of 400 or
    more fails the command."""
    script = lines.replace(README_URL, url)
    script = re.sub(r"\bcurl -s\b", "curl -sS --fail-with-body", script)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env={**env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_has_example_requests() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 2
    assert any("/score" in b for b in blocks) and any("/risk-list" in b for b in blocks)


@pytest.mark.parametrize("number", range(len(readme_blocks())))
def test_each_readme_request_works_when_pasted(served, folder, env, number: int) -> None:
    url, _ = served
    block = readme_blocks()[number]
    # The server is running already, with the keys the block exports.
    lines = "\n".join(line for line in block.splitlines() if not line.startswith("churnml "))
    done = paste(lines, url, folder, env)
    assert done.returncode == 0, f"{block}\n-> {done.stdout[-500:]} {done.stderr[-500:]}"
    for answer in answers(done.stdout):
        assert "error" not in answer, answer


def answers(text: str) -> list[dict]:
    """The JSON objects curl printed, one after another (curl adds no newline)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, start)
        found.append(value)
    return found


def test_the_request_churnml_serve_prints_works_when_pasted(served, folder, env) -> None:
    url, log_path = served
    banner = log_path.read_text().split("Try:\n", 1)[1]
    example = "\n".join(line.strip() for line in banner.splitlines()[:2])
    assert example.startswith("KEY=") and "curl " in example, banner[:500]
    assert "'Authorization: Bearer $KEY'" not in example  # no variable inside single quotes
    done = paste(example, url, folder, env)
    assert done.returncode == 0, done.stdout + done.stderr
    scores = json.loads(done.stdout)["scores"]
    assert scores[0]["customer_id"] == "C1" and 0.0 <= scores[0]["churn_probability"] <= 1.0


# -- a generated client ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client_package(served, tmp_path_factory: pytest.TempPathFactory) -> object:
    """The client openapi-python-client generates from the served spec, imported."""
    url, _ = served
    status, raw = call(f"{url}/openapi.json", key=readme_keys().split(",")[0])
    assert status == 200, raw
    folder = tmp_path_factory.mktemp("client")
    spec = folder / "openapi.json"
    spec.write_bytes(raw)
    generator = BIN / "openapi-python-client"
    assert generator.exists(), (
        f"{generator} is missing: openapi-python-client is a dev dependency; install the "
        "project with its dev extras (pip install -e '.[dev]')"
    )
    done = subprocess.run(
        [str(generator), "generate", "--path", str(spec), "--meta", "none"]
        + ["--output-path", str(folder / CLIENT_PACKAGE)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},  # its ruff
        cwd=folder,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(folder))


def test_the_spec_names_the_service_and_its_bearer_scheme(served) -> None:
    url, _ = served
    status, raw = call(f"{url}/openapi.json", key=readme_keys().split(",")[0])
    assert status == 200
    spec = json.loads(raw)
    assert spec["info"]["title"] == "churnml" and spec["info"]["version"] not in ("", "None")
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path in ("/healthz", "/livez", "/readyz", "/metrics"):
                assert "security" not in operation
                continue
            assert operation["security"] == [{"bearer": []}], (method, path)
            assert {"401", "403", "413", "422", "503"} <= set(operation["responses"]), path
    status, _ = call(f"{url}/openapi.json", key=None)
    assert status == 401


def test_a_generated_client_scores_with_only_the_key(served, client_package) -> None:
    url, _ = served
    score = importlib.import_module(f"{CLIENT_PACKAGE}.api.service_ap_is.churnml_score")
    models = importlib.import_module(f"{CLIENT_PACKAGE}.models")
    client = client_package.AuthenticatedClient(base_url=url, token=readme_keys().split(",")[0])
    body = models.ChurnmlScoreInput.from_dict(
        {
            "as_of": "2026-06-01",
            "customers": [
                {
                    "customer_id": "C1",
                    "signup_date": "2024-01-15",
                    "plan": "standard",
                    "interactions": [
                        {
                            "interaction_id": "I1",
                            "started_at": "2026-05-30T10:00:00Z",
                            "channel": "phone",
                            "wait_seconds": 840,
                        }
                    ],
                }
            ],
        }
    )
    with client as session:
        answer = score.sync_detailed(client=session, body=body)
    assert answer.status_code == 200, answer.content
    scored = answer.parsed.scores[0]
    assert scored.customer_id == "C1" and 0.0 <= scored.churn_probability <= 1.0
    assert str(scored.risk_band.value) in ("low", "medium", "high")

    unkeyed = client_package.Client(base_url=url)
    with unkeyed as session:
        refused = score.sync_detailed(client=session, body=body)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.ErrorResponse)
