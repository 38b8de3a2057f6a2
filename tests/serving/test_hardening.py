"""Units of the service's hardening (issue 13): metrics labels, the request timeout's timer,
the log line of a caller's mistake, form bodies on the JSON APIs, an unreadable store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from serving.error_log import CallerMistakes
from serving.limits import JsonOnly
from serving.lists import Filters, Lists, NoList, StoreUnusable
from serving.metrics_labels import UNKNOWN, RouteLabels
from serving.timeouts import CancellingTimeout

ROUTES = ["/score", "/risk-list", "/risk-list.csv", "/ui/{name}", "/static/{path:path}"]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/score", "/score"),
        ("/risk-list.csv", "/risk-list.csv"),
        ("/ui/app.js", "/ui/{name}"),
        ("/ui/a/b", UNKNOWN),
        ("/static/a/b.css", "/static/{path:path}"),
        ("/score/", UNKNOWN),
        ("/3f2a9c/81d0", UNKNOWN),
        ("/risk-listXcsv", UNKNOWN),
    ],
)
def test_a_random_path_gets_the_one_unknown_label(path: str, label: str) -> None:
    assert RouteLabels(ROUTES).label(path) == label


async def _answering(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _stalling(scope, receive, send) -> None:
    await asyncio.sleep(10)


async def _run(app, timeout: float) -> tuple[list[int], int]:
    sent: list[int] = []

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    async def receive():
        return {"type": "http.request", "body": b""}

    loop = asyncio.get_running_loop()
    await CancellingTimeout(app, timeout=timeout)({"type": "http"}, receive, send)
    return sent, sum(not timer.cancelled() for timer in loop._scheduled)  # live timers


def test_a_flood_of_requests_leaves_no_timeout_timers_behind() -> None:
    async def flood() -> list[int]:
        pending = []
        for _ in range(200):
            sent, timers = await _run(_answering, 60)
            assert sent == [200]
            pending.append(timers)
        return pending

    assert max(asyncio.run(flood())) == 0


def test_a_request_over_the_timeout_still_gets_504() -> None:
    sent, _ = asyncio.run(_run(_stalling, 0.05))
    assert sent == [504]


class _Customer(BaseModel):
    customer_id: str
    age: int


def _bentoml_record(error: BaseException) -> logging.LogRecord:
    record = logging.LogRecord(
        "bentoml._internal.server.http_app",
        logging.ERROR,
        __file__,
        1,
        "Exception on %s [%s]",
        ("/score", "POST"),
        (type(error), error, error.__traceback__),
    )
    return record


def test_a_validation_error_is_one_warning_line_without_the_values() -> None:
    try:
        _Customer.model_validate({"customer_id": "SECRET-C42", "age": "SECRET-AGE"})
    except ValidationError as error:
        record = _bentoml_record(error)
    assert CallerMistakes().filter(record)
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert line == "WARNING 400 POST /score: age (int_parsing)"
    assert record.exc_info is None


def test_a_server_error_keeps_its_traceback() -> None:
    try:
        raise KeyError(b"boundary")
    except KeyError as error:
        record = _bentoml_record(error)
    assert CallerMistakes().filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None


async def _call(app, path: str, content_type: bytes | None) -> int:
    sent: list[int] = []

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    async def receive():
        return {"type": "http.request", "body": b"abc"}

    headers = [] if content_type is None else [(b"content-type", content_type)]
    await app({"type": "http", "path": path, "headers": headers}, receive, send)
    return sent[0]


@pytest.mark.parametrize("path", ["/score", "/score_ids", "/admin/reload"])
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (b"multipart/form-data", 415),
        (b"multipart/form-data; boundary=x", 415),
        (b"application/x-www-form-urlencoded", 415),
        (b"application/json", 200),
        (b"application/json; charset=utf-8", 200),
        (None, 200),
    ],
)
def test_multipart_without_a_boundary_gets_415_not_500(
    path: str, content_type: bytes | None, status: int
) -> None:
    assert asyncio.run(_call(JsonOnly(_answering), path, content_type)) == status


def test_a_form_body_elsewhere_is_not_refused() -> None:
    assert asyncio.run(_call(JsonOnly(_answering), "/risk-list", b"multipart/form-data")) == 200


def _store_with_one_list(path: Path) -> None:
    from serving.store import RiskListStore

    store = RiskListStore(f"sqlite:///{path}")
    store.engine.dispose()


def test_a_store_truncated_in_place_is_503_then_serves_again_when_restored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lists.db"
    _store_with_one_list(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    lists = Lists(tmp_path, f"sqlite:///{path}")
    with pytest.raises(NoList, match="no risk list is stored yet"):
        lists.page(Filters(), 10)
    whole = path.read_bytes()
    path.write_bytes(b"not a database, garbage " * 400)  # same inode
    with pytest.raises(StoreUnusable, match="churnml risk-list") as raised:
        lists.page(Filters(), 10)
    assert raised.value.status == 503 and "\n" not in str(raised.value)
    path.write_bytes(whole)
    with pytest.raises(NoList, match="no risk list is stored yet") as raised:
        lists.page(Filters(), 10)
    assert raised.value.status == 404
