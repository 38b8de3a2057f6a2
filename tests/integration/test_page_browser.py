"""The retention team's page in a real browser (Debian's Chromium, driven by Playwright)
against the real ``churnml serve`` and lists made by the real ``churnml risk-list`` job.

Two days of lists (the second with a suppression table) in a store of their own; the page
is opened, given the key, and checked against the API's own answers for the same filters:
rows, changes, reasons, band and search filters, scope and paging, sorting, the drift and
model header, departures, the CSV download, the error messages, and that the page never
asks any host but 127.0.0.1. Chromium comes from ``scripts/install-test-tools.sh`` (called
by ``test.sh``); without it the test fails, it does not skip.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import churnml_serve
from tests.serving.helpers import API_KEY, service_env, trained_home

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DAY1, DAY2 = "2026-06-10", "2026-06-17"
CONTACTED = "2026-06-12"  # within the default 14 suppression days of DAY2
START_SECONDS = 120
PAGE_SIZE = 250  # the page's default rows per page
WAIT_MS = 20_000
ROWS = "#rows tbody tr[data-customer-id]"
READ_ROWS = """rows => rows.map(r => ({
    id: r.dataset.customerId,
    band: r.dataset.band,
    rank: Number(r.dataset.rank),
    change: r.dataset.change,
    suppressed: r.dataset.suppressed === "true",
    group: r.dataset.group,
    probability: r.querySelector("td.prob").textContent,
    reasons: Array.from(r.querySelectorAll("ul.reasons li")).map(li => li.textContent),
    text: r.innerText,
}))"""
LOADED = """want => {
    const main = document.querySelector("#main");
    if (!main || !document.body) return false;  // still loading the document
    const q = new URLSearchParams(main.dataset.query || "");
    return document.body.dataset.state === "ready"
        && Object.entries(want).every(([k, v]) => (q.get(k) ?? "") === v);
}"""


# -- the service, with two days of lists -------------------------------------------------------
@dataclass
class Service:
    url: str
    suppressed: list[str]
    first_export: Path  # `churnml risk-list --as-of DAY1 --out` (everyone scored)

    def api(self, path: str = "/risk-list", *, key: str | None = API_KEY, **params: Any):
        """(status, body) of a GET with the key; JSON decoded unless it is CSV."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in ("", None)})
        request = urllib.request.Request(f"{self.url}{path}?{query}")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, raw.decode() if path.endswith(".csv") else json.loads(raw)

    def page(self, **params: Any) -> dict[str, Any]:
        status, body = self.api(**params)
        assert status == 200, body
        return body


def _job_env(home: Path, store: str) -> dict[str, str]:
    """The caller's environment without any churnml or MLflow settings, then ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHURNML_") and k != "MLFLOW_TRACKING_URI"
    }
    env.update(service_env(home, CHURNML_RISK_STORE=store))
    return env


def _make_lists(churnml: Path, env: dict[str, str], work: Path) -> list[str]:
    """The lists of DAY1 and DAY2 (with a few of DAY1's top customers contacted since)."""

    def risk_list(*args: str) -> None:
        done = subprocess.run(
            [str(churnml), "risk-list", "--quiet", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    first = work / "first.csv"
    # The first list: no retention contacts (the sample world's would suppress some) and no
    # control group, so that the second list's suppressed customers are the ones contacted.
    nobody = work / "nobody.csv"
    nobody.write_text("customer_id,contacted_at\n")
    risk_list(
        "--as-of",
        DAY1,
        "--out",
        str(first),
        "--retention-contacts",
        str(nobody),
        "--control-share",
        "0",
    )
    with first.open(newline="") as handle:
        ranked = sorted(csv.DictReader(handle), key=lambda row: int(row["rank"]))
    contacted = [row["customer_id"] for row in ranked[1:9]]
    suppress = work / "contacted.csv"
    suppress.write_text(
        "customer_id,contacted_at\n" + "".join(f"{c},{CONTACTED}\n" for c in contacted)
    )
    risk_list("--as-of", DAY2, "--suppress", str(suppress))
    return contacted


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = trained_home()  # shared and only read: the lists go to this module's own store
    work = tmp_path_factory.mktemp("page")
    env = _job_env(home, f"sqlite:///{work / 'lists.db'}")
    churnml = Path(sys.executable).with_name("churnml")
    log_path = work / "serve.log"
    # The list job runs while the server starts: the server opens the store on first use.
    with ThreadPoolExecutor(max_workers=1) as pool:
        made = pool.submit(_make_lists, churnml, env, work)
        with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
            yield Service(url=url, suppressed=made.result(), first_export=work / "first.csv")
    assert API_KEY not in log_path.read_text()


# -- the browser ------------------------------------------------------------------------------
@dataclass
class Browsing:
    context: Any
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def saw(self, request: Any) -> None:
        self.requests.append((request.url, request.headers))

    def new_page(self):
        page = self.context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page


def _chromium_missing() -> str:
    return (
        f"{CHROMIUM} is missing: the page's browser test needs Debian's chromium. "
        "Run scripts/install-test-tools.sh (./test.sh runs it before pytest)."
    )


@pytest.fixture(scope="module")
def browsing() -> Iterator[Browsing]:
    if not CHROMIUM.exists():
        pytest.fail(_chromium_missing(), pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            session = Browsing(context)
            context.on("request", session.saw)
            yield session
            context.close()
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(browsing: Browsing, service: Service):
    """One tab that was given the key once (it stays in the tab's session storage)."""
    tab = browsing.new_page()
    tab.goto(f"{service.url}/")
    tab.locator("#key-panel").wait_for(state="visible")
    assert tab.locator("#content").is_hidden()
    tab.get_by_label("API key", exact=True).fill(API_KEY)
    tab.get_by_role("button", name="Open the list").click()
    wait_loaded(tab, scope="list", offset="0")
    assert tab.locator("#key-panel").is_hidden()
    assert tab.evaluate("Object.values(sessionStorage)") == [API_KEY]
    return tab


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("page-screenshots")


def wait_loaded(page, **want: Any) -> None:
    """Until the page shows the answer to a query with these parameters."""
    page.wait_for_function(LOADED, arg={k: str(v) for k, v in want.items()}, timeout=WAIT_MS)


def reopen(page, service: Service, query: str = "", **want: Any) -> None:
    page.goto(f"{service.url}/{query}")
    wait_loaded(page, **{"scope": "list", "offset": "0", **want})


def shown(page) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(ROWS, READ_ROWS)


def show_path(capsys: pytest.CaptureFixture[str], what: str, path: Path) -> None:
    with capsys.disabled():
        print(f"\n{what}: {path}")


# -- the tests --------------------------------------------------------------------------------
def test_chromium_is_installed() -> None:
    assert CHROMIUM.exists(), _chromium_missing()


def test_the_list_as_the_api_has_it(page, service: Service, shots, capsys) -> None:
    api = service.page(scope="list", limit=PAGE_SIZE)
    rows = shown(page)
    assert len(rows) == len(api["rows"]) == min(api["total"], PAGE_SIZE) > 0
    assert [r["id"] for r in rows] == [r["customer_id"] for r in api["rows"]]  # rank order
    assert f"of {api['total']} customers on the list" in page.locator("#status").inner_text()
    # changes since the previous list, reasons, suppression marks, all as the API says
    assert {r["change"] for r in rows} >= {"new", "risen", "fallen"}
    for row, want in zip(rows, api["rows"], strict=True):
        assert row["band"] == want["risk_band"]
        assert row["change"] == (want["change"] or "")
        # one decimal, or more where one would cross a threshold (test_badge_and_legend...)
        assert float(row["probability"].rstrip("%")) == pytest.approx(
            want["churn_probability"] * 100, abs=0.05
        )
        assert row["reasons"] == [r["text"] for r in want["reasons"]] and 1 <= len(row["reasons"])
        assert want["action"] in row["text"]
        if want["change"]:
            assert want["change"].capitalize() in row["text"]
        if want["previous_rank"] is not None:
            assert f"was #{want['previous_rank']}," in row["text"]
        assert row["suppressed"] == want["suppressed"]
        assert row["group"] == (want["group"] or "")
        if want["suppressed"]:
            assert f"Suppressed (contacted {want['last_contacted']})" in row["text"]
        elif want["group"] == "control":  # shown apart, never offered as a call
            assert "Control: do not call" in row["text"] and "to call" not in row["text"]
        elif want["on_list"]:
            assert "to call" in row["text"]
        if want["call_effect"] is not None:
            assert f"{want['call_effect'] * 100:+.1f} pts" in row["text"]
    suppressed = [r["id"] for r in rows if r["suppressed"]]
    assert suppressed and set(suppressed) <= set(service.suppressed)
    controls = [r for r in api["rows"] if r["group"] == "control"]
    picks = [r for r in api["rows"] if r["on_list"] and not r["suppressed"]]
    assert len(controls) == int(0.1 * len(picks) + 0.5) > 0  # the default share, halves up
    # the header: date, model, capacity, drift
    assert page.locator("#date").input_value() == api["date"] == DAY2
    assert page.locator("#date option").evaluate_all("os => os.map(o => o.value)") == [
        DAY2,
        DAY1,
    ]
    model = page.locator("#model").inner_text()
    assert model == f"{api['model_name']} version {api['model_version']}" == "churn-risk version 1"
    assert page.locator("#capacity").inner_text().startswith(f"{api['capacity']} a day")
    assert page.locator("#rank-by").inner_text() == "revenue at risk"
    reason = page.locator("#rank-by-reason").inner_text()
    assert reason == api["rank_by_reason"] and "did not pass its gate" in reason
    # the data's freshness: a day inside the data is covered through itself, no warning
    fact = page.locator("#data-through").locator("xpath=..").inner_text()
    assert " ".join(fact.split()) == f"Data through {api['data_through']}"
    assert api["data_through"] == DAY2 and page.locator("#stale").is_hidden()
    assert (
        f"≥ {api['band_thresholds']['high'] * 100:.6g}%" in page.locator("#thresholds").inner_text()
    )
    assert api["drift"]["warning"], "the sample world's lists are expected to warn of drift"
    drift = page.locator("#drift")
    assert drift.is_visible()
    assert drift.locator("li").all_inner_texts() == api["drift"]["warnings"]
    # who left the list since the previous one, and why
    assert page.locator("#departures-title").inner_text() == f"Left the list since {DAY1}"
    departures = page.locator("#departures-table tbody tr")
    assert departures.count() == len(api["departures"]) > 0
    for shown_row, want in zip(departures.all(), api["departures"], strict=True):
        assert shown_row.get_attribute("data-customer-id") == want["customer_id"]
        assert want["why"] in shown_row.inner_text()
    # accessible headings, and the whole table fits a 1280 px wide window
    scopes = page.locator("#rows thead th").evaluate_all("ths => ths.map(th => th.scope)")
    assert set(scopes) == {"col"}
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.locator(".table-wrap").evaluate("w => w.scrollWidth <= w.clientWidth")
    path = shots / "page.png"
    page.screenshot(path=path)
    show_path(capsys, "screenshot of the page", path)


def test_band_segment_search_scope_and_paging(page, service: Service, shots, capsys) -> None:
    reopen(page, service)
    everyone = service.page(scope="list", limit=PAGE_SIZE)
    page.select_option("#band", "high")
    wait_loaded(page, band="high", scope="list")
    high = service.page(band="high", scope="list", limit=PAGE_SIZE)
    rows = shown(page)
    assert 0 < high["total"] < everyone["total"]
    assert len(rows) == min(high["total"], PAGE_SIZE)
    assert {r["band"] for r in rows} == {"high"}
    assert [r["id"] for r in rows] == [r["customer_id"] for r in high["rows"]]
    assert "band=high" in page.url  # the filters are in the address, for a link
    path = shots / "page-high-full.png"
    page.screenshot(path=path, full_page=True)
    show_path(capsys, "screenshot of the high band", path)

    page.select_option("#band", "")
    segment = everyone["segments"][0]
    page.get_by_label("Segment").select_option(segment)
    wait_loaded(page, band="", segment=segment)
    of_segment = service.page(segment=segment, scope="list", limit=PAGE_SIZE)
    assert [r["id"] for r in shown(page)] == [r["customer_id"] for r in of_segment["rows"]]
    page.select_option("#segment", "")
    wait_loaded(page, segment="")

    part = everyone["rows"][0]["customer_id"][2:6]  # e.g. "0041" of C004197
    page.locator("#search").fill(part)
    wait_loaded(page, customer=part)
    matching = service.page(customer=part, scope="list", limit=PAGE_SIZE)
    rows = shown(page)
    assert 0 < len(rows) == min(matching["total"], PAGE_SIZE) < len(everyone["rows"])
    assert all(part in r["id"] for r in rows)
    page.locator("#search").fill("")
    wait_loaded(page, customer="")

    page.select_option("#page-size", "25")
    wait_loaded(page, limit=25, offset=0)
    page.get_by_label("Show").select_option("all")
    wait_loaded(page, scope="all", limit=25, offset=0)
    assert len(shown(page)) == 25
    page.get_by_role("button", name="Next").click()
    wait_loaded(page, scope="all", limit=25, offset=25)
    second = service.page(scope="all", limit=25, offset=25)
    assert second["total"] == second["scored"] > 100
    assert [r["rank"] for r in shown(page)] == [r["rank"] for r in second["rows"]]
    assert f"Showing 26–50 of {second['total']}" in page.locator("#status").inner_text()
    page.get_by_role("button", name="Previous").click()
    wait_loaded(page, scope="all", limit=25, offset=0)
    assert page.get_by_role("button", name="Previous").is_disabled()


def test_sorting_by_column_headers(page, service: Service) -> None:
    reopen(page, service)

    def probabilities() -> list[float]:
        return [float(r["probability"].rstrip("%")) for r in shown(page)]

    header = page.locator("#rows th[data-sort=churn_probability]")
    assert page.locator("#rows th[data-sort=rank]").get_attribute("aria-sort") == "ascending"
    header.get_by_role("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert page.locator("#rows th[aria-sort]").count() == 1
    values = probabilities()
    assert values == sorted(values, reverse=True) and values != sorted(values)
    header.get_by_role("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert probabilities() == sorted(probabilities())
    page.get_by_role("button", name="Rank").click()
    ranks = [r["rank"] for r in shown(page)]
    assert ranks == sorted(ranks)


def test_download_csv_with_the_filters(page, service: Service) -> None:
    reopen(page, service, "?band=high", band="high")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"risk-list-{DAY2}.csv"
    text = Path(download.path()).read_text()
    status, expected = service.api("/risk-list.csv", band="high", scope="list")
    assert status == 200
    total = service.page(band="high", scope="list", limit=1)["total"]
    header, *data = list(csv.reader(io.StringIO(text)))
    assert header == next(csv.reader(io.StringIO(expected)))
    assert header[:3] == ["list_date", "customer_id", "rank"]
    assert len(data) == total > 0
    assert {row[header.index("risk_band")] for row in data} == {"high"}
    assert text == expected


def test_an_earlier_list(page, service: Service) -> None:
    reopen(page, service)
    page.get_by_label("List date").select_option(DAY1)
    wait_loaded(page, date=DAY1)
    api = service.page(date=DAY1, scope="list", limit=PAGE_SIZE)
    rows = shown(page)
    assert [r["id"] for r in rows] == [r["customer_id"] for r in api["rows"]]
    assert not any(r["suppressed"] for r in rows)
    assert "first list" in page.locator("#departures").inner_text()
    assert "first list" in rows[0]["text"]
    assert "date=" + DAY1 in page.url


def test_errors_are_told_in_plain_words(browsing: Browsing, service: Service) -> None:
    tab = browsing.new_page()  # a new tab: no key in its session storage yet
    try:
        tab.goto(f"{service.url}/?date=2026-01-01")
        tab.locator("#key-panel").wait_for(state="visible")
        tab.get_by_label("API key", exact=True).fill("not-the-key-0123456789abcdef")
        tab.get_by_label("API key", exact=True).press("Enter")
        error = tab.locator("#error")
        error.wait_for(state="visible")
        assert "key was not accepted" in error.inner_text()
        assert "unknown API key" in error.inner_text()
        assert tab.locator("#key-panel").is_visible()
        assert tab.evaluate("sessionStorage.length") == 0

        tab.get_by_label("API key", exact=True).fill(API_KEY)
        tab.get_by_role("button", name="Open the list").click()
        tab.wait_for_function("() => document.body.dataset.state === 'error'")
        assert "no risk list for 2026-01-01" in error.inner_text()
        assert tab.locator("#key-panel").is_hidden()
        tab.get_by_role("button", name="Open the latest list").click()
        wait_loaded(tab, date="", scope="list")
        assert error.is_hidden() and tab.locator(ROWS).count() > 0

        tab.get_by_role("button", name="Forget key").click()
        assert tab.locator("#key-panel").is_visible()
        assert tab.evaluate("sessionStorage.length") == 0
    finally:
        tab.close()


def test_the_page_asks_only_this_service(page, browsing: Browsing, service: Service) -> None:
    reopen(page, service)
    time.sleep(0.5)  # anything the page would still fetch
    urls = [url for url, _ in browsing.requests]
    assert any("/risk-list?" in url for url in urls)
    hosts = set()
    for url in urls:
        scheme, _, rest = url.partition(":")
        if scheme == "data":
            continue
        inner = rest if scheme == "blob" else url
        hosts.add(urllib.parse.urlsplit(inner).hostname)
    assert hosts == {"127.0.0.1"}, sorted(u for u in urls if "127.0.0.1" not in u)
    for url, headers in browsing.requests:
        if urllib.parse.urlsplit(url).path.startswith("/risk-list"):
            assert headers.get("authorization", "").startswith("Bearer "), url
    assert browsing.errors == []


# -- a customer's detail, the badge and the legend, long ids, the exports ---------------------
DETAIL = "#detail"
DETAIL_READY = "() => document.querySelector('#detail').dataset.state === 'ready'"
SPILLED = """d => {
    const edge = d.getBoundingClientRect().right - parseFloat(getComputedStyle(d).paddingRight);
    return Array.from(d.querySelectorAll("*"))
        .filter(e => e.getBoundingClientRect().right > edge + 1)
        .map(e => e.tagName + "." + e.className);
}"""


def _customer_with(api_rows: list[dict], service: Service, family: str) -> dict:
    """The first customer on the list with a reason of ``family`` backed by contacts."""
    for row in api_rows:
        status, detail = service.api("/risk-list/customer", id=row["customer_id"])
        assert status == 200, detail
        if any(r["family"] == family and (r["contacts"] or r["cases"]) for r in detail["reasons"]):
            return detail
    raise AssertionError(f"no customer on the list has a {family} reason with contacts")


def test_a_customer_detail_opens_with_contacts_history_and_freshness(
    page, service: Service, shots, capsys
) -> None:
    reopen(page, service)
    api = service.page(scope="list", limit=PAGE_SIZE)
    want = _customer_with(api["rows"], service, "unresolved case")
    customer = want["customer_id"]
    page.locator(f"{ROWS}[data-customer-id='{customer}'] button.open-detail").click()
    page.wait_for_function(DETAIL_READY)
    detail = page.locator(DETAIL)
    assert detail.is_visible() and detail.get_attribute("data-customer-id") == customer
    assert customer in page.locator("#detail-title").inner_text()
    # the action, the freshness, the reasons with what stands behind them
    assert page.locator("#detail-action").inner_text() == want["action"]
    assert want["data_through"] == DAY2
    assert page.locator("#detail-fresh").inner_text().startswith(DAY2)
    reasons = page.locator("#detail-reasons > li")
    assert reasons.count() == len(want["reasons"])
    for shown_reason, reason in zip(reasons.all(), want["reasons"], strict=True):
        assert shown_reason.locator(".reason-text").inner_text() == reason["text"]
        if reason["family"] == "unresolved case":
            behind = shown_reason.locator("ul.behind li").all_inner_texts()
            opened = [c for c in want["cases"] if c["case_id"] in reason["cases"]]
            assert opened and all(
                any(
                    f"case {c['case_id']}" in b and f"open for {c['age_days']} day" in b
                    for b in behind
                )
                for c in opened
            ), behind
    # the recent contacts and cases, as the list kept them
    contacts = page.locator("#detail-contacts tbody tr[data-interaction-id]")
    assert contacts.count() == len(want["contacts"]) > 0
    ids = contacts.evaluate_all("rs => rs.map(r => r.dataset.interactionId)")
    assert ids == [c["interaction_id"] for c in want["contacts"]]
    cases = page.locator("#detail-cases tbody tr[data-case-id]")
    assert cases.count() == len(want["cases"]) > 0
    assert cases.first.get_attribute("data-open") == "true"
    # the probability over the last lists: both days, newest first
    history = page.locator("#detail-history tbody tr")
    assert history.evaluate_all("rs => rs.map(r => r.dataset.date)") == [DAY2, DAY1]
    assert [h["list_date"] for h in want["history"]] == [DAY2, DAY1]
    for shown_point, point in zip(history.all(), want["history"], strict=True):
        value = float(shown_point.locator("td.num").first.inner_text().rstrip("%"))
        assert value == pytest.approx(point["churn_probability"] * 100, abs=0.05)
    # the retention team's contacts: a section of its own, empty until they are logged
    assert page.locator("#retention-title").inner_text() == "Retention contacts"
    assert page.locator("#retention-empty").inner_text().startswith("None recorded yet")
    path = shots / "page-detail.png"
    page.screenshot(path=path)
    show_path(capsys, "screenshot of a customer's detail", path)
    detail.evaluate("d => { d.scrollTop = d.scrollHeight; }")
    path = shots / "page-detail-bottom.png"
    page.screenshot(path=path)
    show_path(capsys, "screenshot of its contacts and cases", path)
    # it fits the drawer: no cell, tag or table reaches past its edge
    spilled = detail.evaluate(SPILLED)
    assert spilled == [], spilled
    page.keyboard.press("Escape")
    assert detail.is_hidden()


def test_an_unknown_customer_is_a_one_line_404(service: Service) -> None:
    status, body = service.api("/risk-list/customer", id="NOBODY")
    assert status == 404 and "\n" not in body["error"]
    assert body["error"].startswith(f"customer 'NOBODY' is not on the list of {DAY2}")
    status, body = service.api("/risk-list/customer", id="x" * 201)
    assert status == 422
    assert service.api("/risk-list/customer", key=None, id="C1")[0] == 401


def test_badge_and_legend_agree_at_the_edge(page, service: Service) -> None:
    reopen(page, service)
    api = service.page(scope="list", limit=PAGE_SIZE)
    legend = page.locator("#thresholds").inner_text()
    high = float(legend.split("≥")[1].split("%")[0])
    medium = float(legend.split("≥")[2].split("%")[0])
    assert high == float(f"{api['band_thresholds']['high'] * 100:.6g}")  # the exact threshold
    for row in shown(page):
        value = float(row["probability"].rstrip("%"))
        band = "high" if value >= high else "medium" if value >= medium else "low"
        assert band == row["band"], (row["id"], row["probability"], legend)
    # a probability just under a threshold that one decimal would round onto it
    thresholds = {"high": 0.2, "medium": 0.1}
    text = page.evaluate(
        "t => [window.churnmlPage.probabilityText(0.19996, 'medium', t),"
        " window.churnmlPage.probabilityText(0.19996, 'high', t),"
        " window.churnmlPage.thresholdText(0.1996342),"
        " window.churnmlPage.probabilityText(0.1996, 'medium', {high: 0.1996342, medium: 0.1})]",
        thresholds,
    )
    assert text == ["19.996%", "20.0%", "19.9634%", "19.96%"]


def test_long_ids_stay_inside_their_cells(page, service: Service) -> None:
    reopen(page, service)
    long_id = "CUSTOMER-" + "0123456789" * 12
    fits = page.evaluate(
        """id => {
            const cell = document.querySelector("#rows tbody th.customer");
            cell.querySelector("button").textContent = id;
            const next = cell.nextElementSibling;
            const button = cell.querySelector("button").getBoundingClientRect();
            return [cell.scrollWidth <= cell.clientWidth,
                    button.right <= next.getBoundingClientRect().left + 1];
        }""",
        long_id,
    )
    assert fits == [True, True]
    assert page.locator(".table-wrap").evaluate("w => w.scrollWidth <= w.clientWidth")


def test_the_drift_banner_speaks_of_families_not_columns(page, service: Service) -> None:
    reopen(page, service)
    api = service.page(scope="list", limit=1)
    texts = page.locator("#drift li").all_inner_texts()
    assert texts and texts == api["drift"]["warnings"]
    for text in texts:
        assert "_" not in text and not any(c in text for c in api["drift"]["psi_over"])


def test_out_and_the_csv_endpoint_agree(service: Service) -> None:
    status, served = service.api("/risk-list.csv", date=DAY1, scope="all")
    assert status == 200
    assert service.first_export.read_text() == served
    header = next(csv.reader(io.StringIO(served)))
    assert {"customer_id", "churn_probability", "risk_band", "rank", "reason_1"} <= set(header)
    assert "currency" in header
