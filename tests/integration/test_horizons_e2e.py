"""Churn within several horizons, end to end on the sample world: the real ``churnml train
--horizons 7,30,90`` (once: it is slow), its MLflow run and registered model, ``churnml
score`` with its ``churn_probability_<H>d`` columns, the daily list's "likely within",
``POST /score``'s ``horizons`` and ``GET /risk-list`` over the real ``churnml serve``, and
the curve in the customer's detail view in a real browser (Debian's Chromium)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.servers import churnml_serve
from tests.integration.test_service_http import call
from tests.serving.helpers import API_KEY, AS_OF, SAMPLE, payload_customers, service_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # trains once: minutes
HORIZONS = (7, 30, 90)
COLUMNS = [f"churn_probability_{h}d" for h in HORIZONS]
START_SECONDS = 120
CHROMIUM = Path("/usr/bin/chromium")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHURNML_") and k != "MLFLOW_TRACKING_URI"
    }
    env.update(service_env(home, **extra))
    return env


def churnml(home: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnml.cli", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Trained:
    home: Path
    output: str
    work: Path


@pytest.fixture(scope="module")
def trained() -> Trained:
    """The sample trained by the real command with --horizons (one backtest fold), the
    registered version made champion if the gate kept it."""
    home = Path(tempfile.mkdtemp(prefix="churnml-horizons-"))
    done = churnml(
        home,
        "train",
        "--customers",
        str(SAMPLE / "customers.csv"),
        "--interactions",
        str(SAMPLE / "interactions.csv"),
        "--retention-contacts",
        str(SAMPLE / "retention_contacts.csv"),
        "--horizons",
        "7,30,90",
        "--backtest",
        "1",
        "--quiet",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if "now the champion" not in done.stdout:
        promoted = churnml(home, "promote", "1", "--reason", "horizons test")
        assert promoted.returncode == 0, promoted.stderr[-2000:]
    return Trained(home, done.stdout, Path(tempfile.mkdtemp(prefix="churnml-horizons-out-")))


def _scored(trained: Trained, name: str, *extra: str) -> pd.DataFrame:
    out = trained.work / name
    done = churnml(
        trained.home,
        "score",
        "--customers",
        str(SAMPLE / "customers.csv"),
        "--interactions",
        str(SAMPLE / "interactions.csv"),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        *extra,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return pd.read_csv(out)


# -- training ------------------------------------------------------------------------------
def test_train_reports_every_horizon_and_the_gate_checks_them(trained: Trained) -> None:
    for horizon in HORIZONS:
        assert f"horizon {horizon}d: test ROC-AUC" in trained.output
    gate = next(line for line in trained.output.splitlines() if line.startswith("gate:"))
    assert "horizon" in gate  # the horizons' check is one of the gate's reasons


def test_the_registered_model_brings_its_horizons_and_mlflow_has_them(trained: Trained) -> None:
    import mlflow

    from model.loading import load_model

    uri = f"sqlite:///{trained.home / 'mlflow.db'}"
    loaded = load_model("models:/churn-risk/1", uri)
    head = loaded.model.horizons
    assert head is not None and head.horizons == HORIZONS and head.training_horizon == 30
    assert set(head.calibrators) <= set(HORIZONS)
    assert loaded.model.horizons_gate["reason"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(client.get_model_version("churn-risk", "1").run_id)
    for horizon in HORIZONS:
        for metric in ("roc_auc", "pr_auc", "ece"):
            assert np.isfinite(run.data.metrics[f"horizon_{horizon}d.test_{metric}"])
    for metric in ("uno_c", "integrated_brier", "td_auc_mean"):
        assert f"horizons.test_{metric}" in run.data.metrics
    assert run.data.tags["horizons"] == "7,30,90"
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/horizons.png" in plots


# -- churnml score ---------------------------------------------------------------------------
def test_score_columns_never_decrease_and_the_training_horizon_is_churn_probability(
    trained: Trained,
) -> None:
    scores = _scored(trained, "all.csv")
    assert set(COLUMNS) <= set(scores.columns)
    curve = scores[COLUMNS].to_numpy()
    assert np.isfinite(curve).all() and ((curve >= 0) & (curve <= 1)).all()
    assert (np.diff(curve, axis=1) >= 0).all()
    assert (scores["churn_probability_30d"] == scores["churn_probability"]).all()
    # the curve is not flat: the short horizon is below the long one for most customers
    assert (curve[:, 0] < curve[:, 2]).mean() > 0.9


def test_score_horizons_picks_a_subset(trained: Trained) -> None:
    scores = _scored(trained, "subset.csv", "--horizons", "7,90")
    assert [c for c in scores.columns if c.startswith("churn_probability_")] == [
        "churn_probability_7d",
        "churn_probability_90d",
    ]


@pytest.mark.parametrize(
    ("value", "said"),
    [("14", "trained on the horizons 7,30,90"), ("7,x", "whole days"), ("", "whole days")],
)
def test_score_horizons_it_cannot_give_is_one_line_exit_2(
    trained: Trained, value: str, said: str
) -> None:
    done = churnml(
        trained.home,
        "score",
        "--as-of",
        AS_OF,
        "--out",
        str(trained.work / "never.csv"),
        "--horizons",
        value,
    )
    assert done.returncode == 2
    assert said in done.stderr and "--horizons" in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert not (trained.work / "never.csv").exists()


# -- the list, POST /score, GET /risk-list and the page --------------------------------------
@dataclass
class Served:
    url: str
    export: pd.DataFrame


@pytest.fixture(scope="module")
def served(trained: Trained) -> Iterator[Served]:
    store = f"sqlite:///{trained.work / 'lists.db'}"
    export = trained.work / "list.csv"
    env = _env(trained.home, CHURNML_RISK_STORE=store)
    done = subprocess.run(
        [sys.executable, "-m", "churnml.cli", "risk-list", "--as-of", AS_OF, "--out", str(export)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with churnml_serve(env, trained.work / "serve.log", start_seconds=START_SECONDS) as url:
        yield Served(url, pd.read_csv(export))


def test_the_list_says_likely_within_and_ranks_as_before(served: Served) -> None:
    rows = served.export.sort_values("rank")
    assert set(rows["likely_within_days"].unique()) <= set(HORIZONS)
    curve = rows[COLUMNS].to_numpy()
    assert (np.diff(curve, axis=1) >= -1e-4).all()  # rounded to 4 significant digits
    # the definition: the earliest horizon whose probability reaches half the longest's
    # (the export's 4 significant digits: a tolerance of one unit in the 4th digit)
    for row, within in zip(curve, rows["likely_within_days"], strict=True):
        half, slack = row[-1] / 2, 1e-3 * row[-1]
        k = HORIZONS.index(within)
        assert row[k] >= half - slack and (row[:k] < half + slack).all()
    assert rows["likely_within_days"].nunique() > 1  # it tells customers apart
    # ranking unchanged: by the default key, probability x revenue (unknown revenue at the
    # median), highest first; the horizons take no part (4 significant digits: a tolerance)
    revenue = rows["monthly_revenue"]
    key = (rows["churn_probability"] * revenue.fillna(revenue.median())).to_numpy()
    assert (np.diff(key) <= 2e-3 * key[:-1]).all()


def test_post_score_carries_the_horizons_over_http(served: Served) -> None:
    body = {"customers": payload_customers(5), "as_of": AS_OF}
    status, raw = call(served.url + "/score", method="POST", body=body)
    assert status == 200, raw[:500]
    for score in json.loads(raw)["scores"]:
        curve = score["horizons"]
        assert list(curve) == ["7", "30", "90"]
        assert curve["7"] <= curve["30"] <= curve["90"]
        assert curve["30"] == score["churn_probability"]


def test_get_risk_list_rows_carry_likely_within_and_the_curve(served: Served) -> None:
    status, raw = call(served.url + "/risk-list?limit=20")
    assert status == 200, raw[:500]
    rows = json.loads(raw)["rows"]
    exported = served.export.set_index("customer_id")
    for row in rows:
        assert row["likely_within_days"] == exported.loc[row["customer_id"], "likely_within_days"]
        assert row["horizons"]["30"] == pytest.approx(row["churn_probability"])


def test_the_detail_view_draws_the_curve(served: Served, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/install-test-tools.sh"
    from playwright.sync_api import sync_playwright

    from tests.integration.test_page_browser import CHROMIUM_ARGS

    status, raw = call(served.url + "/risk-list?limit=1")
    (first,) = json.loads(raw)["rows"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(f"{served.url}/")
            page.get_by_label("API key", exact=True).fill(API_KEY)
            page.get_by_role("button", name="Open the list").click()
            row = f"#rows tbody tr[data-customer-id='{first['customer_id']}']"
            page.locator(f"{row} button.open-detail").click()
            page.wait_for_function(
                "() => document.querySelector('#detail').dataset.state === 'ready'"
            )
            assert page.locator("#detail-curve").is_visible()
            dots = page.locator("#detail-curve-chart circle.curve-dot")
            assert dots.evaluate_all("ds => ds.map(d => Number(d.dataset.horizon))") == list(
                HORIZONS
            )
            within = first["likely_within_days"]
            marked = page.locator("#detail-curve-chart circle.within")
            assert marked.get_attribute("data-horizon") == str(within)
            text = page.locator("#detail-curve-text").inner_text()
            assert "within 7 days" in text and f"most likely within {within} days" in text
            page.screenshot(path=tmp_path / "detail-curve.png")
            assert all(url.startswith(served.url) for url in asked)  # no other host
        finally:
            browser.close()


def test_no_traceback_in_the_server_log(trained: Trained, served: Served) -> None:
    log = (trained.work / "serve.log").read_text()
    assert "Traceback" not in log and API_KEY not in log


# -- train --horizons that cannot be trained -------------------------------------------------
@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("", "is empty"),
        ("7,3.5,90", "not a whole number of days"),
        ("90,30,7", "must increase"),
        ("7,90", "lacks the training horizon 30"),
        ("7,30,400", "longer than the history allows"),
    ],
)
def test_train_horizons_bad_list_is_one_line_exit_2(tmp_path: Path, value: str, said: str) -> None:
    done = churnml(
        tmp_path,
        "train",
        "--customers",
        str(SAMPLE / "customers.csv"),
        "--interactions",
        str(SAMPLE / "interactions.csv"),
        "--horizons",
        value,
        "--quiet",
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--horizons" in done.stderr and said in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run


def test_train_horizons_on_dask_is_a_clear_refusal(tmp_path: Path) -> None:
    done = churnml(tmp_path, "train", "--engine", "dask", "--horizons", "7,30,90", timeout=120)
    assert done.returncode == 2
    assert "--horizons trains on the local engine" in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_score_horizons_of_a_model_without_them_is_exit_2(tmp_path: Path) -> None:
    """A version registered without horizons (``--table``) asked for them: one line."""
    table = tmp_path / "table.csv"
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"calls": rng.poisson(2, 600), "tenure": rng.integers(1, 60, 600)})
    frame["churned"] = (rng.random(600) < 0.15 + 0.05 * frame["calls"]).astype(int)
    frame.to_csv(table, index=False)
    done = churnml(tmp_path, "train", "--table", str(table), "--label", "churned", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    done = churnml(
        tmp_path,
        "score",
        "--as-of",
        AS_OF,
        "--model",
        "models:/churn-risk/1",
        "--out",
        str(tmp_path / "never.csv"),
        "--horizons",
        "7",
    )
    assert done.returncode == 2
    assert "trained without horizons" in done.stderr and "--horizons" in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_the_export_columns_are_read_as_csv(served: Served, trained: Trained) -> None:
    with (trained.work / "list.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    at = header.index("risk_band")
    assert header[at + 1 : at + 5] == ["likely_within_days", *COLUMNS]
