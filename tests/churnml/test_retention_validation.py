"""The retention_contacts table: its rules, their report and their policy."""

from __future__ import annotations

import pandas as pd
import pytest

from churnml.errors import ContractError
from churnml.validation import broken_control_promises, load_tables, read_and_check
from tests.churnml.test_validation import _write

# C2 left on 2025-03-01; C3 signed up on 2025-02-01
CONTACTS = """customer_id,contacted_at,group,outcome,channel
C1,2025-02-10,treated,reached,phone
C2,2025-02-10,control,,
C3,2025-02-10,,not_reached,email
C1,2025-03-20,control,,
"""
HEADER = CONTACTS.splitlines()[0]


def _contacts(tmp_path, rows: list[str] | None = None, text: str = CONTACTS):
    path = tmp_path / "retention_contacts.csv"
    path.write_text(text if rows is None else "\n".join([HEADER, *rows]) + "\n")
    return path


def test_a_clean_table_breaks_no_rule_and_an_empty_group_is_treated(tmp_path):
    result = read_and_check(*_write(tmp_path), _contacts(tmp_path))
    assert result.ok, [b.message() for b in result.breaches]
    contacts = result.retention_contacts
    assert contacts["group"].tolist() == ["treated", "control", "treated", "control"]
    assert contacts["contacted_at"].dtype == "datetime64[ns]"


def test_without_the_table_nothing_changes(tmp_path):
    result = read_and_check(*_write(tmp_path))
    assert result.ok and result.retention_contacts is None
    assert load_tables(*_write(tmp_path)).retention_contacts is None


BROKEN = [
    # (rows, rule, words of the message, the row it names)
    (["C9,2025-02-10,treated,reached,phone"], "relation:customer_id", "not in customers.csv", 1),
    (["C3,2025-01-20,treated,reached,phone"], "timeline:before_signup", "before its customer", 1),
    (["C2,2025-03-02,treated,reached,phone"], "timeline:after_churn", "after its customer", 1),
    (["C1,2025-02-10,called,reached,phone"], "unknown:group", "treated, control", 1),
    (["C1,2025-02-10,treated,happy,phone"], "unknown:outcome", "accepted_offer", 1),
    (["C1,2025-02-10,treated,reached,pigeon"], "unknown:channel", "phone, chat", 1),
    (["C1,10/02/2025,treated,reached,phone"], "type:contacted_at", "not a date", 1),
    ([",2025-02-10,treated,reached,phone"], "required:customer_id", "empty customer_id", 1),
    (
        ["C1,2025-02-10,control,,", "C1,2025-03-12,treated,reached,phone"],
        "control:contacted",
        "within 30 days",
        1,
    ),
    (
        ["C1,2025-02-10,treated,reached,phone", "C1,2025-02-10,treated,declined,phone"],
        "unique:contact",
        "repeated (customer_id, contacted_at, group)",
        2,
    ),
]


@pytest.mark.parametrize(("rows", "rule", "words", "row"), BROKEN, ids=[b[1] for b in BROKEN])
def test_each_broken_rule_is_reported_once_naming_row_and_field(tmp_path, rows, rule, words, row):
    result = read_and_check(*_write(tmp_path), _contacts(tmp_path, rows))
    assert [b.rule for b in result.breaches] == [rule]
    (breach,) = result.breaches
    message = breach.message()
    assert words in message and "\n" not in message
    assert message.startswith("retention_contacts.csv: 1 row has")
    assert f"(first: row {row}" in message and "expected" in message
    if rule != "required:customer_id":
        assert f"row {row}, customer C" in message
    assert breach.policy == "set_aside"


def test_a_control_row_is_kept_when_the_treated_row_is_after_the_horizon(tmp_path):
    rows = ["C1,2025-02-10,control,,", "C1,2025-03-13,treated,reached,phone"]
    assert read_and_check(*_write(tmp_path), _contacts(tmp_path, rows)).ok
    # a shorter promise is a shorter horizon; a longer horizon breaks it
    result = read_and_check(*_write(tmp_path), _contacts(tmp_path, rows), horizon_days=40)
    assert [b.rule for b in result.breaches] == ["control:contacted"]


def test_a_control_row_and_a_treated_row_on_the_same_day_break_the_promise():
    broken = broken_control_promises(
        pd.Series(["C1", "C1", "C2"]),
        pd.Series(pd.to_datetime(["2025-02-10", "2025-02-10", "2025-02-01"])),
        pd.Series(["control", "treated", "control"]),
        30,
    )
    assert broken.tolist() == [True, False, False]


def test_broken_rows_are_set_aside_with_their_reason_and_the_rest_kept(tmp_path):
    rows = [
        "C1,2025-02-10,treated,reached,phone",
        "C9,2025-02-10,treated,reached,phone",
        "C2,2025-02-10,control,,",
    ]
    lines: list[str] = []
    tables = load_tables(
        *_write(tmp_path),
        retention_contacts_path=_contacts(tmp_path, rows),
        quarantine_dir=tmp_path / "q",
        report=lines.append,
    )
    assert tables.retention_contacts["customer_id"].tolist() == ["C1", "C2"]
    assert tables.set_aside["retention_contacts"] == 1
    (path,) = tables.quarantine_files
    assert path.name.startswith("retention_contacts-")
    quarantined = pd.read_csv(path)
    assert quarantined["source_row"].tolist() == [2]
    assert "not in customers.csv" in quarantined["quarantine_reason"][0]
    assert any("set aside 1 retention_contacts row " in line for line in lines)


def test_a_customer_set_aside_takes_their_retention_contacts_along(tmp_path):
    customers = "\n".join(
        [
            "customer_id,signup_date,churned_at,segment,plan,monthly_revenue,region",
            "C1,2025-01-01,,consumer,basic,10.5,north",
            "C2,2025-01-05,2024-03-01,business,pro,99,south",
            "C3,2025-02-01,,consumer,basic,0,north",
        ]
    )
    tables = load_tables(
        *_write(tmp_path, customers=customers + "\n"),
        retention_contacts_path=_contacts(tmp_path, ["C2,2025-02-10,control,,"]),
        quarantine_dir=tmp_path / "q",
    )
    assert tables.retention_contacts.empty
    assert tables.set_aside["retention_contacts"] == 1


def test_strict_stops_on_a_broken_retention_rule_with_one_line(tmp_path):
    with pytest.raises(ContractError) as error:
        load_tables(
            *_write(tmp_path),
            retention_contacts_path=_contacts(tmp_path, ["C1,2025-02-10,called,,"]),
            quarantine_dir=tmp_path / "q",
            strict=True,
        )
    assert "unknown group" in str(error.value) and "\n" not in str(error.value)


def test_a_table_without_contacted_at_stops(tmp_path):
    path = _contacts(tmp_path, text="customer_id,group\nC1,treated\n")
    result = read_and_check(*_write(tmp_path), path)
    (breach,) = result.breaches
    assert breach.policy == "stop" and "contacted_at" in breach.message()
    with pytest.raises(ContractError, match="contacted_at"):
        load_tables(*_write(tmp_path), retention_contacts_path=path, quarantine_dir=tmp_path)
