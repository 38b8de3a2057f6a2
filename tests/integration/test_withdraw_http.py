"""A list withdrawn under the real ``churnml serve``: ``churnml risk-list --withdraw`` in
its own process, and the running service answers from the list before it at once
(``GET /risk-list``, ``POST /score_ids``, the day asked for by name); the list's data
freshness in the API and the page's header, in Chromium (``scripts/install-test-tools.sh``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import churnml_serve
from tests.integration.test_page_browser import CHROMIUM, CHROMIUM_ARGS, LOADED, WAIT_MS
from tests.serving.helpers import API_KEY, SAMPLE, service_env, trained_home

pytestmark = pytest.mark.slow
START_SECONDS = 120
DAY1, DAY2 = dt.date(2026, 6, 10), dt.date(2026, 6, 17)
LATE = dt.date(2026, 6, 30)  # six days after the sample's last contact day, 2026-06-24


def call(url: str, *, body: object = None) -> tuple[int, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {API_KEY}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode()
    return status, json.loads(text) if text.startswith("{") else text


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    store = f"sqlite:///{tmp_path_factory.mktemp('withdraw') / 'lists.db'}"
    values = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHURNML_") and k != "MLFLOW_TRACKING_URI"
    }
    values.update(service_env(trained_home(), CHURNML_RISK_STORE=store))
    return values


@pytest.fixture(scope="module")
def server(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield url


@pytest.fixture(scope="module")
def lists(env: dict[str, str]) -> dict[dt.date, object]:
    """The lists of DAY1 and DAY2 in the server's store, as the daily job writes them."""
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
    store = RiskListStore(env["CHURNML_RISK_STORE"])
    made = {
        day: make_risk_list(
            tables.customers, tables.interactions, day, served, store, RiskListSettings(capacity=15)
        )
        for day in (DAY1, DAY2)
    }
    store.engine.dispose()
    return made


def churnml(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("churnml")
    return subprocess.run(
        [str(command), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_withdrawn_list_is_no_longer_served_and_the_previous_one_is(
    server: str, env: dict[str, str], lists: dict
) -> None:
    status, page = call(server + "/risk-list")
    assert status == 200 and page["date"] == f"{DAY2}"
    assert page["data_through"] == f"{DAY2}" and page["data_stale"] is False
    top = lists[DAY2].frame["customer_id"].iloc[0]
    assert call(server + "/score_ids", body={"customer_ids": [top]})[1]["list_date"] == f"{DAY2}"

    done = churnml(env, "risk-list", "--withdraw", f"{DAY2}", "--reason", "wrong exports")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "withdrew the risk list of 2026-06-17; the current list is now 2026-06-10's\n"
    )

    status, page = call(server + "/risk-list")
    assert status == 200 and page["date"] == f"{DAY1}" and page["dates"] == [f"{DAY1}"]
    answer = call(server + "/score_ids", body={"customer_ids": [top]})[1]
    assert answer["list_date"] == f"{DAY1}"
    assert {s["as_of"] for s in answer["scores"]} <= {f"{DAY1}"}
    status, body = call(server + f"/risk-list?date={DAY2}")
    assert status == 404 and "was withdrawn on" in body["error"]
    status, text = call(server + "/risk-list.csv")
    assert status == 200 and text.splitlines()[1].startswith(f"{DAY1},")

    again = churnml(env, "risk-list", "--withdraw", f"{DAY2}")
    assert again.returncode == 0 and "already withdrawn" in again.stdout
    missing = churnml(env, "risk-list", "--withdraw", "2026-06-11")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == (
        "churnml: error: no risk list for 2026-06-11 to withdraw; lists exist for "
        "2026-06-10 (newest first)\n"
    )


def test_stale_data_is_flagged_by_the_api_and_the_page_shows_freshness(
    server: str, env: dict[str, str], lists: dict, tmp_path: Path, capsys
) -> None:
    refused = churnml(env, "risk-list", "--as-of", f"{LATE}", "--quiet")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert f"{LATE}" in refused.stderr and "2026-06-24" in refused.stderr
    assert call(server + f"/risk-list?date={LATE}")[0] == 404

    made = churnml(env, "risk-list", "--as-of", f"{LATE}", "--grace-days", "7", "--quiet")
    assert made.returncode == 0, made.stderr
    status, page = call(server + "/risk-list")
    assert status == 200 and page["date"] == f"{LATE}"
    assert (page["data_through"], page["data_lag_days"], page["data_stale"]) == (
        "2026-06-24",
        6,
        True,
    )
    # The page's header holds the freshness line and the warning the script fills in.
    html = urllib.request.urlopen(server + "/", timeout=30).read().decode()
    assert 'id="data-through"' in html and 'id="stale"' in html
    script = urllib.request.urlopen(server + "/ui/app.js", timeout=30).read().decode()
    assert "page.data_through" in script and "page.data_stale" in script

    # In Chromium: the header says how old the data is, and warns.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.goto(f"{server}/")
            tab.get_by_label("API key", exact=True).fill(API_KEY)
            tab.get_by_role("button", name="Open the list").click()
            tab.wait_for_function(LOADED, arg={"scope": "list"}, timeout=WAIT_MS)
            assert tab.locator("#data-through").inner_text() == "2026-06-24"
            stale = tab.locator("#stale")
            assert stale.is_visible()
            assert stale.inner_text().startswith(
                "⚠ Old data: the data ends on 2026-06-24, 6 days before this list's day "
                "(2026-06-30)."
            )
            shot = tmp_path / "stale.png"
            tab.screenshot(path=shot)
            with capsys.disabled():
                print(f"\nscreenshot of the stale warning: {shot}")
        finally:
            browser.close()
