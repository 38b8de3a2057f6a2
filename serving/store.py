"""The risk-list store: every day's list, its rows and its history, in a SQL database.

By default a SQLite file under ``CHURNML_HOME`` (``risk-lists.db``); any SQLAlchemy URL by
``CHURNML_RISK_STORE`` or ``--store`` (for PostgreSQL: ``postgresql+psycopg://...``).

Tables (created on first use; ``store_meta`` holds the schema version):

* ``risk_lists``: one row per list date: model name, version and URI, the inputs'
  fingerprint, capacity, ranking, band thresholds and shares, drift results;
* ``risk_list_rows``: every customer scored that day, with rank, probability, band,
  revenue at risk, reasons, action, change since the previous list, suppression;
* ``risk_list_departures``: customers on the previous list who are not on this one, and why;
* ``risk_list_runs``: every run ever stored, never deleted: which model version scored
  which day's list, including lists later replaced by a re-run.

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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from churnml.errors import ConfigError, DataError
from features.columns import family_kind

SCHEMA_VERSION = "1"
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
    sa.Column("revenue_at_risk", sa.Float),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of {code, text}
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("on_list", sa.Boolean, nullable=False),
    sa.Column("change", sa.String(16)),
    sa.Column("previous_rank", sa.Integer),
    sa.Column("previous_probability", sa.Float),
    sa.Column("suppressed", sa.Boolean, nullable=False),
    sa.Column("last_contacted", sa.String(10)),
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
)

ROW_COLUMNS = [c.name for c in risk_list_rows.columns if c.name != "list_id"]
DEPARTURE_COLUMNS = [c.name for c in risk_list_departures.columns if c.name != "list_id"]
JSON_COLUMNS = {"fingerprint", "bands", "drift"}


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
        if create:
            self._create()

    # -- writing ---------------------------------------------------------------------------
    def replace_list(
        self,
        header: dict[str, Any],
        rows: Sequence[tuple],
        departures: Sequence[tuple],
        *,
        after_chunk: Any = None,
    ) -> int:
        """Store the list of ``header['list_date']`` in one transaction, replacing that
        day's list if there is one; returns its list_id. ``rows`` and ``departures`` are
        tuples in the order of ``ROW_COLUMNS`` / ``DEPARTURE_COLUMNS``. ``after_chunk``
        (tests) is called after each chunk of rows is written, inside the transaction."""
        day = header["list_date"]
        with self._writing() as conn:
            old = conn.execute(
                sa.select(risk_lists.c.list_id).where(risk_lists.c.list_date == day)
            ).scalar()
            if old is not None:
                for table in (risk_list_rows, risk_list_departures):
                    conn.execute(table.delete().where(table.c.list_id == old))
                conn.execute(risk_lists.delete().where(risk_lists.c.list_id == old))
            values = {k: (json.dumps(v) if k in JSON_COLUMNS else v) for k, v in header.items()}
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
                )
            )
        return int(list_id)

    # -- reading ---------------------------------------------------------------------------
    def dates(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(risk_lists.c.list_date).order_by(risk_lists.c.list_date.desc())
                ).scalars()
            )

    def header(self, day: str | None = None, *, before: str | None = None) -> dict | None:
        """The list of ``day``; the latest one when ``day`` is None; with ``before``, the
        latest one before that day. None when there is none."""
        query = sa.select(risk_lists)
        if day is not None:
            query = query.where(risk_lists.c.list_date == day)
        if before is not None:
            query = query.where(risk_lists.c.list_date < before)
        query = query.order_by(risk_lists.c.list_date.desc()).limit(1)
        with self.engine.connect() as conn:
            found = conn.execute(query).mappings().first()
        if found is None:
            return None
        return {k: (json.loads(v) if k in JSON_COLUMNS else v) for k, v in found.items()}

    def recent_headers(self, before: str, count: int) -> list[dict]:
        query = (
            sa.select(risk_lists)
            .where(risk_lists.c.list_date < before)
            .order_by(risk_lists.c.list_date.desc())
            .limit(count)
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).mappings().all()
        return [
            {k: (json.loads(v) if k in JSON_COLUMNS else v) for k, v in r.items()} for r in found
        ]

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
        """Every stored run (newest first): which model version scored which day."""
        query = sa.select(risk_list_runs).order_by(risk_list_runs.c.run_id.desc())
        if day is not None:
            query = query.where(risk_list_runs.c.list_date == day)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- plumbing ----------------------------------------------------------------------------
    def _create(self) -> None:
        try:
            with self._writing(lock=False) as conn:
                metadata.create_all(conn)
                found = conn.execute(
                    sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")
                ).scalar()
                if found is None:
                    conn.execute(
                        store_meta.insert().values(key="schema_version", value=SCHEMA_VERSION)
                    )
        except sa.exc.SQLAlchemyError as error:
            raise ConfigError(
                f"risk-list store {safe_url(self.url)}: {_first_line(error)}"
            ) from None
        if found not in (None, SCHEMA_VERSION):
            raise DataError(
                f"risk-list store {safe_url(self.url)} has schema v{found}, this churnml writes "
                f"v{SCHEMA_VERSION}; point CHURNML_RISK_STORE at a new database"
            )

    @contextmanager
    def _writing(self, *, lock: bool = True) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["immediate"] = True
            with conn.begin():
                if lock and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("LOCK TABLE risk_lists IN EXCLUSIVE MODE")
                yield conn


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


def _row(found: Any) -> dict:
    row = dict(found)
    row["reasons"] = decode_reasons(row["reasons"])
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
