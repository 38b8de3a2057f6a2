"""The daily list's horizons columns: a store of schema v3 gains ``likely_within_days`` and
``horizons`` in place; the export writes them after ``risk_band`` only when the list has
them. (The end to end list of a model trained with --horizons:
tests/integration/test_horizons_e2e.py.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from serving.export import EXPORT_COLUMNS, csv_text, export_table
from serving.lists import Filters, Lists
from serving.store import SCHEMA_VERSION, RiskListStore
from tests.serving.test_freshness import (  # noqa: F401  (fixtures)
    DAY1,
    DAY2,
    as_version,
    make,
    tables,
)


def test_a_version_3_store_gains_the_horizons_columns_in_place(
    tables,  # noqa: F811
    served,  # noqa: F811
    store,  # noqa: F811
    tmp_path: Path,
) -> None:
    old = make(tables, served, store, DAY1)
    as_version(store, "3")
    opened = RiskListStore(store.url, create=False)
    with opened.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM store_meta").scalar() == SCHEMA_VERSION
    _, rows = opened.rows(old.list_id, limit=5)
    assert rows and all(r["likely_within_days"] is None and r["horizons"] is None for r in rows)
    assert [r["customer_id"] for r in rows] == old.frame["customer_id"].head(5).tolist()
    made = make(tables, served, opened, DAY2)  # a model without horizons stores NULL
    page = Lists(tmp_path, store.url).page(Filters(), 5)
    assert page["date"] == f"{DAY2}" and page["rows"][0]["likely_within_days"] is None
    assert made.list_id == opened.header()["list_id"]


def _rows(curves: list[dict[str, float] | None], within: list[int | None]) -> pd.DataFrame:
    n = len(curves)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "rank": range(1, n + 1),
            "segment": ["consumer"] * n,
            "plan": ["basic"] * n,
            "monthly_revenue": [30.0] * n,
            "churn_probability": [c["30"] if c else 0.1 for c in curves],
            "risk_band": ["high"] * n,
            "thin_history": [False] * n,
            "likely_within_days": within,
            "horizons": curves,
            "revenue_at_risk": [12.0] * n,
            "reasons": [[{"code": "waiting", "text": "waited long"}]] * n,
            "action": ["call"] * n,
            "on_list": [True] * n,
            "change": ["new"] * n,
            "previous_rank": [None] * n,
            "previous_probability": [None] * n,
            "suppressed": [False] * n,
            "last_contacted": [None] * n,
        }
    )


def test_the_export_writes_likely_within_and_the_curve_after_the_band() -> None:
    rows = _rows(
        [{"7": 0.0123456, "30": 0.05, "90": 0.2}, {"7": 0.3, "30": 0.4, "90": 0.5}], [90, 7]
    )
    table = export_table(rows, "2026-06-01", "3", "EUR")
    at = list(table.columns).index("risk_band")
    assert list(table.columns)[at + 1 : at + 5] == [
        "likely_within_days",
        "churn_probability_7d",
        "churn_probability_30d",
        "churn_probability_90d",
    ]
    assert table["churn_probability_7d"].tolist() == [0.01235, 0.3]  # 4 significant digits
    assert table["likely_within_days"].tolist() == [90, 7]
    assert "likely_within_days" in csv_text(table).splitlines()[0]


def test_a_list_without_horizons_keeps_the_v1_columns() -> None:
    table = export_table(_rows([None, None], [None, None]), "2026-06-01", "3", "EUR")
    assert list(table.columns) == EXPORT_COLUMNS
