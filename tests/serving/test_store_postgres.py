"""The risk-list store on a real PostgreSQL server (Debian's, started for this module on
127.0.0.1 in a throwaway folder): write, replace, read through the service's reader, and
two writers at once."""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from churnml.validation import load_tables
from serving.export import csv_text
from serving.lists import Filters, Lists
from serving.report import build_report
from serving.risklist import export_frame, make_risk_list
from serving.settings import RiskListSettings
from serving.store import RiskListStore
from tests.integration.servers import free_port
from tests.serving.helpers import SAMPLE
from tests.serving.report_helpers import make_list
from tests.serving.test_freshness import as_version, as_version_1

pytestmark = pytest.mark.slow
DAY1, DAY2 = dt.date(2026, 6, 10), dt.date(2026, 6, 17)


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    assert found, (
        f"PostgreSQL's {name} is missing: run scripts/install-test-tools.sh (test.sh does) "
        "to install Debian's postgresql"
    )
    return found


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="churnml-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres(
            [_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [
                _binary("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "server.log"),
                "-w",
                "-o",
                f"-p {port} -h 127.0.0.1 -k {folder}",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


def test_lists_on_postgresql(postgres_url, served, tables, tmp_path) -> None:
    store = RiskListStore(postgres_url)
    settings = RiskListSettings(capacity=40)
    first = make_risk_list(tables.customers, tables.interactions, DAY1, served, store, settings)
    second = make_risk_list(tables.customers, tables.interactions, DAY2, served, store, settings)
    assert store.dates() == [f"{DAY2}", f"{DAY1}"]
    assert second.header["previous_date"] == f"{DAY1}"
    assert {d["customer_id"] for d in store.departures(second.list_id)} == set(
        second.departures["customer_id"]
    )

    # Re-running a day replaces it; the run history keeps both.
    again = make_risk_list(
        tables.customers, tables.interactions, DAY1, served, store, RiskListSettings(capacity=5)
    )
    assert store.header(f"{DAY1}")["on_list"] == 5
    total, _ = store.rows(again.list_id, on_list=None)
    assert total == len(first.frame)
    assert [r["replaced_list"] for r in store.runs(f"{DAY1}")] == [True, False]

    # The service's reader: pages, filters, scores by id.
    lists = Lists(tmp_path, postgres_url)
    page = lists.page(Filters(band="high", scope="all"), 10)
    assert page["date"] == f"{DAY2}" and {r["risk_band"] for r in page["rows"]} == {"high"}
    top = second.frame["customer_id"].iloc[0]
    answer = lists.scores([top, "nobody"])
    assert answer["not_found"] == ["nobody"]
    assert answer["scores"][0]["churn_probability"] == pytest.approx(
        second.frame["churn_probability"].iloc[0]
    )

    # A customer's detail: the contacts kept with the list, the probability over the lists.
    detail = lists.customer(top, None)
    assert detail["evidence_kept"] and detail["contacts"]
    assert [h["list_date"] for h in detail["history"]] == [f"{DAY2}", f"{DAY1}"]
    with store.engine.connect() as conn:  # the replaced list's evidence went with it
        orphans = conn.exec_driver_sql(
            "SELECT count(*) FROM risk_list_evidence e WHERE NOT EXISTS "
            "(SELECT 1 FROM risk_lists l WHERE l.list_id = e.list_id)"
        ).scalar()
    assert orphans == 0
    # The export of the list, as --out writes it and /risk-list.csv answers it.
    _, text = lists.csv(Filters(scope="all"), None, "EUR")
    exported = csv_text(export_frame(second, currency="EUR")).splitlines()
    served = text.splitlines()
    assert served[0] == exported[0] and len(served) == len(exported)
    assert [r.split(",")[1] for r in served] == [r.split(",")[1] for r in exported]


def test_two_writers_at_once_on_postgresql(postgres_url, served, tables) -> None:
    day = dt.date(2026, 6, 3)
    errors: list[BaseException] = []

    def write(capacity: int) -> None:
        try:
            make_risk_list(
                tables.customers,
                tables.interactions,
                day,
                served,
                RiskListStore(postgres_url),
                RiskListSettings(capacity=capacity),
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(c,)) for c in (11, 12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    store = RiskListStore(postgres_url)
    header = store.header(f"{day}")
    assert header["on_list"] in (11, 12)
    total, _ = store.rows(header["list_id"], on_list=None)
    assert total == header["scored"]
    assert len(store.runs(f"{day}")) == 2


def test_withdrawal_and_freshness_on_postgresql(postgres_url, served, tables, tmp_path) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/withdraw"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE withdraw")
    admin.dispose()
    store = RiskListStore(url)
    settings = RiskListSettings(capacity=10)
    make_risk_list(tables.customers, tables.interactions, DAY1, served, store, settings)
    # A store of schema v1 (as churnml wrote it before): upgraded when the reader opens it.
    as_version_1(store)
    lists = Lists(tmp_path, url)
    assert lists.page(Filters(), 5)["data_through"] is None
    store = RiskListStore(url)
    second = make_risk_list(tables.customers, tables.interactions, DAY2, served, store, settings)
    assert store.header()["data_through"] == f"{DAY2}"
    assert lists.page(Filters(), 5)["date"] == f"{DAY2}"

    done = store.withdraw(f"{DAY2}", by="lead", reason="wrong exports")
    assert done.current == f"{DAY1}" and store.dates() == [f"{DAY1}"]
    assert lists.page(Filters(), 5)["date"] == f"{DAY1}"
    top = second.frame["customer_id"].iloc[0]
    assert lists.scores([top])["list_date"] == f"{DAY1}"
    assert [r["action"] for r in store.runs(f"{DAY2}")] == ["withdrawn", "stored"]
    assert store.withdraw(f"{DAY2}", by="lead").already
    assert len(store.runs(f"{DAY2}")) == 2


def test_retention_contacts_and_the_report_on_postgresql(postgres_url) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/contacts"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE contacts")
    admin.dispose()
    store = RiskListStore(url)
    make_list(store, "2026-01-01", picks=[("C1", 0.5, "high"), ("C2", 0.5, "high")], others=[])
    as_version(store, "3")  # a store of v3: its contacts table is created in place
    store = RiskListStore(url, create=False)
    contacts = [
        {
            "customer_id": "C1",
            "contacted_at": "2026-01-02",
            "group": "treated",
            "outcome": "reached",
        },
        {"customer_id": "C2", "contacted_at": "2026-01-01", "group": "control"},
    ]
    assert (
        store.store_contacts(contacts, source="a.csv").summary() == "2 new, 0 updated, 0 unchanged"
    )
    contacts[0] = {**contacts[0], "outcome": "declined"}
    assert store.store_contacts(contacts, source="api").summary() == "0 new, 1 updated, 1 unchanged"
    assert [(r["customer_id"], r["outcome"], r["source"]) for r in store.contacts()] == [
        ("C2", None, "a.csv"),
        ("C1", "declined", "api"),
    ]
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "signup_date": pd.Timestamp("2025-01-01"),
            "churned_at": pd.to_datetime([None, "2026-01-20"]),
        }
    )
    (entry,) = build_report(store, customers, as_of=dt.date(2026, 3, 1))["lists"]
    assert (entry["treated"], entry["control"]) == (1, 1)
    assert entry["realised"]["difference"]["value"] == pytest.approx(1.0)
