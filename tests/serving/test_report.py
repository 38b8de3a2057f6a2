"""``serving.report`` against a hand-built store whose treated and control outcomes are
known, so every figure is computable by hand; and ``churnml report`` on it."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest

from churnml.cli import main
from serving.report import MIN_CONTROLS, build_report, newcombe, report_lines, wilson
from serving.store import RiskListStore
from tests.serving.report_helpers import make_list

DAY = "2026-01-01"  # horizon 30: outcomes complete on 2026-01-31
LATER = "2026-01-20"  # still pending on AS_OF
AS_OF = dt.date(2026, 2, 5)
Z = 1.959963984540054


def hand_wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval, written out (not scipy's)."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def world(tmp_path, *, controls: int = 40, control_churned: int = 12):
    """List DAY: 60 treated picks (6 churn inside the horizon), ``controls`` control picks
    (``control_churned`` churn), 20 scored below the list (2 churn); list LATER: 10 picks."""
    store = RiskListStore(f"sqlite:///{tmp_path / 'lists.db'}")
    treated = [f"T{i:02d}" for i in range(60)]
    control = [f"K{i:02d}" for i in range(controls)]
    below = [f"B{i:02d}" for i in range(20)]
    picks = [(c, 0.5, "high") for c in treated[:30]] + [(c, 0.2, "medium") for c in treated[30:]]
    picks += [(c, 0.2, "medium") for c in control]
    make_list(store, DAY, picks=picks, others=[(c, 0.05, "low") for c in below])
    make_list(store, LATER, picks=[(f"L{i}", 0.4, "high") for i in range(10)], others=[])
    contacts = [
        {"customer_id": c, "contacted_at": "2026-01-02", "group": "treated"} for c in treated
    ]
    contacts += [
        {"customer_id": c, "contacted_at": "2026-01-01", "group": "control"} for c in control
    ]
    # after the next list's day: a contact of LATER's time, not of DAY's list
    contacts.append({"customer_id": "B00", "contacted_at": "2026-01-21", "group": "treated"})
    store.store_contacts(contacts, source="test")

    churned_at: dict[str, str] = {}
    churned_at.update({c: "2026-01-15" for c in treated[:6]})
    churned_at.update({c: "2026-01-31" for c in control[:control_churned]})  # the last day counts
    churned_at.update({c: "2026-01-10" for c in below[:2]})
    churned_at[treated[10]] = "2026-02-03"  # after the horizon: not a churner of the list
    everyone = treated + control + below + [f"L{i}" for i in range(10)]
    customers = pd.DataFrame(
        {
            "customer_id": everyone,
            "signup_date": pd.Timestamp("2025-01-01"),
            "churned_at": pd.to_datetime([churned_at.get(c) for c in everyone]),
        }
    )
    return store, customers


def test_a_list_past_its_horizon_gives_the_treated_control_gap_by_hand(tmp_path) -> None:
    store, customers = world(tmp_path)
    report = build_report(store, customers, as_of=AS_OF)
    done = next(e for e in report["lists"] if e["list_date"] == DAY)
    assert done["status"] == "done" and done["ends"] == "2026-01-31"
    assert (done["picks"], done["treated"], done["control"], done["not_logged"]) == (100, 60, 40, 0)
    realised = done["realised"]
    assert realised["treated"]["churned"] == 6 and realised["treated"]["rate"] == pytest.approx(0.1)
    assert realised["control"]["churned"] == 12 and realised["control"]["rate"] == pytest.approx(
        0.3
    )
    difference = realised["difference"]
    assert difference["value"] == pytest.approx(0.2)
    low_c, high_c = hand_wilson(12, 40)
    low_t, high_t = hand_wilson(6, 60)
    assert difference["low"] == pytest.approx(0.2 - math.hypot(0.3 - low_c, high_t - 0.1))
    assert difference["high"] == pytest.approx(0.2 + math.hypot(high_c - 0.3, 0.1 - low_t))
    assert realised["customers_kept"]["value"] == pytest.approx(0.2 * 60)
    # 60 treated x 50 a month x 12 months x 0.2
    assert realised["revenue_kept"]["value"] == pytest.approx(7200)
    assert realised["revenue_kept"]["low"] == pytest.approx(difference["low"] * 36000)
    precision = realised["precision_at_k"]
    assert precision["rate"] == pytest.approx(0.3) and precision["n"] == 40
    assert (precision["low"], precision["high"]) == pytest.approx((low_c, high_c))
    assert realised["conclusive"] is True
    assert done["verdict"].startswith("calls kept customers")


def test_calibration_per_band_leaves_the_treated_out(tmp_path) -> None:
    store, customers = world(tmp_path)
    done = next(
        e for e in build_report(store, customers, as_of=AS_OF)["lists"] if e["list_date"] == DAY
    )
    bands = {b["band"]: b for b in done["bands"]}
    assert bands["high"]["customers"] == 30 and bands["high"]["untreated"] == 0
    assert bands["high"]["realised"] is None  # all 30 were called
    assert bands["medium"]["untreated"] == 40  # the controls
    assert bands["medium"]["realised"] == pytest.approx(12 / 40)
    assert bands["medium"]["predicted_untreated"] == pytest.approx(0.2)
    assert bands["low"]["untreated"] == 20 and bands["low"]["realised"] == pytest.approx(0.1)
    assert bands["low"]["predicted"] == pytest.approx(0.05)


def test_a_list_inside_its_horizon_is_pending_with_estimates_only(tmp_path) -> None:
    store, customers = world(tmp_path)
    pending = next(
        e for e in build_report(store, customers, as_of=AS_OF)["lists"] if e["list_date"] == LATER
    )
    assert pending["status"] == "pending" and pending["pending_until"] == "2026-02-19"
    assert pending["realised"] is None
    assert pending["expected_churners"] == pytest.approx(4.0)
    assert pending["expected_precision_at_k"] == pytest.approx(0.4)
    assert pending["verdict"].startswith("pending until 2026-02-19")
    # the contact after LATER's day belongs to LATER's time; B00 is not on LATER's list
    assert pending["treated"] == 0 and pending["not_logged"] == 10


def test_the_report_is_pending_for_every_list_before_the_horizon_passes(tmp_path) -> None:
    store, customers = world(tmp_path)
    report = build_report(store, customers, as_of=dt.date(2026, 1, 30))
    assert [e["status"] for e in report["lists"]] == ["pending", "pending"]


def test_too_few_controls_say_the_interval_is_too_wide(tmp_path) -> None:
    store, customers = world(tmp_path, controls=8, control_churned=3)
    report = build_report(store, customers, as_of=AS_OF)
    done = next(e for e in report["lists"] if e["list_date"] == DAY)
    # The printed line quotes no revenue kept: a figure the interval cannot back.
    line = next(text for text in report_lines(report) if text.startswith(DAY))
    assert "too few picks to conclude" in line and "revenue kept" not in line
    assert done["control"] == 8 < MIN_CONTROLS
    assert done["realised"]["conclusive"] is False
    assert "too few picks to conclude" in done["verdict"] and "too wide" in done["verdict"]
    assert done["realised"]["difference"]["value"] == pytest.approx(3 / 8 - 0.1)


def test_picks_missing_from_the_customers_table_are_unknown_not_stayers(tmp_path) -> None:
    store, customers = world(tmp_path)
    kept = customers[~customers["customer_id"].isin(["K00", "K01"])]  # two churned controls
    done = next(e for e in build_report(store, kept, as_of=AS_OF)["lists"] if e["list_date"] == DAY)
    assert done["realised"]["unknown"] == 2
    assert (done["realised"]["control"]["n"], done["realised"]["control"]["churned"]) == (38, 10)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (12, 40)])
def test_wilson_matches_the_formula(k: int, n: int) -> None:
    share, low, high = wilson(k, n)
    assert share == k / n
    assert (low, high) == pytest.approx(hand_wilson(k, n))


def test_the_list_s_own_controls_count_and_its_treated_picks_wait_for_the_team_s_log(
    tmp_path,
) -> None:
    """A list's held-out picks are controls without any logged contact; a pick the list
    meant to call counts as treated only once the team logs the call."""
    store = RiskListStore(f"sqlite:///{tmp_path / 'lists.db'}")
    picks = [(f"P{i:02d}", 0.3, "high") for i in range(10)]
    make_list(store, DAY, picks=picks, others=[], held_out=["P08", "P09"])
    store.store_contacts(
        [{"customer_id": "P00", "contacted_at": DAY, "group": "treated"}], source="test"
    )
    customers = pd.DataFrame(
        {
            "customer_id": [c for c, _, _ in picks],
            "signup_date": pd.Timestamp("2025-01-01"),
            "churned_at": pd.to_datetime(["2026-01-10"] + [None] * 8 + ["2026-01-12"]),
        }
    )
    done = next(e for e in build_report(store, customers, as_of=AS_OF)["lists"])
    assert (done["treated"], done["control"], done["not_logged"]) == (1, 2, 7)
    assert done["realised"]["control"]["churned"] == 1


def test_newcombe_without_a_group_has_no_interval() -> None:
    assert newcombe(3, 10, 0, 0) == (None, None, None)


def test_churnml_report_prints_each_list_and_writes_json_and_csv(
    tmp_path, capsys, monkeypatch
) -> None:
    store, customers = world(tmp_path)
    frame = customers.assign(
        signup_date=customers["signup_date"].dt.strftime("%Y-%m-%d"),
        churned_at=customers["churned_at"].dt.strftime("%Y-%m-%d"),
    )
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setenv("CHURNML_HOME", str(tmp_path / "home"))
    common = ["--customers", str(path), "--store", store.url, "--as-of", f"{AS_OF}"]
    for out in ("report.json", "report.csv"):
        with pytest.raises(SystemExit) as exited:
            main(["report", *common, "--out", str(tmp_path / out)])
        assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert f"{LATER} (model v7): 10 picks" in printed and "pending until 2026-02-19" in printed
    assert f"{DAY} (model v7): 100 picks (60 treated, 40 control, 0 not logged)" in printed
    assert "revenue kept 7,200" in printed
    written = json.loads((tmp_path / "report.json").read_text())
    assert written == build_report(store, customers, as_of=AS_OF)
    table = pd.read_csv(tmp_path / "report.csv")
    assert list(table["list_date"]) == [LATER, DAY]
    assert table.loc[1, "difference"] == pytest.approx(0.2)
    assert table.loc[1, "realised_low"] == pytest.approx(0.1)
    assert oct((tmp_path / "report.json").stat().st_mode & 0o777) == oct(0o600)


def test_churnml_report_with_an_unknown_format_says_which_it_writes(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--out", str(tmp_path / "r.xlsx")])
    assert exited.value.code == 2
    assert "expected a file ending in .json or .csv" in capsys.readouterr().err
