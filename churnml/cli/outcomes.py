"""``churnml retention-contacts --import F`` (the team's picks and outcomes into the list
store) and ``churnml report`` (how past lists did; ``serving.report``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnml.cli.common import CustomersFile, StoreUrl, parse_date
from churnml.contract import DEFAULT_HORIZON_DAYS
from churnml.errors import ConfigError, ContractError

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

    from churnml.settings import Settings
    from serving.store import RiskListStore

ImportFile = Annotated[
    Path,
    typer.Option(
        "--import",
        help="The retention team's table (.csv, .parquet or folder): customer_id, "
        "contacted_at, group, outcome, channel.",
    ),
]
Horizon = Annotated[
    int,
    typer.Option(
        "--horizon",
        min=1,
        help="Days a control row promises that nobody on the team contacted the customer.",
    ),
]
ReportHorizon = Annotated[
    int | None,
    typer.Option(
        "--horizon",
        min=1,
        help="Days after a list's day its outcomes are counted (default: the list's own "
        f"horizon, else {DEFAULT_HORIZON_DAYS}).",
    ),
]
AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="The day the report is made as of (YYYY-MM-DD); default: the latest day the "
        "customers table and the lists know.",
    ),
]
ReportOut = Annotated[
    Path | None,
    typer.Option("--out", help="Also write the report to FILE: .json (all of it) or .csv."),
]
REPORT_FORMATS = (".json", ".csv")


def retention_contacts(
    import_file: ImportFile,
    customers: CustomersFile = None,
    horizon: Horizon = DEFAULT_HORIZON_DAYS,
    store: StoreUrl = None,
) -> None:
    """Store the retention team's picks and outcomes in the list store, checked by the
    contract's rules against the customers, in one transaction: every row or none.

    The same (customer_id, contacted_at, group) again updates its outcome and channel.
    Control rows keep their promise against the stored contacts too. A broken rule: one
    line each, nothing stored, exit 1.
    """
    typer.echo(import_contacts(_settings(customers, store), import_file, horizon))


def import_contacts(settings: Settings, import_file: Path, horizon: int) -> str:
    """``retention-contacts --import``'s work (``churnml run`` too): the team's table
    checked and stored in one transaction; the line that says what was stored. A broken
    rule: one line each on stderr, then ContractError."""
    from churnml.io import read_table
    from serving.outcomes import checked_contacts

    raw = read_table(import_file, "retention_contacts")
    ids = raw["customer_id"].dropna().astype(str).tolist() if "customer_id" in raw else []
    contacts, breaches = checked_contacts(
        raw,
        import_file.name,
        customers=_customers(settings.customers),
        customers_source=settings.customers.name,
        horizon_days=horizon,
        stored=_stored_contacts(settings, ids),
    )
    if breaches:
        for breach in breaches:
            typer.echo(f"churnml: error: {breach.message()}", err=True)
        raise ContractError(
            f"{import_file}: {len(breaches)} broken rule{'s' if len(breaches) > 1 else ''}; "
            "nothing stored (fix the rows above and import the file again)"
        )
    with _store(settings, create=True) as lists:
        counts = lists.store_contacts(contacts, source=import_file.name[:200])
    return f"{import_file}: {len(contacts)} rows: {counts.summary()}"


def report(
    customers: CustomersFile = None,
    as_of: AsOf = None,
    horizon: ReportHorizon = None,
    out: ReportOut = None,
    store: StoreUrl = None,
) -> None:
    """How each stored list did: churn among treated against control picks (95% interval),
    customers and revenue kept, precision at K, predicted against realised churn per band.
    Lists still inside their horizon are pending: predicted numbers only."""
    from serving.report import report_lines

    day = parse_date(as_of, "--as-of")
    if out is not None and out.suffix.lower() not in REPORT_FORMATS:
        raise ConfigError(f"--out {out}: expected a file ending in {' or '.join(REPORT_FORMATS)}")
    found = report_of(_settings(customers, store), as_of=day, horizon_days=horizon)
    for line in report_lines(found):
        typer.echo(line)
    if out is not None:
        _write_report(found, out)
        typer.echo(f"wrote {out}")


def report_of(
    settings: Settings, *, as_of: dt.date | None = None, horizon_days: int | None = None
) -> dict:
    """``churnml report``'s report (``churnml run`` too): every stored list against the
    customers table of ``settings`` (``serving.report.build_report``)."""
    from serving.report import build_report

    table = _customers(settings.customers)
    with _store(settings, create=False) as lists:
        return build_report(lists, table, as_of=as_of, horizon_days=horizon_days)


def _settings(customers: Path | None, store: str | None):  # -> churnml.settings.Settings
    from churnml.cli.common import command_settings

    return command_settings(customers=customers, risk_store=store, tracking=False).core


def _customers(path: Path) -> pd.DataFrame:
    """The typed customers table (its own rules are ``churnml validate``'s business)."""
    from churnml.io import read_table
    from churnml.validation import typed_table

    typed, _, complete = typed_table(read_table(path, "customers"), "customers", path.name)
    if not complete:
        raise ContractError(
            f"{path}: lacks the customers table's required columns; run `churnml validate`"
        )
    return typed.dropna(subset=["customer_id"])


def _stored_contacts(settings, customer_ids: list[str]) -> list[dict]:
    """The contacts the store holds of these customers; none while there is no store (a
    SQLite file not written yet is not created by looking)."""
    from serving.store import sqlite_path, store_url

    path = sqlite_path(store_url(settings.home, settings.risk_store))
    if path is not None and not path.exists():
        return []
    with _store(settings, create=True) as lists:
        return lists.contacts(customers=customer_ids)


@contextlib.contextmanager
def _store(settings, *, create: bool) -> Iterator[RiskListStore]:
    """The list store of ``settings``, disposed after; a database error in one line."""
    import sqlalchemy as sa

    from serving.store import RiskListStore, safe_url, store_url

    url = store_url(settings.home, settings.risk_store)
    try:
        lists = RiskListStore(url, create=create)
        try:
            yield lists
        finally:
            lists.engine.dispose()
    except sa.exc.SQLAlchemyError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"risk-list store {safe_url(url)}: {first}") from None


def _write_report(found: dict, out: Path) -> None:
    import json

    from churnml.io import atomic_write, write_table
    from serving.report import report_table

    if out.suffix.lower() == ".json":
        if not out.parent.exists():
            raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
        path = out
        text = json.dumps(found, indent=2)
        atomic_write(path, lambda target: target.write_text(text))
    else:
        write_table(report_table(found), out)
