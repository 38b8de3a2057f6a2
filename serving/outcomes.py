"""The retention team's contacts coming back from the CRM: ``churnml retention-contacts
--import F`` and ``POST /retention-contacts`` check them by the contract's rules
(``churnml.validation.check_retention_table``, the one check of the table) and store them
in the list store (``RiskListStore.store_contacts``) in one transaction, or not at all."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churnml.contract import CUSTOMER_ID
from churnml.errors import ChurnmlError
from churnml.io import read_table
from churnml.validation import Breach, check_retention_table, typed_table
from serving.lists import Lists, StoreUnusable
from serving.report import build_report
from serving.store import ContactCounts, RiskListStore, safe_url

API_SOURCE = "api"  # the source of contacts sent to POST /retention-contacts

# The field a broken rule is about (``Breach.rule`` is ``kind:column`` for cell rules).
RULE_FIELDS = {
    "relation:customer_id": "customer_id",
    "timeline:before_signup": "contacted_at",
    "timeline:after_churn": "contacted_at",
    "control:contacted": "group",
    "unique:contact": "contacted_at",
}


def breach_field(breach: Breach) -> str | None:
    """The column a broken rule names, None for a rule about the whole table."""
    if breach.rule in RULE_FIELDS:
        return RULE_FIELDS[breach.rule]
    kind, _, column = breach.rule.partition(":")
    return column if kind in ("type", "required", "negative", "unknown", "range") else None


def checked_contacts(
    raw: pd.DataFrame,
    source: str,
    *,
    customers: pd.DataFrame | None,
    customers_source: str,
    horizon_days: int,
) -> tuple[list[dict[str, str | None]], list[Breach]]:
    """The contacts ready to store (contract columns as text, ``contacted_at`` YYYY-MM-DD,
    ``group`` filled) and the rules the table breaks; nothing is stored when any breaks."""
    typed, breaches = check_retention_table(
        raw,
        source,
        customers=customers,
        customers_source=customers_source,
        horizon_days=horizon_days,
    )
    if breaches:
        return [], breaches
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: typed[CUSTOMER_ID].astype(object),
            "contacted_at": typed["contacted_at"].dt.strftime("%Y-%m-%d").astype(object),
            "group": typed["group"].astype(object),
            "outcome": typed["outcome"].astype(object),
            "channel": typed["channel"].astype(object),
        }
    )
    frame = frame.where(frame.notna(), None)
    return frame.to_dict("records"), []


class Outcomes:
    """The service's side of the loop: contacts in (``POST /retention-contacts``) and the
    report out (``GET /report``), over the service's list store (``serving.lists.Lists``)
    and the configured customers table (read again when the file changes)."""

    def __init__(self, lists: Lists, customers_path: Path) -> None:
        self.lists = lists
        self.customers_path = Path(customers_path)
        self._customers: tuple[tuple[int, int], pd.DataFrame] | None = None
        self._guard = threading.Lock()

    def store(self, contacts: list[dict[str, str | None]]) -> ContactCounts:
        """Store checked contacts; StoreUnusable (503) when the store cannot be written."""
        try:
            store = RiskListStore(self.lists.url, create=True)
        except ChurnmlError as error:
            raise StoreUnusable(f"the risk-list store cannot be written: {error}") from None
        try:
            return store.store_contacts(contacts, source=API_SOURCE)
        except sa.exc.SQLAlchemyError as error:
            first = (str(error).strip().splitlines() or ["error"])[0][:200]
            raise StoreUnusable(
                f"the risk-list store {safe_url(self.lists.url)} cannot be written ({first}); "
                "nothing was stored: send the contacts again"
            ) from None
        finally:
            store.engine.dispose()

    def report(self, as_of: dt.date | None, horizon_days: int | None) -> dict[str, Any]:
        """``serving.report.build_report`` of the service's store and customers."""
        customers = self.customers()
        return self.lists.read(
            lambda store: build_report(store, customers, as_of=as_of, horizon_days=horizon_days)
        )

    def customers(self) -> pd.DataFrame:
        """The typed customers table; NoCustomers (503) when it cannot be read."""
        try:
            found = os.stat(self.customers_path)
            identity = (found.st_mtime_ns, found.st_size)
        except OSError:
            identity = None
        with self._guard:
            if self._customers is not None and self._customers[0] == identity:
                return self._customers[1]
            try:
                typed, _, complete = typed_table(
                    read_table(self.customers_path, "customers"),
                    "customers",
                    self.customers_path.name,
                )
            except ChurnmlError as error:
                raise NoCustomers(f"the report cannot read the customers table: {error}") from None
            if not complete:
                raise NoCustomers(
                    f"the report cannot read the customers table {self.customers_path.name}: it "
                    "lacks required columns (run `churnml validate`)"
                )
            typed = typed.dropna(subset=[CUSTOMER_ID])
            self._customers = (identity, typed) if identity is not None else None
            return typed


class NoCustomers(StoreUnusable):
    """The configured customers table (CHURNML_CUSTOMERS) cannot be read (503)."""
