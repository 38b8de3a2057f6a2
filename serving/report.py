"""How past lists did: ``churnml report`` and ``GET /report``.

For every stored list (not withdrawn), from its rows (rank, probability, band, on the list),
the retention team's contacts (``retention_contacts`` in the store: who of the list's picks
was called, who was held out as a control) and the customers table (``churned_at``: who left):

* A list's **picks** are its customers on the list (within capacity). A pick's **group**:
  ``control`` when the list held it out (the row's ``group``: the random holdout
  ``--control-share`` draws, promised not to be called), else the team's contact for the
  customer from the list's day up to the next list's day (at most the horizon): ``treated``
  or ``control``; a pick without such a contact is ``not logged`` (a pick the list meant to
  call is not known to be called until the team says so: left out of the comparison).
* A pick **churned** when ``list_date < churned_at <= list_date + horizon`` (the contract's
  label). The horizon is the list's own (``horizon_days`` in its header) or the contract's
  default, 30 days.
* Once the horizon has passed (``as_of >= list_date + horizon``):

  - churn among treated and among control picks, each with its 95% Wilson interval;
  - the **difference** ``control churn - treated churn`` (positive: calls kept customers),
    with Newcombe's hybrid score interval (method 10 of Newcombe 1998, from the two Wilson
    intervals; no bootstrap);
  - **customers kept**: difference x treated picks; **revenue kept**: difference x the
    treated picks' monthly revenue x the list's ``revenue_months``, both with the
    difference's interval scaled the same way;
  - **precision at K**: the share of the control picks that churned: how many of the
    list's picks leave when nobody calls them (the controls are a random share of the
    picks, so their churn stands for the list's); with its Wilson interval;
  - per risk band, over everyone scored except treated picks (a call changed their
    outcome): the mean predicted probability against the realised churn.

  With fewer than ``MIN_CONTROLS`` control (or treated) picks the interval is too wide to
  conclude and the verdict says so.
* A list still inside its horizon is ``pending`` until ``list_date + horizon``: only the
  predicted numbers (expected churners among the picks, the expected precision at K: the
  mean calibrated probability of the picks), marked as estimates.

Customers of a list missing from the customers table have no outcome: counted as
``unknown`` and left out of every realised figure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from churnml.contract import CUSTOMER_ID, DEFAULT_HORIZON_DAYS
from serving.store import RiskListStore

BANDS = ("high", "medium", "low")
CONFIDENCE = 0.95
MIN_CONTROLS = 30  # fewer picks in a group: the interval is too wide to conclude
INTERVAL_METHOD = (
    "95% intervals: Wilson for each share, Newcombe's hybrid score interval for the "
    "difference (control churn - treated churn)"
)
PRECISION_DEFINITION = (
    "precision at K: the share of the list's control picks (picked, deliberately not "
    "called) that churned within the horizon"
)


def wilson(churned: int, n: int) -> tuple[float | None, float | None, float | None]:
    """(share, low, high) of ``churned`` out of ``n``: Wilson's 95% score interval."""
    if n == 0:
        return None, None, None
    ci = binomtest(churned, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return churned / n, float(ci.low), float(ci.high)


def newcombe(
    churned_a: int, n_a: int, churned_b: int, n_b: int
) -> tuple[float | None, float | None, float | None]:
    """(difference, low, high) of share a - share b: Newcombe's hybrid score interval."""
    p_a, low_a, high_a = wilson(churned_a, n_a)
    p_b, low_b, high_b = wilson(churned_b, n_b)
    if p_a is None or p_b is None:
        return None, None, None
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = diff + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return diff, low, high


def latest_known_day(customers: pd.DataFrame, headers: Sequence[dict]) -> dt.date | None:
    """The latest day the data speaks of: the customers' latest signup or churn day, the
    lists' latest ``data_through``: the report's default ``as_of``."""
    days = [customers[c].max() for c in ("signup_date", "churned_at") if c in customers.columns]
    days = [d.date() for d in days if pd.notna(d)]
    days += [dt.date.fromisoformat(h["data_through"]) for h in headers if h.get("data_through")]
    return max(days) if days else None


def build_report(
    store: RiskListStore,
    customers: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    horizon_days: int | None = None,
) -> dict[str, Any]:
    """The report of every stored list as of ``as_of`` (default: ``latest_known_day``).
    ``customers`` is the typed customers table (``churnml.validation``); ``horizon_days``
    overrides the lists' own horizon."""
    headers = store.headers()
    as_of = as_of or latest_known_day(customers, headers) or dt.datetime.now(dt.UTC).date()
    churned = customers.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)["churned_at"]
    contacts = pd.DataFrame(
        store.contacts(), columns=["customer_id", "contacted_at", "group", "outcome", "channel"]
    )
    lists = []
    for index, header in enumerate(headers):
        following = headers[index + 1]["list_date"] if index + 1 < len(headers) else None
        horizon = int(horizon_days or header.get("horizon_days") or DEFAULT_HORIZON_DAYS)
        rows = pd.DataFrame(store.outcome_rows(header["list_id"]))
        lists.append(_list_report(header, rows, contacts, churned, as_of, horizon, following))
    return {
        "as_of": as_of.isoformat(),
        "interval_method": INTERVAL_METHOD,
        "precision_definition": PRECISION_DEFINITION,
        "min_controls": MIN_CONTROLS,
        "lists": lists[::-1],  # newest first
    }


def _list_report(
    header: dict,
    rows: pd.DataFrame,
    contacts: pd.DataFrame,
    churned: pd.Series,
    as_of: dt.date,
    horizon: int,
    following: str | None,
) -> dict[str, Any]:
    day = dt.date.fromisoformat(header["list_date"])
    ends = day + dt.timedelta(days=horizon)
    done = as_of >= ends
    if rows.empty:
        rows = pd.DataFrame(
            columns=["customer_id", "churn_probability", "risk_band", "on_list", "monthly_revenue"]
        )
    rows = rows.assign(group=_groups(rows, contacts, day, ends, following))
    picks = rows[rows["on_list"].astype(bool)]
    p = picks["churn_probability"].astype(float)
    report: dict[str, Any] = {
        "list_date": header["list_date"],
        "model_version": header["model_version"],
        "horizon_days": horizon,
        "ends": ends.isoformat(),
        "status": "done" if done else "pending",
        "pending_until": None if done else ends.isoformat(),
        "picks": len(picks),
        "treated": int((picks["group"] == "treated").sum()),
        "control": int((picks["group"] == "control").sum()),
        "not_logged": int(picks["group"].isna().sum()),
        "expected_churners": float(p.sum()),
        "expected_precision_at_k": float(p.mean()) if len(p) else None,
        "realised": None,
        "bands": [],
        "verdict": f"pending until {ends.isoformat()}: predicted numbers only (estimates)",
    }
    if done:
        day_ts, end_ts = pd.Timestamp(day), pd.Timestamp(ends)
        known = rows["customer_id"].isin(churned.index).to_numpy()
        left = rows["customer_id"].map(churned)
        label = ((left > day_ts) & (left <= end_ts)).to_numpy()
        rows = rows.assign(known=known, churned=label)
        report["realised"] = _realised(rows[rows["on_list"].astype(bool)], header)
        report["verdict"] = report["realised"]["verdict"]
    for band in BANDS:
        in_band = rows[rows["risk_band"] == band]
        entry: dict[str, Any] = {
            "band": band,
            "customers": len(in_band),
            "predicted": float(in_band["churn_probability"].mean()) if len(in_band) else None,
            "expected_churners": float(in_band["churn_probability"].sum()),
        }
        entry.update(
            untreated=None,
            predicted_untreated=None,
            realised=None,
            realised_low=None,
            realised_high=None,
        )
        if done:
            untreated = in_band[(in_band["group"] != "treated") & in_band["known"]]
            share, low, high = wilson(int(untreated["churned"].sum()), len(untreated))
            entry.update(
                untreated=len(untreated),
                predicted_untreated=(
                    float(untreated["churn_probability"].mean()) if len(untreated) else None
                ),
                realised=share,
                realised_low=low,
                realised_high=high,
            )
        report["bands"].append(entry)
    return report


def _groups(
    rows: pd.DataFrame, contacts: pd.DataFrame, day: dt.date, ends: dt.date, following: str | None
) -> pd.Series:
    """Each row's group: ``control`` where the list held it out, else the team's contact
    from the list's day to the next list's (at most the horizon); NaN: none."""
    own = rows["group"] if "group" in rows.columns else pd.Series(np.nan, index=rows.index)
    last = ends if following is None else min(ends, dt.date.fromisoformat(following))
    window = contacts[
        (contacts["contacted_at"] >= day.isoformat())
        & (contacts["contacted_at"] < last.isoformat())
    ]
    # a treated contact wins over a control one (a control row promises no call at all)
    by_customer = (
        window.assign(treated=window["group"] == "treated")
        .sort_values("treated")
        .drop_duplicates(CUSTOMER_ID, keep="last")
        .set_index(CUSTOMER_ID)["group"]
    )
    logged = rows["customer_id"].map(by_customer)
    return own.where(own == "control", logged)


def _realised(picks: pd.DataFrame, header: dict) -> dict[str, Any]:
    known = picks[picks["known"]]
    treated = known[known["group"] == "treated"]
    control = known[known["group"] == "control"]
    n_t, c_t = len(treated), int(treated["churned"].sum())
    n_c, c_c = len(control), int(control["churned"].sum())
    diff, low, high = newcombe(c_c, n_c, c_t, n_t)
    revenue = float(treated["monthly_revenue"].fillna(0).sum()) * float(header["revenue_months"])

    def scaled(by: float) -> dict[str, float | None]:
        return {
            "value": None if diff is None else diff * by,
            "low": None if low is None else low * by,
            "high": None if high is None else high * by,
        }

    share_t = wilson(c_t, n_t)
    share_c = wilson(c_c, n_c)
    conclusive = min(n_t, n_c) >= MIN_CONTROLS
    return {
        "unknown": int((~picks["known"]).sum()),
        "treated": {"n": n_t, "churned": c_t, **_share(share_t)},
        "control": {"n": n_c, "churned": c_c, **_share(share_c)},
        "difference": {"value": diff, "low": low, "high": high},
        "customers_kept": scaled(n_t),
        "revenue_kept": scaled(revenue),
        "precision_at_k": {"n": n_c, "churned": c_c, **_share(share_c)},
        "conclusive": conclusive,
        "verdict": _verdict(diff, low, high, n_t, n_c, conclusive),
    }


def _share(found: tuple[float | None, float | None, float | None]) -> dict[str, float | None]:
    return dict(zip(("rate", "low", "high"), found, strict=True))


def _verdict(
    diff: float | None,
    low: float | None,
    high: float | None,
    n_t: int,
    n_c: int,
    conclusive: bool,
) -> str:
    if diff is None:
        missing = "no control picks" if n_c == 0 else "no treated picks"
        return f"{missing} logged: no comparison"
    gap = f"{diff * 100:+.1f} points (95% CI {low * 100:+.1f} to {high * 100:+.1f})"
    if not conclusive:
        return (
            f"control minus treated churn {gap}; too few picks to conclude ({n_c} control, "
            f"{n_t} treated; fewer than {MIN_CONTROLS}): the interval is too wide"
        )
    if low > 0:
        return f"calls kept customers: control minus treated churn {gap}"
    if high < 0:
        return f"calls lost customers: control minus treated churn {gap}"
    return f"no clear effect of the calls: control minus treated churn {gap}, the interval spans 0"


# -- the report as text and as a table -------------------------------------------------------


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report for a terminal: one line a list, newest first."""
    lines = [f"how our lists did, as of {report['as_of']} ({report['interval_method']})"]
    for entry in report["lists"]:
        picks = (
            f"{entry['picks']} picks ({entry['treated']} treated, {entry['control']} control, "
            f"{entry['not_logged']} not logged)"
        )
        head = f"{entry['list_date']} (model v{entry['model_version']}): {picks}"
        realised = entry["realised"]
        if realised is None:
            precision = entry["expected_precision_at_k"]
            lines.append(
                f"{head}; pending until {entry['pending_until']}: expected churners "
                f"{entry['expected_churners']:.1f}, expected precision at K "
                f"{_pct(precision)} (estimates)"
            )
            continue
        kept = realised["revenue_kept"]
        money = (
            ""
            if kept["value"] is None or not realised["conclusive"]  # not a figure to quote
            else f"; revenue kept {kept['value']:,.0f} ({kept['low']:,.0f} to {kept['high']:,.0f})"
        )
        precision = realised["precision_at_k"]
        lines.append(
            f"{head}; churn treated {_pct(realised['treated']['rate'])}, control "
            f"{_pct(realised['control']['rate'])}: {realised['verdict']}{money}; precision at K "
            f"{_pct(precision['rate'])} ({precision['churned']} of {precision['n']} control "
            f"picks{_interval(precision)})"
        )
        lines.append("  " + _bands_line(entry["bands"]))
    if not report["lists"]:
        lines.append("no list is stored yet: run `churnml risk-list` first")
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _interval(share: dict[str, Any]) -> str:
    return "" if share["low"] is None else f", 95% CI {_pct(share['low'])} to {_pct(share['high'])}"


def _bands_line(bands: list[dict[str, Any]]) -> str:
    """A done list's calibration: per band, predicted against realised churn of everyone
    scored but the treated picks."""
    parts = [
        f"{band['band']} {_pct(band['predicted_untreated'])} vs {_pct(band['realised'])} "
        f"({band['untreated']:,} customers"
        + _interval({"low": band["realised_low"], "high": band["realised_high"]})
        + ")"
        for band in bands
    ]
    return "per band, predicted vs realised churn (all scored but the treated): " + "; ".join(parts)


def report_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row a list (``--out FILE.csv``): the headline numbers and, per band, predicted
    against realised churn."""
    records = []
    for entry in report["lists"]:
        realised = entry["realised"] or {}
        record: dict[str, Any] = {
            k: entry[k]
            for k in (
                "list_date",
                "model_version",
                "status",
                "ends",
                "horizon_days",
                "picks",
                "treated",
                "control",
                "not_logged",
                "expected_churners",
                "expected_precision_at_k",
            )
        }
        for name in ("treated", "control"):
            record[f"churn_{name}"] = realised.get(name, {}).get("rate")
        for name in ("difference", "customers_kept", "revenue_kept", "precision_at_k"):
            found = realised.get(name, {})
            record[name] = found.get("value", found.get("rate"))
            record[f"{name}_low"] = found.get("low")
            record[f"{name}_high"] = found.get("high")
        conclusive = realised.get("conclusive")  # text: a CSV cell of true, false or empty
        record["conclusive"] = None if conclusive is None else str(conclusive).lower()
        record["verdict"] = entry["verdict"]
        for band in entry["bands"]:
            predicted = band["predicted_untreated"] if entry["realised"] else band["predicted"]
            record[f"predicted_{band['band']}"] = predicted
            record[f"realised_{band['band']}"] = band.get("realised")
        records.append(record)
    return pd.DataFrame.from_records(records)
