"""Reading stored risk lists for the service: ``GET /risk-list``, ``/risk-list.csv``,
``POST /score_ids``. Blocking SQL; the service runs these in a thread."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnml.errors import ChurnmlError
from serving.store import ROW_COLUMNS, RiskListStore, store_url

MAX_DATES = 60


@dataclass(frozen=True)
class Filters:
    """Which rows of which list: the query of ``GET /risk-list`` and ``/risk-list.csv``."""

    day: str | None = None  # YYYY-MM-DD; None: the latest list
    band: str | None = None
    segment: str | None = None
    customer: str | None = None  # ids containing this text
    scope: str = "list"  # "list": within capacity; "all": everyone scored
    offset: int = 0


class NoList(ChurnmlError):
    """No list to answer from (404)."""


class Lists:
    """The store as the service sees it: opened on first use, never created by reading."""

    def __init__(self, home: Path, url: str | None = None) -> None:
        self.url = store_url(home, url)
        self._store: RiskListStore | None = None

    def store(self) -> RiskListStore:
        if self._store is None:
            try:
                self._store = RiskListStore(self.url, create=False)
            except ChurnmlError:
                raise NoList(
                    "no risk list is stored yet: run `churnml risk-list --as-of YYYY-MM-DD` "
                    "(the daily job) first"
                ) from None
        return self._store

    def header(self, day: str | None) -> dict[str, Any]:
        store = self.store()
        header = store.header(day)
        if header is None:
            dates = store.dates()
            if not dates:
                raise NoList("no risk list is stored yet: run `churnml risk-list` first")
            shown = ", ".join(dates[:5]) + (" ..." if len(dates) > 5 else "")
            raise NoList(f"no risk list for {day}; lists exist for {shown} (newest first)")
        return header

    def page(self, filters: Filters, limit: int) -> dict[str, Any]:
        header, total, rows = self._matching(filters, limit)
        store = self.store()
        for row in rows:
            row["reasons"] = [{"code": r["code"], "text": r["text"]} for r in row["reasons"]]
        drift = header["drift"]
        return {
            "date": header["list_date"],
            "created_at": header["created_at"],
            "model_name": header["model_name"],
            "model_version": header["model_version"],
            "previous_date": header["previous_date"],
            "capacity": header["capacity"],
            "rank_by": header["rank_by"],
            "scored": header["scored"],
            "on_list": header["on_list"],
            "band_thresholds": header["bands"]["thresholds"],
            "band_shares": header["bands"]["shares"],
            "drift": {
                "warning": bool(drift["warnings"]),
                "warnings": drift["warnings"],
                "psi_over": drift.get("psi_over", []),
                "psi_warning": drift.get("psi_warning", 0.0),
            },
            "total": total,
            "limit": limit,
            "offset": filters.offset,
            "rows": rows,
            "departures": store.departures(header["list_id"]),
            "dates": store.dates()[:MAX_DATES],
            "segments": store.segments(header["list_id"]),
        }

    def csv(self, filters: Filters, limit: int | None) -> tuple[str, str]:
        """(file name, CSV text) of the matching rows, reasons flattened as in --out."""
        from serving.risklist import flat_table

        header, _, rows = self._matching(filters, limit)
        frame = flat_table(
            pd.DataFrame(rows, columns=ROW_COLUMNS), header["list_date"], header["model_version"]
        )
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return f"risk-list-{header['list_date']}.csv", buffer.getvalue()

    def _matching(self, filters: Filters, limit: int | None) -> tuple[dict, int, list[dict]]:
        header = self.header(filters.day)
        total, rows = self.store().rows(
            header["list_id"],
            band=filters.band,
            segment=filters.segment,
            customer=filters.customer,
            on_list=True if filters.scope == "list" else None,
            limit=limit,
            offset=filters.offset,
        )
        return header, total, rows

    def scores(self, customer_ids: Sequence[str]) -> dict[str, Any]:
        """The latest list's scores of these customers, in the /score shape."""
        header = self.header(None)
        found = self.store().rows_of(header["list_id"], customer_ids)
        scores, missing = [], []
        for customer in customer_ids:
            row = found.get(customer)
            if row is None:
                missing.append(customer)
                continue
            scores.append(
                {
                    "customer_id": customer,
                    "churn_probability": row["churn_probability"],
                    "risk_band": row["risk_band"],
                    "reasons": row["reasons"],
                    "action": row["action"],
                    "model_name": header["model_name"],
                    "model_version": header["model_version"],
                    "as_of": header["list_date"],
                }
            )
        return {"list_date": header["list_date"], "scores": scores, "not_found": missing}
