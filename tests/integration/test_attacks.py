"""The attacks of issue 13 on the real ``churnml serve``, over 127.0.0.1, each named for what
it tried: unauthenticated metrics growth, oversized heads and bodies, form bodies, an
overflowing limit, 400s in the log, a store truncated or replaced under the service."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.attacks import pipelined_gets, raw_exchange, rss_mb, worker_processes
from tests.integration.servers import churnml_serve
from tests.integration.test_service_http import call
from tests.serving.helpers import ADMIN_KEY, API_KEY, AS_OF, SAMPLE, service_env, trained_home

pytestmark = pytest.mark.slow
START_SECONDS = 120
MAX_BODY = 65536
SOAK_REQUESTS = 20_000
SOAK_CONNECTIONS = 4


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lists") / "lists.db"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, store_file: Path) -> Iterator[dict]:
    home = trained_home()
    env = {
        **os.environ,
        **service_env(
            home,
            CHURNML_RISK_STORE=f"sqlite:///{store_file}",
            CHURNML_MAX_BODY_BYTES=str(MAX_BODY),
        ),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield {"url": url, "log": log_path}


@pytest.fixture(scope="module")
def server(served: dict) -> str:
    return served["url"]


def _random_paths(count: int) -> list[str]:
    return [f"/{secrets.token_hex(6)}/{secrets.token_hex(4)}" for _ in range(count)]


# -- 1. unauthenticated memory growth through metrics --------------------------------------
def test_random_unauthenticated_paths_leave_worker_memory_and_metrics_bounded(
    server: str,
) -> None:
    """The soak: 20,000 requests to random paths, no key, on keep-alive connections."""
    workers = worker_processes(urlsplit(server).port)
    assert workers, "no BentoML worker found for this server"
    pipelined_gets(server, _random_paths(1000))  # warm up: first allocations are not growth
    before = rss_mb(workers)
    started = time.monotonic()
    share = SOAK_REQUESTS // SOAK_CONNECTIONS
    with ThreadPoolExecutor(SOAK_CONNECTIONS) as pool:
        answers = list(
            pool.map(
                lambda _: pipelined_gets(server, _random_paths(share)), range(SOAK_CONNECTIONS)
            )
        )
    seconds = time.monotonic() - started
    statuses: dict[int, int] = {}
    for answer in answers:
        for status, count in answer.items():
            statuses[status] = statuses.get(status, 0) + count
    assert statuses == {401: SOAK_REQUESTS}, statuses
    grown = rss_mb(workers) - before
    status, metrics = call(server + "/metrics", key=None)
    assert status == 200
    assert grown < 50, f"worker memory grew {grown:.0f} MB over {SOAK_REQUESTS} requests"
    assert len(metrics) < 2**20, f"/metrics is {len(metrics)} bytes"
    assert seconds < 120


def test_a_random_path_does_not_become_a_metrics_label(server: str) -> None:
    path = f"/probe-{secrets.token_hex(8)}"
    assert call(server + "/model")[0] == 200
    assert call(server + path, key=None)[0] == 401
    assert call(server + path, key=API_KEY)[0] == 404
    metrics = call(server + "/metrics", key=None)[1].decode()
    assert path not in metrics
    assert 'endpoint="/{unknown}"' in metrics and 'endpoint="/model"' in metrics


# -- 6. heads and bodies of any size --------------------------------------------------------
def test_a_ten_megabyte_header_gets_431_before_the_key_check(server: str) -> None:
    huge = b"x" * (10 * 2**20)
    started = time.monotonic()
    status, raw = raw_exchange(
        server, b"GET /model HTTP/1.1\r\nHost: t\r\nX-Big: " + huge + b"\r\n\r\n"
    )
    assert status == 431, raw[:300]
    assert b"request headers" in raw
    assert time.monotonic() - started < 10


def test_a_long_url_gets_431(server: str) -> None:
    status, raw = raw_exchange(server, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 431, raw[:300]


def test_a_thousand_headers_get_431(server: str) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(1000))
    status, raw = raw_exchange(server, b"GET /model HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    assert status == 431, raw[:300]
    assert b"fields" in raw


def test_an_ordinary_request_still_passes_the_head_limits(server: str) -> None:
    assert call(server + "/model")[0] == 200
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(50))
    request = (
        b"GET /model HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
        + API_KEY.encode()
        + b"\r\n"
        + headers
        + b"\r\n"
    )
    assert raw_exchange(server, request)[0] == 200


def test_a_body_over_the_limit_gets_413(server: str) -> None:
    body = b'{"customers": [' + b" " * MAX_BODY + b"]}"
    request = (
        b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    status, raw = raw_exchange(server, request)
    assert status == 413, raw[:300]
    assert b"over the limit" in raw


def test_a_chunked_body_over_the_limit_gets_413_without_content_length(server: str) -> None:
    chunk = b" " * 16384
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8))
    request = (
        b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\n[\r\n" + chunks + b"0\r\n\r\n"
    )
    status, raw = raw_exchange(server, request)
    assert status == 413, raw[:300]


# -- 7. two more 5xx -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/score", "/score_ids", "/admin/reload"])
@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain"]
)
def test_a_form_body_on_a_json_api_gets_415(server: str, path: str, content_type: str) -> None:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\nContent-Length: 3\r\n\r\nabc"
    ).encode()
    status, raw = raw_exchange(server, request)
    assert status == 415, raw[:300]
    assert b"application/json" in raw


def test_a_csv_limit_beyond_int64_gets_422(server: str, store_file: Path) -> None:
    if not store_file.exists():  # with no list the answer was 404 even before the bound
        _write_list(store_file, dt.date(2026, 6, 10))
    status, raw = call(server + "/risk-list.csv?limit=9223372036854775808")
    assert status == 422, raw[:300]


# -- 9. a caller's mistake in the log --------------------------------------------------------
def test_a_bad_body_is_one_warning_line_without_the_request(served: dict) -> None:
    marker = f"SECRET-{secrets.token_hex(6)}"
    body = {
        "customers": [
            {"customer_id": marker, "signup_date": marker, "plan": marker, "interactions": []}
        ],
        "as_of": AS_OF,
    }
    assert call(served["url"] + "/score", method="POST", body=body)[0] == 400
    time.sleep(1)  # the worker's log lines reach the file
    log = served["log"].read_text()
    assert marker not in log
    (line,) = [line for line in log.splitlines() if "400 POST /score" in line]
    assert "WARNING" in line and "customers.0.signup_date" in line
    assert "Traceback" not in log


# -- 5. a store deleted, replaced or truncated under the service ------------------------------
def _write_list(store_file: Path, day: dt.date) -> None:
    from churnml.validation import load_tables
    from serving.loading import load_served_model
    from serving.risklist import RiskListSettings, make_risk_list
    from serving.store import RiskListStore

    home = trained_home()
    model = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    store = RiskListStore(f"sqlite:///{store_file}")
    make_risk_list(
        tables.customers, tables.interactions, day, model, store, RiskListSettings(capacity=20)
    )
    store.engine.dispose()
    with sqlite3.connect(store_file) as conn:  # everything in the main file, none in the WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _remove_store(store_file: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_file}{suffix}").unlink(missing_ok=True)


def test_a_truncated_store_answers_503_until_it_is_restored(server: str, store_file: Path) -> None:
    _write_list(store_file, dt.date(2026, 6, 10))
    assert call(server + "/risk-list")[0] == 200
    whole = store_file.read_bytes()
    try:
        with open(store_file, "r+b") as handle:  # in place: the same inode
            handle.truncate(len(whole) // 3)
        for path in ("/risk-list", "/risk-list.csv"):
            status, raw = call(server + path)
            assert status == 503, (path, raw[:300])
            problem = json.loads(raw)
            assert "churnml risk-list" in problem["error"] and "\n" not in problem["error"]
        status, raw = call(server + "/score_ids", method="POST", body={"customer_ids": ["C1"]})
        assert status == 503, raw[:300]
    finally:
        with open(store_file, "r+b") as handle:
            handle.write(whole)
    status, raw = call(server + "/risk-list")
    assert status == 200, raw[:300]
    assert json.loads(raw)["date"] == "2026-06-10"


def test_a_deleted_and_rewritten_store_is_reopened(server: str, store_file: Path) -> None:
    if not store_file.exists():
        _write_list(store_file, dt.date(2026, 6, 10))
    assert call(server + "/risk-list")[0] == 200
    _remove_store(store_file)
    assert call(server + "/risk-list")[0] == 404
    _write_list(store_file, dt.date(2026, 6, 17))
    status, raw = call(server + "/risk-list")
    assert status == 200, raw[:300]
    page = json.loads(raw)
    assert page["date"] == "2026-06-17" and page["dates"] == ["2026-06-17"]


def test_a_store_moved_into_place_is_reopened(
    server: str, store_file: Path, tmp_path: Path
) -> None:
    assert call(server + "/risk-list")[0] == 200
    other = tmp_path / "other.db"
    _write_list(other, dt.date(2026, 6, 24))
    shutil.move(other, store_file)  # a new inode under the same name
    page = json.loads(call(server + "/risk-list")[1])
    assert page["date"] == "2026-06-24" and page["dates"] == ["2026-06-24"]
