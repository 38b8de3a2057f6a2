"""The loop over HTTP against the real ``churnml serve``: the CRM's contacts in (``POST
/retention-contacts``), the report of past lists out (``GET /report``), the same report as
``churnml report`` gives, and the page's "How our lists did" in a real browser (Debian's
Chromium, as ``test_page_browser``)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import churnml_serve
from tests.integration.test_page_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _job_env
from tests.serving.helpers import API_KEY, trained_home

pytestmark = pytest.mark.slow
DAY = "2026-04-01"  # its 30 days have passed by the sample's last day (2026-06-24)
START_SECONDS = 120


@dataclass
class Service:
    url: str
    env: dict[str, str]
    picks: list[str]  # the customers on DAY's list, in rank order
    work: Path

    def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = API_KEY
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw)


def _churnml(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    churnml = Path(sys.executable).with_name("churnml")
    done = subprocess.run(
        [str(churnml), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = trained_home()
    work = tmp_path_factory.mktemp("outcomes")
    env = _job_env(home, f"sqlite:///{work / 'lists.db'}")
    export = work / "list.csv"
    _churnml(
        env,
        "risk-list",
        "--quiet",
        "--as-of",
        DAY,
        "--out",
        str(export),
        "--out-scope",
        "list",
        "--control-share",
        "0",  # the team's holdout comes in over HTTP here, as the CRM logs it
    )
    with export.open(newline="") as handle:
        picks = [
            r["customer_id"] for r in sorted(csv.DictReader(handle), key=lambda r: int(r["rank"]))
        ]
    with churnml_serve(env, work / "serve.log", start_seconds=START_SECONDS) as url:
        yield Service(url, env, picks, work)
    assert API_KEY not in (work / "serve.log").read_text()


def _contacts(picks: list[str]) -> list[dict[str, str]]:
    """The first 60 picks called, the rest held out as controls, on the list's day."""
    return [
        {"customer_id": c, "contacted_at": DAY, "group": "treated" if i < 60 else "control"}
        | ({"outcome": "reached", "channel": "phone"} if i < 60 else {})
        for i, c in enumerate(picks)
    ]


def _day(report: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in report["lists"] if e["list_date"] == DAY)


def test_posting_contacts_without_a_key_is_401_and_stores_nothing(service: Service) -> None:
    status, body = service.call(
        "POST", "/retention-contacts", {"contacts": _contacts(service.picks)}, key=None
    )
    assert status == 401 and body["error"]
    status, report = service.call("GET", "/report")
    assert status == 200 and _day(report)["treated"] == _day(report)["control"] == 0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"group": "maybe"}, "group"),
        ({"outcome": "happy"}, "outcome"),
        ({"channel": "fax"}, "channel"),
        ({"contacted_at": "2026-02-30"}, "contacted_at"),
    ],
)
def test_a_bad_row_is_422_naming_its_row_and_field_and_nothing_is_stored(
    service: Service, bad: dict[str, str], field: str
) -> None:
    contacts = _contacts(service.picks)
    contacts[3] = {**contacts[3], **bad}
    status, body = service.call("POST", "/retention-contacts", {"contacts": contacts})
    assert status == 422, body
    assert body["error"].startswith("nothing stored: contacts: 1 row has")
    assert body["detail"][0]["loc"] == ["contacts", 3, field]
    status, report = service.call("GET", "/report")
    assert _day(report)["treated"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"contacts": []},
        {"contacts": [{"customer_id": "C1", "contacted_at": DAY}] * 1001},
        {"contacts": [{"customer_id": "C1", "contacted_at": DAY, "extra": 1}]},
        {"contacts": [{"customer_id": "x" * 201, "contacted_at": DAY}]},
        {"contacts": [{"contacted_at": DAY}]},
    ],
    ids=["empty", "over-the-limit", "unknown-field", "long-id", "no-id"],
)
def test_a_body_outside_the_schema_is_refused_naming_the_field(service: Service, body) -> None:
    status, answer = service.call("POST", "/retention-contacts", body)
    assert status in (400, 422), answer
    assert answer["error"]


def test_contacts_are_stored_once_and_the_report_counts_them(service: Service) -> None:
    contacts = _contacts(service.picks)
    status, body = service.call("POST", "/retention-contacts", {"contacts": contacts})
    assert status == 200, body
    assert body == {"stored": len(contacts), "new": len(contacts), "updated": 0, "unchanged": 0}
    status, body = service.call("POST", "/retention-contacts", {"contacts": contacts})
    assert status == 200 and body["stored"] == 0 and body["unchanged"] == len(contacts)

    status, report = service.call("GET", "/report")
    assert status == 200
    day = _day(report)
    assert day["status"] == "done" and day["picks"] == len(service.picks)
    assert (day["treated"], day["control"]) == (60, len(service.picks) - 60)
    realised = day["realised"]
    assert realised["treated"]["n"] + realised["unknown"] <= 60
    assert (
        realised["difference"]["low"]
        <= realised["difference"]["value"]
        <= realised["difference"]["high"]
    )
    # churnml report on the same store and customers says the same
    out = service.work / "report.json"
    _churnml(service.env, "report", "--out", str(out))
    assert json.loads(out.read_text()) == report


def test_a_call_to_a_stored_control_in_a_later_request_is_422(service: Service) -> None:
    control = service.picks[-1]  # held out by the request above
    late = {"customer_id": control, "contacted_at": "2026-04-06", "group": "treated"}
    status, body = service.call("POST", "/retention-contacts", {"contacts": [late]})
    assert status == 422, body
    assert "breaks a stored control row's 30-day promise" in body["error"]
    assert body["detail"][0]["loc"] == ["contacts", 0, "group"]
    status, report = service.call("GET", "/report")
    assert _day(report)["control"] == len(service.picks) - 60  # still a control, nothing stored


def test_the_report_needs_a_key_and_checks_its_parameters(service: Service) -> None:
    assert service.call("GET", "/report", key=None)[0] == 401
    status, body = service.call("GET", "/report?horizon=0")
    assert status == 422 and "horizon" in json.dumps(body)  # as every GET endpoint's query
    status, body = service.call("GET", "/report?as_of=2026-04-30")
    assert status == 200 and _day(body)["status"] == "pending"


def test_both_endpoints_are_in_the_openapi_spec(service: Service) -> None:
    status, spec = service.call("GET", "/openapi.json")
    assert status == 200
    assert "post" in spec["paths"]["/retention-contacts"]
    assert "get" in spec["paths"]["/report"]


def test_the_page_shows_how_our_lists_did_as_the_api_has_it(service: Service) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/install-test-tools.sh"
    from playwright.sync_api import sync_playwright

    service.call("POST", "/retention-contacts", {"contacts": _contacts(service.picks)})
    status, report = service.call("GET", "/report")
    assert status == 200
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            tab = browser.new_page()
            tab.set_default_timeout(WAIT_MS)
            tab.goto(f"{service.url}/")
            tab.get_by_label("API key", exact=True).fill(API_KEY)
            tab.get_by_role("button", name="Open the list").click()
            tab.wait_for_function(
                "() => document.querySelector('#report').dataset.state === 'ready'"
            )
            section = tab.locator("#report")
            assert section.locator("h2").inner_text() == "How our lists did"
            rows = section.locator("tbody tr")
            assert rows.count() == len(report["lists"])
            day = _day(report)
            row = section.locator(f"tbody tr[data-list-date='{DAY}']")
            assert row.get_attribute("data-status") == "done"
            text = row.inner_text()
            assert str(day["treated"]) in text and str(day["control"]) in text
            assert day["verdict"] in text
            # read-only: nothing in the section to click or type into
            assert section.locator("button, input, select, textarea").count() == 0
        finally:
            browser.close()
