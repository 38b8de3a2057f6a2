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

import numpy as np
import pandas as pd
import sqlalchemy as sa

from churnml.contract import CUSTOMER_ID
from churnml.errors import ChurnmlError
from churnml.io import read_table
from churnml.validation import (
    Breach,
    broken_control_promises,
    check_retention_table,
    typed_table,
)
from serving.lists import Lists, NoList, StoreUnusable
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
    stored: list[dict] | None = None,
) -> tuple[list[dict[str, str | None]], list[Breach]]:
    """The contacts ready to store (contract columns as text, ``contacted_at`` YYYY-MM-DD,
    ``group`` filled) and the rules the table breaks; nothing is stored when any breaks.
    ``stored`` (the store's contacts of the same customers) are held to the control rows'
    promise together with the new ones."""
    typed, breaches = check_retention_table(
        raw,
        source,
        customers=customers,
        customers_source=customers_source,
        horizon_days=horizon_days,
    )
    if not breaches and stored:
        breaches = stored_promises(typed, pd.DataFrame(stored), source, horizon_days)
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


def stored_promises(
    contacts: pd.DataFrame, stored: pd.DataFrame, source: str, horizon_days: int
) -> list[Breach]:
    """The control promise across what is stored and what comes in (the contract's
    ``broken_control_promises`` over both): a new control row with a stored treated row in
    its horizon, or a new treated row in the horizon of a stored control row. A stored row
    the new table replaces (same customer, day and group) does not count."""
    days = contacts["contacted_at"].dt.strftime("%Y-%m-%d")
    incoming = set(zip(contacts[CUSTOMER_ID], days, contacts["group"], strict=True))
    keys = zip(stored[CUSTOMER_ID], stored["contacted_at"], stored["group"], strict=True)
    stored = stored[[key not in incoming for key in keys]]
    if stored.empty:
        return []
    n = len(contacts)
    stored_days = pd.to_datetime(stored["contacted_at"])
    broken = broken_control_promises(
        pd.concat([contacts[CUSTOMER_ID], stored[CUSTOMER_ID]], ignore_index=True),
        pd.concat([contacts["contacted_at"], stored_days], ignore_index=True),
        pd.concat([contacts["group"], stored["group"]], ignore_index=True),
        horizon_days,
    )
    mask = broken[:n].copy()  # new control rows (the table alone keeps its own promises)
    promised = stored[broken[n:]].assign(day=stored_days[broken[n:]])
    treated = contacts.assign(row=np.arange(n))[contacts["group"] == "treated"]
    pairs = treated.merge(promised, on=CUSTOMER_ID, suffixes=("", "_stored"))
    gap = pairs["contacted_at"] - pairs["day"]
    inside = (gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(days=horizon_days))
    mask[pairs.loc[inside, "row"].to_numpy(dtype=np.int64)] = True
    if not mask.any():
        return []
    rows = np.flatnonzero(mask)
    return [
        Breach(
            source=source,
            table="retention_contacts",
            rule="control:contacted",
            problem=f"a contact that breaks a stored control row's {horizon_days}-day promise "
            "(or a control row for a customer the stored contacts show contacted)",
            expected=f"expected no treated row within {horizon_days} days from a control "
            "row's contacted_at, stored or new; mark the row treated or remove the contact",
            policy="set_aside",
            rows=rows,
            ids=tuple(str(contacts[CUSTOMER_ID].iloc[r]) for r in rows[:3]),
            values=tuple(days.iloc[r] for r in rows[:3]),
        )
    ]


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

    def stored_of(self, customer_ids: list[str]) -> list[dict]:
        """The stored contacts of these customers ([] while no store exists)."""
        try:
            return self.lists.read(lambda store: store.contacts(customers=customer_ids))
        except StoreUnusable:
            raise
        except NoList:
            return []

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
