"""The risk-list store: every day's list, its rows and its history, in a SQL database.

By default a SQLite file under ``CHURNML_HOME`` (``risk-lists.db``); any SQLAlchemy URL by
``CHURNML_RISK_STORE`` or ``--store`` (for PostgreSQL: ``postgresql+psycopg://...``).

Tables (created on first use; ``store_meta`` holds the schema version):

* ``risk_lists``: one row per list date: model name, version and URI, the inputs'
  fingerprint, capacity, ranking, band thresholds and shares, drift results, the data's
  freshness (``data_through``: the last contact day the list saw, and the grace it was
  checked with), how many scored customers lacked each field the model was trained on
  almost always having (``lacking_fields``, JSON), and ``withdrawn_at`` once the list is
  withdrawn;
* ``risk_list_rows``: every customer scored that day, with rank, probability, band,
  revenue at risk, reasons, action, change since the previous list, suppression; (v4) the
  day's pick (``group``: ``treated`` or ``control``), the call effect and saved revenue, and
  why a high-risk customer was not picked (``not_listed_because``);
* ``risk_list_departures``: customers on the previous list who are not on this one, and why;
* ``risk_list_evidence`` (v3): what the page's detail view shows behind a customer's
  reasons, kept when the list is written (``serving.evidence``): their recent contacts and
  cases as of the list's day, one JSON document per customer on the list or in the high or
  medium band;
* ``retention_contacts`` (v4): the retention team's picks and outcomes (contract v1.1's
  table), one row per (customer_id, contacted_at, group), with when it was stored and from
  where (the import file's name, or ``api``); storing the same key again updates its
  outcome and channel (``store_contacts``);
* ``risk_list_runs``: every run ever stored, never deleted: which model version scored
  which day's list, including lists later replaced by a re-run; and every withdrawal
  (``action`` ``withdrawn``, who asked and why).

A withdrawn list keeps its rows but is no list of the store's readers any more: the latest
list, the previous list a new one is compared with, the band history and ``dates()`` all
skip it, so the list before it is current again. Re-making the day replaces it.

A store of an older schema is upgraded in place when it is opened (``UPGRADES``: columns
added, ``UPGRADE_TABLES``: tables created, the version raised, in one transaction); a newer
one is refused. Lists stored before v3 have no evidence: the detail view says so.

Writing a day (``replace_list``) is one transaction: the day's old list goes and the new
one comes in together, or nothing changes. On SQLite the transaction starts with
``BEGIN IMMEDIATE``, so a second writer waits for the first (up to ``BUSY_SECONDS``)
instead of interleaving; the file is in WAL mode, so readers (the service) keep reading
the previous list meanwhile. On PostgreSQL the writer takes an exclusive lock on
``risk_lists`` for its transaction (reads go on).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from churnml.errors import ConfigError, DataError
from features.columns import family_kind

# 2: freshness, withdrawal and thin_history; 3: lacking_fields and the evidence behind the
# reasons; 4: the retention team's contacts, the call effect, the control group, why a
# risky customer is not listed, and the rows' likely_within_days and horizons
# (older stores are upgraded in place)
SCHEMA_VERSION = "4"
BUSY_SECONDS = 600
CHUNK_ROWS = 20_000

metadata = sa.MetaData()

store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

risk_lists = sa.Table(
    "risk_lists",
    metadata,
    sa.Column("list_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_date", sa.String(10), nullable=False, unique=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("model_uri", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),  # JSON
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("on_list", sa.Integer, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("rank_by", sa.String(16), nullable=False),
    sa.Column("revenue_months", sa.Float, nullable=False),
    sa.Column("bands", sa.Text, nullable=False),  # JSON: thresholds and shares
    sa.Column("drift", sa.Text, nullable=False),  # JSON
    sa.Column("drift_warning", sa.Boolean, nullable=False),
    sa.Column("previous_date", sa.String(10)),
    sa.Column("departures", sa.Integer, nullable=False),
    # v2: the data's freshness, and the list's withdrawal
    sa.Column("data_through", sa.String(10)),  # YYYY-MM-DD; None before v2 or no contacts
    sa.Column("freshness_grace_days", sa.Integer),
    sa.Column("withdrawn_at", sa.String(32)),
    # v3: how many scored customers lacked each field the model was trained on almost always
    # having (JSON {field: rows}; None before v3)
    sa.Column("lacking_fields", sa.Text),
    # v4: why the list ranks as it does (one line the page shows), the share of the picks
    # held out as controls and the call-effect floor (None before v4)
    sa.Column("rank_by_reason", sa.Text),
    sa.Column("control_share", sa.Float),
    sa.Column("min_call_effect", sa.Float),
)

risk_list_rows = sa.Table(
    "risk_list_rows",
    metadata,
    sa.Column("list_id", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("segment", sa.String(200)),
    sa.Column("plan", sa.String(200)),
    sa.Column("monthly_revenue", sa.Float),
    sa.Column("churn_probability", sa.Float, nullable=False),
    sa.Column("risk_band", sa.String(16), nullable=False),
    # Less history than the feature windows (model.predictor.Prediction.thin_history).
    sa.Column("thin_history", sa.Boolean, nullable=False, server_default=sa.false()),
    # A model trained with --horizons: the earliest horizon by which the churn probability
    # reaches half of the longest horizon's (model.horizons.likely_within), and the curve
    # as JSON {"<H>": p}; NULL without horizons (and on lists stored before v4).
    sa.Column("likely_within_days", sa.Integer),
    sa.Column("horizons", sa.Text),
    sa.Column("revenue_at_risk", sa.Float),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of {code, text}
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("on_list", sa.Boolean, nullable=False),
    sa.Column("change", sa.String(16)),
    sa.Column("previous_rank", sa.Integer),
    sa.Column("previous_probability", sa.Float),
    sa.Column("suppressed", sa.Boolean, nullable=False),
    sa.Column("last_contacted", sa.String(10)),
    # v4: the day's pick (``treated`` or ``control``; None off the list or suppressed), the
    # call effect and the revenue a call keeps (None without a call-effect head), and why a
    # high-risk customer was not picked (ranking by saved revenue)
    sa.Column("group", sa.String(16)),
    sa.Column("call_effect", sa.Float),
    sa.Column("saved_revenue", sa.Float),
    sa.Column("not_listed_because", sa.Text),
    sa.PrimaryKeyConstraint("list_id", "customer_id"),
    sa.Index("risk_list_rows_rank", "list_id", "rank"),
)

risk_list_departures = sa.Table(
    "risk_list_departures",
    metadata,
    sa.Column("list_id", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("previous_rank", sa.Integer, nullable=False),
    sa.Column("previous_probability", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer),
    sa.Column("churn_probability", sa.Float),
    sa.Column("why", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("list_id", "customer_id"),
)

risk_list_evidence = sa.Table(
    "risk_list_evidence",
    metadata,
    sa.Column("list_id", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON: serving.evidence
    sa.PrimaryKeyConstraint("list_id", "customer_id"),
)

risk_list_runs = sa.Table(
    "risk_list_runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_date", sa.String(10), nullable=False, index=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("model_uri", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("replaced_list", sa.Boolean, nullable=False),
    # v2: a run stores a list or withdraws one; a withdrawal says who asked and why
    sa.Column("action", sa.String(16), nullable=False, server_default="stored"),
    sa.Column("requested_by", sa.String(200)),
    sa.Column("reason", sa.Text),
)

retention_contacts = sa.Table(
    "retention_contacts",
    metadata,
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("contacted_at", sa.String(10), nullable=False),  # YYYY-MM-DD
    sa.Column("group", sa.String(16), nullable=False),  # treated | control
    sa.Column("outcome", sa.String(32)),
    sa.Column("channel", sa.String(16)),
    sa.Column("stored_at", sa.String(32), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),  # the import file's name, or "api"
    sa.PrimaryKeyConstraint("customer_id", "contacted_at", "group"),
    sa.Index("retention_contacts_day", "contacted_at"),
)
CONTACT_KEY = ("customer_id", "contacted_at", "group")
CONTACT_VALUES = ("outcome", "channel")

# The columns schema version K lacks of version K + 1: opening a store of an older version
# adds those of every step from its version up, in order.
UPGRADES: dict[str, tuple[tuple[sa.Table, str], ...]] = {
    "1": (
        (risk_lists, "data_through"),
        (risk_lists, "freshness_grace_days"),
        (risk_lists, "withdrawn_at"),
        (risk_list_runs, "action"),
        (risk_list_runs, "requested_by"),
        (risk_list_runs, "reason"),
        (risk_list_rows, "thin_history"),
    ),
    "2": ((risk_lists, "lacking_fields"),),
    "3": (
        (risk_list_rows, "likely_within_days"),
        (risk_list_rows, "horizons"),
        (risk_lists, "rank_by_reason"),
        (risk_lists, "control_share"),
        (risk_lists, "min_call_effect"),
        (risk_list_rows, "group"),
        (risk_list_rows, "call_effect"),
        (risk_list_rows, "saved_revenue"),
        (risk_list_rows, "not_listed_because"),
    ),
}
# The tables schema version K lacks of version K + 1: created by the upgrade.
UPGRADE_TABLES: dict[str, tuple[sa.Table, ...]] = {
    "2": (risk_list_evidence,),
    "3": (retention_contacts,),
}

ROW_COLUMNS = [c.name for c in risk_list_rows.columns if c.name != "list_id"]
DEPARTURE_COLUMNS = [c.name for c in risk_list_departures.columns if c.name != "list_id"]
JSON_COLUMNS = {"fingerprint", "bands", "drift", "lacking_fields"}


def default_url(home: Path) -> str:
    return f"sqlite:///{(Path(home) / 'risk-lists.db').resolve()}"


def store_url(home: Path, configured: str | None = None) -> str:
    """``configured`` (the flag, else ``CHURNML_RISK_STORE`` read by the entry point's
    settings), else SQLite under ``home``."""
    return configured or default_url(home)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL; None for other databases and in-memory SQLite."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class RiskListStore:
    """Reads and writes the daily lists at one SQLAlchemy URL."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = _engine(url, create=create)
        try:
            if create:
                self._create()
            else:
                self.upgrade()  # a reader's open upgrades an older store, creates nothing
        except BaseException:
            self.engine.dispose()
            raise

    # -- writing ---------------------------------------------------------------------------
    def replace_list(
        self,
        header: dict[str, Any],
        rows: Sequence[tuple],
        departures: Sequence[tuple],
        *,
        evidence: Sequence[tuple[str, str]] = (),
        after_chunk: Any = None,
    ) -> int:
        """Store the list of ``header['list_date']`` in one transaction, replacing that
        day's list if there is one; returns its list_id. ``rows`` and ``departures`` are
        tuples in the order of ``ROW_COLUMNS`` / ``DEPARTURE_COLUMNS``; ``evidence`` are
        (customer_id, JSON) pairs. ``after_chunk`` (tests) is called after each chunk of
        rows is written, inside the transaction."""
        day = header["list_date"]
        with self._writing() as conn:
            old = conn.execute(
                sa.select(risk_lists.c.list_id).where(risk_lists.c.list_date == day)
            ).scalar()
            if old is not None:
                for table in (risk_list_rows, risk_list_departures, risk_list_evidence):
                    conn.execute(table.delete().where(table.c.list_id == old))
                conn.execute(risk_lists.delete().where(risk_lists.c.list_id == old))
            values = {
                k: (json.dumps(v) if k in JSON_COLUMNS and v is not None else v)
                for k, v in header.items()
            }
            list_id = conn.execute(risk_lists.insert().values(**values)).inserted_primary_key[0]
            insert = _insert(conn, risk_list_rows)
            for start in range(0, len(rows), CHUNK_ROWS):
                chunk = rows[start : start + CHUNK_ROWS]
                insert([(list_id, *row) for row in chunk])
                if after_chunk is not None:
                    after_chunk(start + len(chunk))
            if departures:
                conn.execute(
                    risk_list_departures.insert(),
                    [
                        dict(zip(DEPARTURE_COLUMNS, row, strict=True), list_id=list_id)
                        for row in departures
                    ],
                )
            insert_evidence = _insert(conn, risk_list_evidence)
            for start in range(0, len(evidence), CHUNK_ROWS):
                insert_evidence(
                    [(list_id, c, text) for c, text in evidence[start : start + CHUNK_ROWS]]
                )
            conn.execute(
                risk_list_runs.insert().values(
                    list_date=day,
                    created_at=header["created_at"],
                    model_name=header["model_name"],
                    model_version=header["model_version"],
                    model_uri=header["model_uri"],
                    fingerprint=json.dumps(header["fingerprint"]),
                    scored=header["scored"],
                    replaced_list=old is not None,
                    action="stored",
                )
            )
        return int(list_id)

    def withdraw(self, day: str, *, by: str, reason: str | None = None) -> Withdrawal:
        """Withdraw the list of ``day``: it stays stored but is no longer served or compared
        with, and a ``withdrawn`` run records who asked, when and why. A list already
        withdrawn is left as it is (``Withdrawal.already``); DataError when ``day`` has no
        list."""
        with self._writing() as conn:
            found = (
                conn.execute(sa.select(risk_lists).where(risk_lists.c.list_date == day))
                .mappings()
                .first()
            )
            if found is None:
                stored = list(conn.execute(_dates_query()).scalars())
                raise DataError(f"no risk list for {day} to withdraw; {_lists_exist(stored)}")
            already = found["withdrawn_at"] is not None
            when = found["withdrawn_at"] or today_iso()
            if not already:
                conn.execute(
                    risk_lists.update()
                    .where(risk_lists.c.list_id == found["list_id"])
                    .values(withdrawn_at=when)
                )
                conn.execute(
                    risk_list_runs.insert().values(
                        list_date=day,
                        created_at=when,
                        model_name=found["model_name"],
                        model_version=found["model_version"],
                        model_uri=found["model_uri"],
                        fingerprint=found["fingerprint"],
                        scored=found["scored"],
                        replaced_list=False,
                        action="withdrawn",
                        requested_by=by[:200],
                        reason=reason,
                    )
                )
            current = conn.execute(_dates_query().limit(1)).scalar()
        return Withdrawal(day, when, already, current)

    # -- reading ---------------------------------------------------------------------------
    def dates(self) -> list[str]:
        """The days with a list that is not withdrawn, newest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(_dates_query()).scalars())

    def header(
        self,
        day: str | None = None,
        *,
        before: str | None = None,
        withdrawn: bool = False,
    ) -> dict | None:
        """The list of ``day``; the latest one when ``day`` is None; with ``before``, the
        latest one before that day. None when there is none. A withdrawn list counts only
        with ``withdrawn`` (its header then has ``withdrawn_at``)."""
        query = sa.select(risk_lists)
        if not withdrawn:
            query = query.where(risk_lists.c.withdrawn_at.is_(None))
        if day is not None:
            query = query.where(risk_lists.c.list_date == day)
        if before is not None:
            query = query.where(risk_lists.c.list_date < before)
        query = query.order_by(risk_lists.c.list_date.desc()).limit(1)
        with self.engine.connect() as conn:
            found = conn.execute(query).mappings().first()
        if found is None:
            return None
        return _header(found)

    def recent_headers(self, before: str, count: int) -> list[dict]:
        query = (
            sa.select(risk_lists)
            .where(risk_lists.c.list_date < before, risk_lists.c.withdrawn_at.is_(None))
            .order_by(risk_lists.c.list_date.desc())
            .limit(count)
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).mappings().all()
        return [_header(r) for r in found]

    def rows(
        self,
        list_id: int,
        *,
        band: str | None = None,
        segment: str | None = None,
        customer: str | None = None,
        on_list: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[int, list[dict]]:
        """(how many rows match, the page of them in rank order)."""
        where = [risk_list_rows.c.list_id == list_id]
        if band:
            where.append(risk_list_rows.c.risk_band == band)
        if segment:
            where.append(risk_list_rows.c.segment == segment)
        if customer:
            where.append(risk_list_rows.c.customer_id.contains(customer, autoescape=True))
        if on_list is not None:
            where.append(risk_list_rows.c.on_list == on_list)
        count = sa.select(sa.func.count()).select_from(risk_list_rows).where(*where)
        page = (
            sa.select(*[risk_list_rows.c[name] for name in ROW_COLUMNS])
            .where(*where)
            .order_by(risk_list_rows.c.rank)
            .offset(offset)
        )
        if limit is not None:
            page = page.limit(limit)
        with self.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            found = conn.execute(page).mappings().all()
        return int(total), [_row(r) for r in found]

    def rows_of(self, list_id: int, customer_ids: Sequence[str]) -> dict[str, dict]:
        """The rows of these customers on a list, by customer id."""
        query = sa.select(*[risk_list_rows.c[name] for name in ROW_COLUMNS]).where(
            risk_list_rows.c.list_id == list_id,
            risk_list_rows.c.customer_id.in_(list(dict.fromkeys(customer_ids))),
        )
        with self.engine.connect() as conn:
            return {r["customer_id"]: _row(r) for r in conn.execute(query).mappings()}

    def evidence(self, list_id: int, customer_id: str) -> str | None:
        """The JSON evidence kept for a customer of a list; None when none was kept."""
        query = sa.select(risk_list_evidence.c.evidence).where(
            risk_list_evidence.c.list_id == list_id,
            risk_list_evidence.c.customer_id == customer_id,
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def history(self, customer_id: str, *, through: str, count: int) -> list[dict]:
        """The customer's rows on the last ``count`` lists up to the day ``through`` (not
        withdrawn), newest first: list date, rank, probability, band, on_list."""
        query = (
            sa.select(
                risk_lists.c.list_date,
                risk_list_rows.c.rank,
                risk_list_rows.c.churn_probability,
                risk_list_rows.c.risk_band,
                risk_list_rows.c.on_list,
            )
            .join(risk_list_rows, risk_list_rows.c.list_id == risk_lists.c.list_id)
            .where(
                risk_list_rows.c.customer_id == customer_id,
                risk_lists.c.list_date <= through,
                risk_lists.c.withdrawn_at.is_(None),
            )
            .order_by(risk_lists.c.list_date.desc())
            .limit(count)
        )
        with self.engine.connect() as conn:
            return [
                {**dict(r), "on_list": bool(r["on_list"])} for r in conn.execute(query).mappings()
            ]

    def previous_rows(self, list_id: int) -> dict[str, tuple[int, float, bool]]:
        """{customer_id: (rank, probability, on_list)} of every row of a list."""
        query = sa.select(
            risk_list_rows.c.customer_id,
            risk_list_rows.c.rank,
            risk_list_rows.c.churn_probability,
            risk_list_rows.c.on_list,
        ).where(risk_list_rows.c.list_id == list_id)
        with self.engine.connect() as conn:
            return {c: (int(r), float(p), bool(o)) for c, r, p, o in conn.execute(query)}

    def control_picks(self, since: str, before: str) -> dict[str, str]:
        """{customer_id: the latest list day} of the customers held out as controls on the
        lists (not withdrawn) of the days from ``since`` up to, not including, ``before``:
        a control is a promise that nobody calls them for the rest of the horizon."""
        query = (
            sa.select(risk_list_rows.c.customer_id, sa.func.max(risk_lists.c.list_date))
            .join(risk_lists, risk_list_rows.c.list_id == risk_lists.c.list_id)
            .where(
                risk_list_rows.c.group == "control",
                risk_lists.c.list_date >= since,
                risk_lists.c.list_date < before,
                risk_lists.c.withdrawn_at.is_(None),
            )
            .group_by(risk_list_rows.c.customer_id)
        )
        with self.engine.connect() as conn:
            return {c: d for c, d in conn.execute(query)}

    def departures(self, list_id: int) -> list[dict]:
        query = (
            sa.select(*[risk_list_departures.c[name] for name in DEPARTURE_COLUMNS])
            .where(risk_list_departures.c.list_id == list_id)
            .order_by(risk_list_departures.c.previous_rank)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def segments(self, list_id: int) -> list[str]:
        query = (
            sa.select(risk_list_rows.c.segment)
            .where(risk_list_rows.c.list_id == list_id, risk_list_rows.c.segment.is_not(None))
            .distinct()
            .order_by(risk_list_rows.c.segment)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def runs(self, day: str | None = None) -> list[dict]:
        """Every run (newest first): which model version scored which day (``action``
        ``stored``), and every withdrawal (``withdrawn``, with who asked and why)."""
        query = sa.select(risk_list_runs).order_by(risk_list_runs.c.run_id.desc())
        if day is not None:
            query = query.where(risk_list_runs.c.list_date == day)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- the retention team's contacts ---------------------------------------------------------
    def store_contacts(
        self, contacts: Sequence[dict[str, str | None]], *, source: str
    ) -> ContactCounts:
        """Store the team's contacts (dicts of the contract's columns, ``contacted_at`` as
        YYYY-MM-DD, ``group`` filled) in one transaction. A (customer_id, contacted_at,
        group) already stored is updated when its outcome or channel differ, else left as
        it is."""
        stored_at = today_iso()
        new: list[dict] = []
        changed: list[dict] = []
        unchanged = 0
        with self._writing() as conn:
            for start in range(0, len(contacts), CHUNK_ROWS):
                chunk = contacts[start : start + CHUNK_ROWS]
                found = _stored_contacts(conn, {c["customer_id"] for c in chunk})
                for contact in chunk:
                    key = tuple(contact[k] for k in CONTACT_KEY)
                    values = {k: contact.get(k) for k in CONTACT_VALUES}
                    row = {**dict(zip(CONTACT_KEY, key, strict=True)), **values}
                    row.update(stored_at=stored_at, source=source)
                    if key not in found:
                        new.append(row)
                    elif found[key] != values:
                        changed.append(row)
                    else:
                        unchanged += 1
                    found[key] = values  # a later copy in the same call compares with this
            if new:
                conn.execute(retention_contacts.insert(), new)
            if changed:
                c = retention_contacts.c
                conn.execute(
                    retention_contacts.update()
                    .where(
                        c.customer_id == sa.bindparam("k_customer_id"),
                        c.contacted_at == sa.bindparam("k_contacted_at"),
                        c.group == sa.bindparam("k_group"),
                    )
                    .values(
                        outcome=sa.bindparam("outcome"),
                        channel=sa.bindparam("channel"),
                        stored_at=sa.bindparam("stored_at"),
                        source=sa.bindparam("source"),
                    ),
                    [{**r, **{f"k_{k}": r[k] for k in CONTACT_KEY}} for r in changed],
                )
        return ContactCounts(new=len(new), updated=len(changed), unchanged=unchanged)

    def contacts(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        customers: Sequence[str] | None = None,
    ) -> list[dict]:
        """The stored contacts with ``since <= contacted_at <= until`` (either may be None),
        of ``customers`` (None: everyone), by day then customer."""
        c = retention_contacts.c
        query = sa.select(retention_contacts).order_by(c.contacted_at, c.customer_id, c.group)
        if since is not None:
            query = query.where(c.contacted_at >= since)
        if until is not None:
            query = query.where(c.contacted_at <= until)
        ids = None if customers is None else sorted(set(customers))
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(retention_contacts.name):
                return []  # an older store opened by a reader that could not upgrade it
            if ids is None:
                return [dict(r) for r in conn.execute(query).mappings()]
            found = []
            for start in range(0, len(ids), 5000):  # within every database's parameter limit
                part = query.where(c.customer_id.in_(ids[start : start + 5000]))
                found += [dict(r) for r in conn.execute(part).mappings()]
            return sorted(found, key=lambda r: (r["contacted_at"], r["customer_id"], r["group"]))

    def outcome_rows(self, list_id: int) -> list[dict]:
        """What the report reads of every row of a list: customer, rank, probability, band,
        on the list, monthly revenue (and ``group`` where the rows have one)."""
        names = ["customer_id", "rank", "churn_probability", "risk_band", "on_list"]
        names += [n for n in ("monthly_revenue", "group") if n in risk_list_rows.c]
        query = sa.select(*[risk_list_rows.c[n] for n in names]).where(
            risk_list_rows.c.list_id == list_id
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def headers(self) -> list[dict]:
        """Every list not withdrawn, oldest first."""
        query = (
            sa.select(risk_lists)
            .where(risk_lists.c.withdrawn_at.is_(None))
            .order_by(risk_lists.c.list_date)
        )
        with self.engine.connect() as conn:
            return [_header(r) for r in conn.execute(query).mappings()]

    # -- plumbing ----------------------------------------------------------------------------
    def _create(self) -> None:
        try:
            with self._writing(lock=False) as conn:
                metadata.create_all(conn)
                found = _version(conn)
                if found is None:
                    conn.execute(
                        store_meta.insert().values(key="schema_version", value=SCHEMA_VERSION)
                    )
            self._upgrade(found)
        except sa.exc.SQLAlchemyError as error:
            raise ConfigError(
                f"risk-list store {safe_url(self.url)}: {_first_line(error)}"
            ) from None

    def upgrade(self) -> None:
        """Bring a store of an older schema up to this one, in place (a reader's open: the
        tables are not created). A database error is left to the reader to report."""
        with self.engine.connect() as conn:
            found = _version(conn)
        self._upgrade(found)

    def _upgrade(self, found: str | None) -> None:
        if found in (None, SCHEMA_VERSION):
            return
        if found not in UPGRADES:
            raise DataError(
                f"risk-list store {safe_url(self.url)} has schema v{found}, this churnml writes "
                f"v{SCHEMA_VERSION}; point CHURNML_RISK_STORE at a new database"
            )
        with self._writing() as conn:  # one upgrader at a time; the second finds it done
            found = _version(conn)
            steps = [v for v in UPGRADES if found is not None and int(v) >= int(found)]
            present = {
                table.name: {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
                for table in (risk_lists, risk_list_runs, risk_list_rows)
            }
            for version in sorted(steps, key=int):
                for table in UPGRADE_TABLES.get(version, ()):
                    table.create(conn, checkfirst=True)
                for table, name in UPGRADES[version]:
                    if name in present[table.name]:
                        continue
                    column = sa.schema.CreateColumn(table.c[name]).compile(dialect=conn.dialect)
                    quoted = conn.dialect.identifier_preparer.format_table(table)
                    conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {column}")
            if steps:
                conn.execute(
                    store_meta.update()
                    .where(store_meta.c.key == "schema_version")
                    .values(value=SCHEMA_VERSION)
                )

    @contextmanager
    def _writing(self, *, lock: bool = True) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["immediate"] = True
            with conn.begin():
                if lock and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("LOCK TABLE risk_lists IN EXCLUSIVE MODE")
                yield conn


@dataclass(frozen=True)
class Withdrawal:
    """What ``RiskListStore.withdraw`` did: the day, when it was withdrawn, whether it
    already was, and the day of the list current now (None when no list is left)."""

    list_date: str
    withdrawn_at: str
    already: bool
    current: str | None

    def summary(self) -> str:
        now = (
            f"the current list is now {self.current}'s"
            if self.current
            else "no list is current now"
        )
        if self.already:
            return (
                f"the risk list of {self.list_date} was already withdrawn on "
                f"{self.withdrawn_at}; nothing changed ({now})"
            )
        return f"withdrew the risk list of {self.list_date}; {now}"


@dataclass(frozen=True)
class ContactCounts:
    """What ``RiskListStore.store_contacts`` did."""

    new: int
    updated: int
    unchanged: int

    @property
    def stored(self) -> int:
        """Rows written: new and updated."""
        return self.new + self.updated

    def summary(self) -> str:
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"


def _stored_contacts(conn: Connection, customer_ids: set[str]) -> dict[tuple, dict]:
    """{(customer_id, contacted_at, group): {outcome, channel}} of these customers."""
    c = retention_contacts.c
    found: dict[tuple, dict] = {}
    ids = sorted(customer_ids)
    for start in range(0, len(ids), 5000):  # within every database's parameter limit
        query = sa.select(*[c[k] for k in CONTACT_KEY + CONTACT_VALUES]).where(
            c.customer_id.in_(ids[start : start + 5000])
        )
        for r in conn.execute(query).mappings():
            found[tuple(r[k] for k in CONTACT_KEY)] = {k: r[k] for k in CONTACT_VALUES}
    return found


def _dates_query() -> sa.Select:
    return (
        sa.select(risk_lists.c.list_date)
        .where(risk_lists.c.withdrawn_at.is_(None))
        .order_by(risk_lists.c.list_date.desc())
    )


def _lists_exist(dates: Sequence[str]) -> str:
    """The days with a list, in words (the newest five)."""
    if not dates:
        return "no list is stored"
    shown = ", ".join(dates[:5]) + (" ..." if len(dates) > 5 else "")
    return f"lists exist for {shown} (newest first)"


def _version(conn: Connection) -> str | None:
    return conn.execute(
        sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")
    ).scalar()


def _engine(url: str, *, create: bool) -> Engine:
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as error:
        raise ConfigError(
            f"risk-list store {safe_url(url)!r}: {_first_line(error)}; expected an SQLAlchemy URL "
            "such as sqlite:////path/risk-lists.db or postgresql+psycopg://user@host/db"
        ) from None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            path = Path(database)
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise DataError(f"no risk-list store at {path}: run `churnml risk-list` first")

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy emits BEGIN itself (below); WAL lets readers read while one writes.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA cache_size = -131072")  # 128 MiB: a list's index fits
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(
                "BEGIN IMMEDIATE" if conn.info.pop("immediate", False) else "BEGIN"
            )

    return engine


def _insert(conn: Connection, table: sa.Table) -> Any:
    """A bulk insert of tuples in the table's column order. Straight to the driver's
    executemany where its placeholders are known (SQLite, psycopg): SQLAlchemy's own
    per-row parameter handling cost ~15 us a row, 15 s for a list of 10^6 customers."""
    style = conn.dialect.paramstyle
    if style in ("qmark", "format", "pyformat"):
        mark = "?" if style == "qmark" else "%s"
        names = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in table.columns)
        sql = (
            f"INSERT INTO {conn.dialect.identifier_preparer.format_table(table)} ({names}) "
            f"VALUES ({', '.join(mark for _ in table.columns)})"
        )
        return lambda rows: conn.exec_driver_sql(sql, rows) if rows else None
    keys = [c.name for c in table.columns]
    return lambda rows: conn.execute(
        table.insert(), [dict(zip(keys, r, strict=True)) for r in rows]
    )


REASON_KEYS = ("code", "family", "feature", "text", "value", "usual", "contribution", "kind")


_JSON = json.JSONEncoder(
    separators=(",", ":")
)  # one encoder: json.dumps(**options) builds one a call


def encode_reasons(reasons: Sequence[dict]) -> str:
    """Reasons as compact JSON: one array per reason, in the order of REASON_KEYS."""
    return _JSON.encode([[r[k] for k in REASON_KEYS] for r in reasons])


def encode_curve(curve: dict[str, float] | None) -> str | None:
    """A row's horizons ``{"<H>": p}`` as compact JSON (None: a model without them)."""
    return None if curve is None else _JSON.encode(curve)


def decode_reasons(text: str) -> list[dict]:
    """The stored reasons; those of lists stored before reasons had a ``kind`` get it from
    their family."""
    reasons = []
    for r in json.loads(text):
        keys = REASON_KEYS if len(r) == len(REASON_KEYS) else REASON_KEYS[:-1]
        reason = dict(zip(keys, r, strict=True))
        reason.setdefault("kind", family_kind(reason["family"]))
        reasons.append(reason)
    return reasons


def _header(found: Any) -> dict:
    """A stored header with its JSON columns read (None where a list stored before the
    column has none)."""
    return {
        k: (json.loads(v) if k in JSON_COLUMNS and v is not None else v) for k, v in found.items()
    }


def _row(found: Any) -> dict:
    row = dict(found)
    row["reasons"] = decode_reasons(row["reasons"])
    if "horizons" in row:
        row["horizons"] = None if row["horizons"] is None else json.loads(row["horizons"])
    row["on_list"] = bool(row["on_list"])
    row["suppressed"] = bool(row["suppressed"])
    return row


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def safe_url(url: str) -> str:
    """The URL without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def today_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
