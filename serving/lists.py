"""Reading stored risk lists for the service: ``GET /risk-list``, ``/risk-list.csv``,
``POST /score_ids``. Blocking SQL; the service runs these in a thread.

Every request reads the store afresh, so a list written or withdrawn by ``churnml
risk-list`` (``--withdraw``) is what the next request sees: a withdrawn list is not the
latest, and asking for its day says it was withdrawn."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churnml.errors import ChurnmlError
from serving.evidence import behind
from serving.export import csv_text, export_table
from serving.settings import FRESHNESS_GRACE_DAYS
from serving.store import ROW_COLUMNS, RiskListStore, safe_url, sqlite_path, store_url

MAX_DATES = 60
HISTORY_LISTS = 12  # the detail view's probability over the last lists
RETENTION_TABLE = "retention_contacts"  # the team's log, once a store holds it
RETENTION_FIELDS = ("contacted_at", "group", "outcome", "channel")
EVIDENCE_KEPT_FOR = (
    "contacts are kept with the list for the customers on it and those in the high and medium bands"
)


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

    status = 404


class StoreUnusable(NoList):
    """The store is there but cannot be read: damaged, truncated, or its server is down
    (503). A kind of NoList, so that every list endpoint answers it as it answers NoList,
    with this status."""

    status = 503


class Lists:
    """The store as the service sees it: opened on first use, never created by reading.

    A SQLite store replaced under the service (deleted, written anew, moved into place) is
    a new file: the store is reopened when the file's device and inode change. A store that
    fails to read is closed, answered 503, and opened afresh on the next request, so a
    restored file serves again without a restart.
    """

    def __init__(
        self, home: Path, url: str | None = None, *, grace_days: int = FRESHNESS_GRACE_DAYS
    ) -> None:
        self.url = store_url(home, url)
        self.grace_days = grace_days  # data ending more days before the list's: stale
        self._path = sqlite_path(self.url)
        self._store: RiskListStore | None = None
        self._opened: tuple[int, int] | None = None
        self._guard = threading.Lock()  # endpoints read in threads

    def store(self) -> RiskListStore:
        with self._guard:
            if self._store is not None and self._identity() != self._opened:
                self._close()
            if self._store is None:
                identity = self._identity()
                try:
                    self._store = RiskListStore(self.url, create=False)
                except ChurnmlError:
                    raise NoList(
                        "no risk list is stored yet: run `churnml risk-list --as-of YYYY-MM-DD` "
                        "(the daily job) first"
                    ) from None
                self._opened = identity
            return self._store

    def _identity(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            found = os.stat(self._path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _close(self) -> None:
        if self._store is not None:
            self._store.engine.dispose()
        self._store, self._opened = None, None

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Database errors become StoreUnusable (503), and the store is closed."""
        try:
            yield
        except sa.exc.DBAPIError as error:
            with self._guard:
                self._close()
            first = (str(error.orig or error).strip().splitlines() or ["error"])[0][:200]
            raise StoreUnusable(
                f"the risk-list store {safe_url(self.url)} cannot be read ({first}): restore "
                "it from a backup or write a new list with `churnml risk-list --as-of "
                "YYYY-MM-DD`; the service reopens it by itself"
            ) from None

    def header(self, day: str | None) -> dict[str, Any]:
        store = self.store()
        header = store.header(day)
        if header is None:
            dates = store.dates()
            withdrawn = store.header(day, withdrawn=True) if day is not None else None
            if not dates:
                if withdrawn is not None:
                    raise NoList(
                        f"the risk list of {day} was withdrawn on {withdrawn['withdrawn_at']} "
                        "and no other list is stored: run `churnml risk-list` first"
                    )
                raise NoList("no risk list is stored yet: run `churnml risk-list` first")
            shown = ", ".join(dates[:5]) + (" ..." if len(dates) > 5 else "")
            if withdrawn is not None:
                raise NoList(
                    f"the risk list of {day} was withdrawn on {withdrawn['withdrawn_at']}; "
                    f"lists exist for {shown} (newest first)"
                )
            raise NoList(f"no risk list for {day}; lists exist for {shown} (newest first)")
        return header

    def read(self, reader: Callable[[RiskListStore], Any]) -> Any:
        """``reader(store)``, with the store's errors answered as every list endpoint's."""
        with self._reading():
            return reader(self.store())

    def page(self, filters: Filters, limit: int) -> dict[str, Any]:
        with self._reading():
            return self._page(filters, limit)

    def _page(self, filters: Filters, limit: int) -> dict[str, Any]:
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
            "rank_by_reason": header.get("rank_by_reason"),
            "control_share": header.get("control_share"),
            "scored": header["scored"],
            "on_list": header["on_list"],
            **self._freshness(header),
            "lacking_fields": header.get("lacking_fields") or {},
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

    def _freshness(self, header: dict[str, Any]) -> dict[str, Any]:
        """The list's data freshness: the last day its data covers, how many days that is
        before the list's day, and whether that is more than the service's grace."""
        through = header.get("data_through")
        if through is None:  # a list stored before churnml recorded it, or no contacts
            return {"data_through": None, "data_lag_days": None, "data_stale": False}
        lag = (dt.date.fromisoformat(header["list_date"]) - dt.date.fromisoformat(through)).days
        return {
            "data_through": through,
            "data_lag_days": lag,
            "data_stale": lag > self.grace_days,
        }

    def csv(self, filters: Filters, limit: int | None, currency: str) -> tuple[str, str]:
        """(file name, CSV text) of the matching rows: the export ``churnml risk-list
        --out`` writes (``serving.export``), of the filters' scope."""
        with self._reading():
            header, _, rows = self._matching(filters, limit)
        table = export_table(
            pd.DataFrame(rows, columns=ROW_COLUMNS),
            header["list_date"],
            header["model_version"],
            currency,
        )
        return f"risk-list-{header['list_date']}.csv", csv_text(table)

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
        with self._reading():
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
                    "thin_history": bool(row["thin_history"]),
                    "horizons": row.get("horizons"),
                    "reasons": row["reasons"],
                    "action": row["action"],
                    "model_name": header["model_name"],
                    "model_version": header["model_version"],
                    "as_of": header["list_date"],
                }
            )
        return {"list_date": header["list_date"], "scores": scores, "not_found": missing}

    def customer(self, customer_id: str, day: str | None) -> dict[str, Any]:
        """A customer's detail on a day's list (the latest without ``day``): their row, the
        contacts and cases behind each reason (kept with the list), their probability on
        the last lists up to that day, the freshness of the list's data and the retention
        team's contacts with them. NoList (404) when the list does not hold them."""
        with self._reading():
            header = self.header(day)
            store = self.store()
            row = store.rows_of(header["list_id"], [customer_id]).get(customer_id)
            if row is None:
                raise NoList(
                    f"customer {customer_id!r} is not on the list of {header['list_date']} "
                    "(not active that day, or not in the data): check the id, or pick "
                    "another day"
                )
            kept = store.evidence(header["list_id"], customer_id)
            history = store.history(customer_id, through=header["list_date"], count=HISTORY_LISTS)
            contacts, recorded = self._retention_contacts(store, customer_id)
        evidence = json.loads(kept) if kept is not None else None
        reasons = []
        for reason in row["reasons"]:
            found = behind(reason["family"], evidence) if evidence else None
            reasons.append(
                {
                    "code": reason["code"],
                    "text": reason["text"],
                    "family": reason["family"],
                    "kind": reason["kind"],
                    "contacts": found["contacts"] if found else [],
                    "cases": found["cases"] if found else [],
                }
            )
        note = None
        if evidence is None:
            note = (
                f"no contacts kept for this customer on the list of {header['list_date']}: "
                f"{EVIDENCE_KEPT_FOR} (lists stored before churnml kept them have none)"
            )
        return {
            "date": header["list_date"],
            "customer_id": customer_id,
            "model_name": header["model_name"],
            "model_version": header["model_version"],
            **self._freshness(header),
            "band_thresholds": header["bands"]["thresholds"],
            "row": {
                **row,
                "reasons": [{"code": r["code"], "text": r["text"]} for r in row["reasons"]],
            },
            "reasons": reasons,
            "action": row["action"],
            "evidence_kept": evidence is not None,
            "evidence_note": note,
            "window_days": evidence["window_days"] if evidence else None,
            "contacts_in_window": evidence["contacts_in_window"] if evidence else None,
            "contacts": evidence["contacts"] if evidence else [],
            "cases": evidence["cases"] if evidence else [],
            "history": history,
            "retention_contacts_recorded": recorded,
            "retention_contacts": contacts,
        }

    def _retention_contacts(
        self, store: RiskListStore, customer_id: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """The retention team's logged contacts with the customer, newest first (at most
        ``HISTORY_LISTS``), and whether the store keeps such a log at all (any contact stored)."""
        if not sa.inspect(store.engine).has_table(RETENTION_TABLE):
            return [], False
        table = sa.Table(RETENTION_TABLE, sa.MetaData(), autoload_with=store.engine)
        wanted = [c for c in ("contacted_at", "group", "outcome", "channel") if c in table.c]
        if "customer_id" not in table.c or "contacted_at" not in wanted:
            return [], False
        query = (
            sa.select(*[table.c[c] for c in wanted])
            .where(table.c.customer_id == customer_id)
            .order_by(table.c.contacted_at.desc())
            .limit(HISTORY_LISTS)
        )
        with store.engine.connect() as conn:
            found = conn.execute(query).mappings().all()
            # a log is kept once the team's contacts were stored (the v4 table starts empty)
            any_row = sa.select(table.c.customer_id).limit(1)
            recorded = bool(found) or conn.execute(any_row).first() is not None
        return [
            {
                k: (None if r.get(k) is None else str(r.get(k)))
                for k in ("contacted_at", "group", "outcome", "channel")
            }
            for r in found
        ], recorded
