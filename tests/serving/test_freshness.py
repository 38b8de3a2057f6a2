"""A list's data freshness and its withdrawal, on the sample world (data through 2026-06-24)
with a real SQLite store: a day past the data plus the grace is refused and nothing is
stored; the header keeps ``data_through``; ``--withdraw`` makes the list before current
again for every reader; a store of schema v1 is upgraded in place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from churnml.cli import main
from churnml.errors import DataError
from churnml.validation import load_tables
from serving.lists import Filters, Lists, NoList
from serving.risklist import check_fresh, make_risk_list
from serving.settings import RiskListSettings
from serving.store import SCHEMA_VERSION, UPGRADE_TABLES, UPGRADES, RiskListStore
from tests.serving.helpers import SAMPLE

LAST_CONTACT = dt.date(2026, 6, 24)  # the sample world's last contact day
DAY1, DAY2, DAY3 = dt.date(2026, 6, 10), dt.date(2026, 6, 17), dt.date(2026, 6, 20)
SETTINGS = RiskListSettings(capacity=20)


@pytest.fixture(scope="module")
def tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


def make(tables, served, store, day, settings=SETTINGS):
    return make_risk_list(tables.customers, tables.interactions, day, served, store, settings)


def snapshot(store: RiskListStore) -> tuple:
    """Everything a reader sees of the store, withdrawn lists and every run included."""
    return store.dates(), store.header(withdrawn=True), store.runs()


# -- freshness --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("as_of", "grace", "refused"),
    [
        (LAST_CONTACT, 2, False),
        (LAST_CONTACT + dt.timedelta(days=2), 2, False),
        (LAST_CONTACT + dt.timedelta(days=3), 2, True),
        (LAST_CONTACT + dt.timedelta(days=1), 0, True),
        (LAST_CONTACT - dt.timedelta(days=30), 0, False),
    ],
)
def test_a_day_is_refused_only_past_the_last_contact_day_plus_the_grace(
    as_of: dt.date, grace: int, refused: bool
) -> None:
    if not refused:
        check_fresh(as_of, LAST_CONTACT, grace)
        return
    with pytest.raises(DataError) as error:
        check_fresh(as_of, LAST_CONTACT, grace)
    assert f"{as_of}" in str(error.value) and f"{LAST_CONTACT}" in str(error.value)


def test_a_day_after_the_data_ends_is_refused_in_one_line_and_nothing_is_stored(
    tables, served, store
) -> None:
    make(tables, served, store, DAY1)
    before = snapshot(store)
    with pytest.raises(DataError) as error:
        make(tables, served, store, dt.date(2027, 1, 1))
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == 1
    assert message.startswith(
        "--as-of 2027-01-01 is 191 days after the data's last contact day 2026-06-24 (grace 2 days)"
    )
    assert "--grace-days" in message and "--as-of 2026-06-24" in message
    assert snapshot(store) == before
    assert store.header("2027-01-01", withdrawn=True) is None


def test_within_the_grace_the_list_is_made_and_keeps_its_data_freshness(
    tables, served, store
) -> None:
    late = LAST_CONTACT + dt.timedelta(days=2)
    result = make(tables, served, store, late)
    header = store.header(f"{late}")
    assert header["data_through"] == f"{LAST_CONTACT}" and header["freshness_grace_days"] == 2
    assert "data through 2026-06-24" in result.summary()
    # A day inside the data: the data covers the list's day itself.
    make(tables, served, store, DAY1)
    assert store.header(f"{DAY1}")["data_through"] == f"{DAY1}"


def test_the_list_api_says_how_fresh_the_data_is(tables, served, store, tmp_path) -> None:
    wide = RiskListSettings(capacity=20, freshness_grace_days=10)
    make(tables, served, store, LAST_CONTACT + dt.timedelta(days=6), wide)
    lists = Lists(tmp_path, store.url, grace_days=2)
    page = lists.page(Filters(), 5)
    assert (page["data_through"], page["data_lag_days"], page["data_stale"]) == (
        "2026-06-24",
        6,
        True,
    )
    assert Lists(tmp_path, store.url, grace_days=6).page(Filters(), 5)["data_stale"] is False
    make(tables, served, store, DAY2)
    older = lists.page(Filters(day=f"{DAY2}"), 5)
    assert (older["data_through"], older["data_lag_days"], older["data_stale"]) == (
        f"{DAY2}",
        0,
        False,
    )


# -- withdrawal -------------------------------------------------------------------------------
def test_withdrawing_the_latest_list_makes_the_previous_one_current(
    tables, served, store, tmp_path
) -> None:
    make(tables, served, store, DAY1)
    wrong = make(tables, served, store, DAY2)
    lists = Lists(tmp_path, store.url)
    top = wrong.frame["customer_id"].iloc[0]
    assert lists.page(Filters(), 5)["date"] == f"{DAY2}"

    done = store.withdraw(f"{DAY2}", by="lead", reason="the exports did not arrive")
    assert (done.already, done.current) == (False, f"{DAY1}")
    assert (
        done.summary()
        == "withdrew the risk list of 2026-06-17; the current list is now 2026-06-10's"
    )
    # Every reader: the latest list, the days, /score_ids, the day asked for by name.
    assert store.header()["list_date"] == f"{DAY1}" and store.dates() == [f"{DAY1}"]
    page = lists.page(Filters(), 5)
    assert page["date"] == f"{DAY1}" and page["dates"] == [f"{DAY1}"]
    assert lists.scores([top])["list_date"] == f"{DAY1}"
    with pytest.raises(NoList) as gone:
        lists.page(Filters(day=f"{DAY2}"), 5)
    assert "the risk list of 2026-06-17 was withdrawn on" in str(gone.value)
    assert "2026-06-10" in str(gone.value)
    # Recorded in the runs table: who, when, why; the list's rows are kept.
    withdrawal, stored = store.runs(f"{DAY2}")
    assert (withdrawal["action"], withdrawal["requested_by"], withdrawal["reason"]) == (
        "withdrawn",
        "lead",
        "the exports did not arrive",
    )
    assert withdrawal["created_at"] == done.withdrawn_at and stored["action"] == "stored"
    assert withdrawal["model_version"] == wrong.header["model_version"]
    kept = store.header(f"{DAY2}", withdrawn=True)
    assert kept["withdrawn_at"] == done.withdrawn_at
    assert store.rows(kept["list_id"], on_list=None)[0] == len(wrong.frame)
    # The next list compares with the list before the withdrawn one.
    assert make(tables, served, store, DAY3).header["previous_date"] == f"{DAY1}"


def test_withdrawing_twice_changes_nothing_the_second_time(tables, served, store) -> None:
    make(tables, served, store, DAY1)
    first = store.withdraw(f"{DAY1}", by="lead")
    before = snapshot(store)
    again = store.withdraw(f"{DAY1}", by="someone else")
    assert again.already and again.withdrawn_at == first.withdrawn_at
    assert again.current is None
    assert again.summary().startswith(
        f"the risk list of 2026-06-10 was already withdrawn on {first.withdrawn_at}; "
        "nothing changed"
    )
    assert snapshot(store) == before


def test_withdrawing_a_day_without_a_list_is_one_line_naming_the_lists(
    tables, served, store
) -> None:
    make(tables, served, store, DAY1)
    before = snapshot(store)
    with pytest.raises(DataError) as error:
        store.withdraw("2026-06-11", by="lead")
    assert str(error.value) == (
        "no risk list for 2026-06-11 to withdraw; lists exist for 2026-06-10 (newest first)"
    )
    assert snapshot(store) == before


def test_re_making_a_withdrawn_day_serves_it_again(tables, served, store) -> None:
    make(tables, served, store, DAY1)
    make(tables, served, store, DAY2)
    store.withdraw(f"{DAY2}", by="lead")
    make(tables, served, store, DAY2)
    assert store.dates() == [f"{DAY2}", f"{DAY1}"]
    assert [r["action"] for r in store.runs(f"{DAY2}")] == ["stored", "withdrawn", "stored"]
    assert store.runs(f"{DAY2}")[0]["replaced_list"] is True


# -- a store of an older schema -----------------------------------------------------------------
def as_version(store: RiskListStore, version: str) -> None:
    """The store as churnml wrote it at schema ``version``: without the later columns."""
    with store.engine.begin() as conn:
        for step in UPGRADES:
            if int(step) >= int(version):
                for table, column in UPGRADES[step]:
                    conn.exec_driver_sql(f'ALTER TABLE {table.name} DROP COLUMN "{column}"')
                for table in UPGRADE_TABLES.get(step, ()):  # nor the tables of later versions
                    conn.exec_driver_sql(f"DROP TABLE {table.name}")
        conn.exec_driver_sql(
            f"UPDATE store_meta SET value = '{version}' WHERE key = 'schema_version'"
        )
    store.engine.dispose()


def as_version_1(store: RiskListStore) -> None:
    as_version(store, "1")


@pytest.mark.parametrize("create", [True, False], ids=["writer", "reader"])
def test_a_version_1_store_is_upgraded_in_place_when_opened(
    tables, served, store, tmp_path, create: bool
) -> None:
    old = make(tables, served, store, DAY1)
    as_version_1(store)
    opened = RiskListStore(store.url, create=create)
    with opened.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM store_meta").scalar()
    assert version == SCHEMA_VERSION
    header = opened.header()
    assert header["list_id"] == old.list_id and header["data_through"] is None
    assert [r["action"] for r in opened.runs()] == ["stored"]
    page = Lists(tmp_path, store.url).page(Filters(), 5)
    assert page["date"] == f"{DAY1}" and page["data_through"] is None
    assert page["data_stale"] is False
    make(tables, served, opened, DAY2)
    opened.withdraw(f"{DAY2}", by="lead")
    assert opened.dates() == [f"{DAY1}"]


@pytest.mark.parametrize("create", [True, False], ids=["writer", "reader"])
def test_a_version_2_store_is_upgraded_in_place_and_then_stores_the_lacking_counts(
    tables, served, store, tmp_path, create: bool
) -> None:
    old = make(tables, served, store, DAY1)
    as_version(store, "2")
    opened = RiskListStore(store.url, create=create)
    with opened.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM store_meta").scalar()
    assert version == SCHEMA_VERSION
    header = opened.header()
    assert header["list_id"] == old.list_id and header["lacking_fields"] is None
    assert header["data_through"] == f"{DAY1}"  # v2's columns are kept
    assert Lists(tmp_path, store.url).page(Filters(), 5)["lacking_fields"] == {}
    made = make(tables, served, opened, DAY2)
    assert opened.header()["lacking_fields"] == made.header["lacking_fields"]


def test_a_store_of_a_newer_schema_is_refused_in_one_line(store) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(DataError) as error:
        RiskListStore(store.url)
    assert f"has schema v99, this churnml writes v{SCHEMA_VERSION}" in str(error.value)


# -- the command --------------------------------------------------------------------------------
@pytest.fixture()
def command_env(registry_home: Path, tmp_path: Path, monkeypatch) -> str:
    """churnml's environment for the commands: the shared registry, this test's store."""
    url = f"sqlite:///{tmp_path / 'command.db'}"
    for name in ("MLFLOW_TRACKING_URI", "CHURNML_CUSTOMERS", "CHURNML_INTERACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURNML_HOME", str(registry_home))
    monkeypatch.setenv("CHURNML_RISK_STORE", url)
    monkeypatch.setenv("CHURNML_CUSTOMERS", str(SAMPLE / "customers.csv"))
    monkeypatch.setenv("CHURNML_INTERACTIONS", str(SAMPLE / "interactions.csv"))
    return url


def call(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_the_command_refuses_a_stale_day_and_withdraws_a_list(capsys, command_env) -> None:
    code, out, err = call(capsys, "risk-list", "--as-of", "2026-06-26", "--quiet")
    assert code == 0, err
    assert "data through 2026-06-24" in out
    store = RiskListStore(command_env, create=False)
    before = snapshot(store)

    code, out, err = call(capsys, "risk-list", "--as-of", "2026-06-27", "--quiet")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("churnml: error: --as-of 2026-06-27 is 3 days after the data's last ")
    assert "2026-06-24" in err
    assert snapshot(store) == before
    code, _, err = call(capsys, "risk-list", "--as-of", "2026-06-27", "--grace-days", "3", "-q")
    assert code == 0, err
    assert store.dates() == ["2026-06-27", "2026-06-26"]

    code, out, err = call(capsys, "risk-list", "--withdraw", "2026-06-27", "--reason", "typo")
    assert code == 0, err
    assert out == "withdrew the risk list of 2026-06-27; the current list is now 2026-06-26's\n"
    assert store.runs("2026-06-27")[0]["reason"] == "typo"
    code, out, _ = call(capsys, "risk-list", "--withdraw", "2026-06-27")
    assert code == 0 and "already withdrawn" in out
    assert store.dates() == ["2026-06-26"]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (
            ["--withdraw", "2026-06-01"],
            1,
            "churnml: error: no risk list for 2026-06-01 to withdraw; no list is stored\n",
        ),
        (["--withdraw", "June"], 2, "churnml: error: --withdraw 'June': expected a date"),
        (
            ["--withdraw", "2026-06-01", "--as-of", "2026-06-01"],
            2,
            "churnml: error: --withdraw makes no list: drop --as-of",
        ),
        (["--reason", "typo"], 2, "churnml: error: --reason goes with --withdraw DATE"),
    ],
)
def test_a_withdrawal_that_cannot_be_done_is_one_line(
    capsys, command_env, args: list[str], code: int, expected: str
) -> None:
    RiskListStore(command_env)  # an empty store
    found, out, err = call(capsys, "risk-list", *args)
    assert (found, out) == (code, "") and err.startswith(expected) and err.count("\n") == 1


def test_withdrawing_without_a_store_is_one_line(capsys, command_env, tmp_path) -> None:
    code, _, err = call(
        capsys, "risk-list", "--withdraw", "2026-06-01", "--store", f"sqlite:///{tmp_path}/no.db"
    )
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("churnml: error: no risk-list store at ") and "churnml risk-list" in err
