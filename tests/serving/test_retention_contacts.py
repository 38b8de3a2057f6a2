"""The retention team's contacts into the list store: ``churnml retention-contacts --import``
(checked by the contract's rules, one transaction, idempotent) and the store's v3 -> v4
upgrade that adds their table."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from churnml.cli import main
from serving.store import SCHEMA_VERSION, RiskListStore
from tests.serving.report_helpers import make_list
from tests.serving.test_freshness import as_version

CUSTOMERS = """customer_id,signup_date,churned_at,segment,plan,monthly_revenue
C1,2025-01-01,,consumer,basic,10
C2,2025-01-05,2025-03-01,business,pro,99
C3,2025-02-01,,consumer,basic,0
"""
HEADER = "customer_id,contacted_at,group,outcome,channel\n"
GOOD = HEADER + (
    "C1,2025-02-10,treated,reached,phone\n"
    "C3,2025-02-10,control,,\n"
    "C2,2025-02-11,,declined,email\n"  # an empty group is treated
)


def call(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("CHURNML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CHURNML_RISK_STORE", raising=False)
    customers = tmp_path / "customers.csv"
    customers.write_text(CUSTOMERS)
    return {"customers": customers, "db": tmp_path / "lists.db", "dir": tmp_path}


def _import(capsys, files: dict[str, Path], text: str, name: str = "contacts.csv"):
    path = files["dir"] / name
    path.write_text(text)
    return call(
        capsys,
        "retention-contacts",
        "--import",
        str(path),
        "--customers",
        str(files["customers"]),
        "--store",
        f"sqlite:///{files['db']}",
    )


def _stored(files: dict[str, Path]) -> list[dict]:
    store = RiskListStore(f"sqlite:///{files['db']}", create=False)
    try:
        return store.contacts()
    finally:
        store.engine.dispose()


def test_an_import_stores_every_row_with_where_it_came_from(capsys, files) -> None:
    code, out, err = _import(capsys, files, GOOD)
    assert code == 0, err
    assert "3 rows: 3 new, 0 updated, 0 unchanged" in out
    stored = {(r["customer_id"], r["contacted_at"]): r for r in _stored(files)}
    assert set(stored) == {("C1", "2025-02-10"), ("C3", "2025-02-10"), ("C2", "2025-02-11")}
    assert stored[("C2", "2025-02-11")]["group"] == "treated"
    assert stored[("C3", "2025-02-10")]["outcome"] is None
    assert {r["source"] for r in stored.values()} == {"contacts.csv"}
    assert all(r["stored_at"].startswith("20") for r in stored.values())


def test_the_same_import_twice_is_one_row_each_and_a_new_outcome_updates(capsys, files) -> None:
    assert _import(capsys, files, GOOD)[0] == 0
    code, out, _ = _import(capsys, files, GOOD)
    assert code == 0 and "0 new, 0 updated, 3 unchanged" in out
    changed = GOOD.replace(
        "C1,2025-02-10,treated,reached,phone", "C1,2025-02-10,treated,accepted_offer,chat"
    )
    code, out, _ = _import(capsys, files, changed, name="later.csv")
    assert code == 0 and "0 new, 1 updated, 2 unchanged" in out
    stored = _stored(files)
    assert len(stored) == 3
    (c1,) = [r for r in stored if r["customer_id"] == "C1"]
    assert (c1["outcome"], c1["channel"], c1["source"]) == ("accepted_offer", "chat", "later.csv")
    # the same customer and day in the other group is another row
    code, out, _ = _import(capsys, files, HEADER + "C1,2025-03-20,control,,\n")
    assert code == 0 and "1 new" in out and len(_stored(files)) == 4


@pytest.mark.parametrize(
    ("row", "named"),
    [
        ("C9,2025-02-10,treated,,", "customer_id not in customers.csv"),
        ("C1,2025-02-30,treated,,", "contacted_at that is not a date"),
        ("C1,2025-02-12,maybe,,", "an unknown group"),
        ("C1,2025-02-12,treated,happy,", "an unknown outcome"),
        ("C1,2025-02-12,treated,,fax", "an unknown channel"),
        ("C1,2024-12-01,treated,,", "before its customer's signup_date"),
        ("C2,2025-03-05,treated,,", "after its customer's churned_at day"),
        (",2025-02-10,treated,,", "an empty customer_id"),
        ("C3,2025-02-15,treated,,", "a control row for a customer the team contacted"),
        ("C1,2025-02-10,treated,declined,", "a repeated (customer_id, contacted_at, group)"),
    ],
)
def test_a_broken_rule_is_one_line_naming_file_row_and_field_and_nothing_is_stored(
    capsys, files, row: str, named: str
) -> None:
    code, out, err = _import(capsys, files, GOOD + row + "\n")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # the broken rule, then what happened
    assert lines[0].startswith("churnml: error: contacts.csv: 1 row has ")
    assert named in lines[0] and "row " in lines[0] and "expected" in lines[0]
    assert "nothing stored" in lines[1]
    assert "Traceback" not in err and out == ""
    assert not files["db"].exists()  # not even the store was created


def test_a_bad_row_keeps_the_good_rows_of_the_same_file_out_too(capsys, files) -> None:
    assert _import(capsys, files, HEADER + "C1,2025-01-20,treated,,\n")[0] == 0
    code, _, err = _import(capsys, files, GOOD + "C1,2025-02-12,treated,,fax\n")
    assert code == 1 and "unknown channel" in err
    assert [r["contacted_at"] for r in _stored(files)] == ["2025-01-20"]


def test_a_table_without_a_required_column_is_refused(capsys, files) -> None:
    code, _, err = _import(capsys, files, "customer_id,group\nC1,treated\n")
    assert code == 1
    assert "lacks the required column contacted_at" in err and "nothing stored" in err


def test_an_unreadable_file_exits_2_in_one_line(capsys, files) -> None:
    code, _, err = call(capsys, "retention-contacts", "--import", str(files["dir"] / "missing.csv"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err


@pytest.mark.parametrize("create", [True, False], ids=["writer", "reader"])
def test_a_version_3_store_gains_the_contacts_table_in_place(tmp_path, create: bool) -> None:
    url = f"sqlite:///{tmp_path / 'lists.db'}"
    store = RiskListStore(url)
    list_id = make_list(store, "2026-01-01", picks=[("C1", 0.4, "high")], others=[])
    as_version(store, "3")
    with sa.create_engine(url).connect() as conn:
        assert not sa.inspect(conn).has_table("retention_contacts")
    opened = RiskListStore(url, create=create)
    with opened.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM store_meta").scalar()
        assert sa.inspect(conn).has_table("retention_contacts")
    assert version == SCHEMA_VERSION == "4"
    assert opened.header()["list_id"] == list_id  # the lists are kept
    counts = opened.store_contacts(
        [{"customer_id": "C1", "contacted_at": "2026-01-02", "group": "control"}], source="api"
    )
    assert (counts.new, counts.updated, counts.unchanged) == (1, 0, 0)
    assert opened.contacts()[0]["source"] == "api"


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (
            "C3,2025-02-10,control,,",
            "C3,2025-02-20,treated,reached,phone",
        ),  # a call after a control
        (
            "C1,2025-02-20,treated,reached,phone",
            "C1,2025-02-10,control,,",
        ),  # a control before a call
    ],
    ids=["treated-after-stored-control", "control-before-stored-treated"],
)
def test_a_control_promise_holds_across_imports(capsys, files, first: str, then: str) -> None:
    assert _import(capsys, files, HEADER + first + "\n")[0] == 0
    code, _, err = _import(capsys, files, HEADER + then + "\n", name="later.csv")
    assert code == 1
    assert "later.csv: 1 row has a contact that breaks a stored control row's 30-day promise" in err
    assert "row 1" in err and "nothing stored" in err
    assert len(_stored(files)) == 1
    # far enough apart, both stand; the same control row again is no conflict with itself
    code, out, err = _import(capsys, files, HEADER + first + "\n" + "C3,2025-04-01,treated,,\n")
    assert code == 0, err
    assert "1 new, 0 updated, 1 unchanged" in out
