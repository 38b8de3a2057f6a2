"""Every rule of the contract, its report and its policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.errors import ContractError, InputError
from churnml.io import TEXT
from churnml.validation import (
    ORPHAN_REASON,
    Breach,
    all_distinct,
    apply_policy,
    as_text,
    check_tables,
    churned_before_signup,
    contact_after_churn,
    contact_before_signup,
    first_copies,
    give_reason,
    later_copies,
    load_tables,
    profile_column,
    read_and_check,
    row_reasons,
    set_aside,
    set_orphans_aside,
    stop_if_needed,
    typed_table,
)

CUSTOMERS = """customer_id,signup_date,churned_at,segment,plan,monthly_revenue,region
C1,2025-01-01,,consumer,basic,10.5,north
C2,2025-01-05,2025-03-01,business,pro,99,south
C3,2025-02-01,,consumer,basic,0,north
"""

INTERACTIONS = """interaction_id,customer_id,started_at,channel,case_id,topic,wait_seconds,handle_seconds,agent_id,transfers,abandoned,status,csat
I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,30,200,A1,0,false,pending,
I2,C1,2025-02-02T10:00:00+01:00,chat,K1,billing,5.5,100,A2,1,False,resolved,4
I3,C2,2025-02-03 08:00:00,email,,technical,3600,,,,0,,
I4,C3,2025-02-04T09:30:00Z,store,K9,,0,50,A3,2,1,escalated,1
"""


def _write(tmp_path, customers=CUSTOMERS, interactions=INTERACTIONS):
    c = tmp_path / "customers.csv"
    i = tmp_path / "interactions.csv"
    c.write_text(customers)
    i.write_text(interactions)
    return c, i


def _replace_row(text: str, row: int, new_line: str) -> str:
    lines = text.splitlines()
    lines[row] = new_line
    return "\n".join(lines) + "\n"


def test_clean_tables_break_no_rule(tmp_path):
    result = read_and_check(*_write(tmp_path))
    assert result.ok, [b.message() for b in result.breaches]


def test_clean_tables_are_typed_per_contract(tmp_path):
    result = read_and_check(*_write(tmp_path))
    interactions = result.interactions
    assert interactions["started_at"].dtype == "datetime64[ns]"
    # +01:00 becomes UTC; a zone-less timestamp is UTC.
    assert interactions["started_at"][1] == pd.Timestamp("2025-02-02 09:00:00")
    assert interactions["started_at"][2] == pd.Timestamp("2025-02-03 08:00:00")
    assert interactions["abandoned"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert interactions["transfers"].isna().tolist() == [False, False, True, False]
    assert result.customers["churned_at"].isna().tolist() == [True, False, True]
    assert result.customers["monthly_revenue"].dtype == "float64"
    assert result.customers["region"].tolist() == ["north", "south", "north"]


INTERACTION_HEADER = INTERACTIONS.splitlines()[0]

BROKEN_INTERACTIONS = [
    # (new line for row 1, rule, words in the message)
    (
        "I1,C1,yesterday,phone,K1,billing,30,200,A1,0,false,pending,",
        "type:started_at",
        "not a timestamp",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,-3,200,A1,0,false,pending,",
        "negative:wait_seconds",
        "wait_seconds < 0",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,-200,A1,0,false,pending,",
        "negative:handle_seconds",
        "handle_seconds < 0",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,abc,200,A1,0,false,pending,",
        "type:wait_seconds",
        "not a number",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,1.5,false,pending,",
        "type:transfers",
        "not a whole number",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,-1,false,pending,",
        "negative:transfers",
        "transfers < 0",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,fax,K1,billing,3,200,A1,0,false,pending,",
        "unknown:channel",
        "phone, chat, email",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,closed,",
        "unknown:status",
        "resolved, pending",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,maybe,pending,",
        "type:abandoned",
        "not a boolean",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,6",
        "range:csat",
        "outside 1-5",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,0",
        "range:csat",
        "outside 1-5",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,4.5",
        "type:csat",
        "not a whole number",
    ),
    (
        "I2,C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,",
        "unique:interaction_id",
        "repeated interaction_id",
    ),
    (
        "I1,C404,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,",
        "relation:customer_id",
        "not in customers.csv",
    ),
    (
        "I1,C1,2024-12-31T23:59:59Z,phone,K1,billing,3,200,A1,0,false,pending,",
        "timeline:before_signup",
        "before its customer's signup_date",
    ),
    (
        "I1,C2,2025-03-02T00:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,",
        "timeline:after_churn",
        "after its customer's churned_at",
    ),
    (
        ",C1,2025-02-01T10:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,",
        "required:interaction_id",
        "empty interaction_id",
    ),
    (
        "I1,C1,,phone,K1,billing,3,200,A1,0,false,pending,",
        "required:started_at",
        "empty started_at",
    ),
    (
        "I1,C1,2025-02-01T10:00:00Z,,K1,billing,3,200,A1,0,false,pending,",
        "required:channel",
        "empty channel",
    ),
]


@pytest.mark.parametrize(("line", "rule", "words"), BROKEN_INTERACTIONS)
def test_broken_interaction_rule_is_reported_once_with_row_and_id(tmp_path, line, rule, words):
    interactions = _replace_row(INTERACTIONS, 1, line)
    result = read_and_check(*_write(tmp_path, interactions=interactions))
    matching = [b for b in result.breaches if b.rule == rule]
    assert len(matching) == 1, [b.rule for b in result.breaches]
    breach = matching[0]
    message = breach.message()
    assert words in message
    assert message.startswith("interactions.csv: 1 row has")
    assert "row 1" in message or (rule == "unique:interaction_id" and "row 2" in message)
    assert breach.policy == "set_aside"


BROKEN_CUSTOMERS = [
    ("C1,01/02/2025,,consumer,basic,10.5,north", "type:signup_date", "not a date", "set_aside"),
    (
        "C1,2025-01-01,someday,consumer,basic,10.5,north",
        "type:churned_at",
        "not a date",
        "set_aside",
    ),
    (
        "C1,2025-01-01,,consumer,basic,-1,north",
        "negative:monthly_revenue",
        "monthly_revenue < 0",
        "set_aside",
    ),
    (
        "C1,2025-01-01,,consumer,basic,ten,north",
        "type:monthly_revenue",
        "not a number",
        "set_aside",
    ),
    (
        "C1,2025-01-01,2024-12-01,consumer,basic,10,north",
        "timeline:churned_at",
        "churned_at before signup_date",
        "set_aside",
    ),
    (
        "C2,2025-01-01,,consumer,basic,10,north",
        "unique:customer_id",
        "repeated customer_id",
        "stop",
    ),
    ("C1,,,consumer,basic,10,north", "required:signup_date", "empty signup_date", "set_aside"),
]


@pytest.mark.parametrize(("line", "rule", "words", "policy"), BROKEN_CUSTOMERS)
def test_broken_customer_rule_is_reported_with_its_policy(tmp_path, line, rule, words, policy):
    customers = _replace_row(CUSTOMERS, 1, line)
    result = read_and_check(*_write(tmp_path, customers=customers))
    matching = [b for b in result.breaches if b.rule == rule]
    assert len(matching) == 1, [b.rule for b in result.breaches]
    assert words in matching[0].message()
    assert matching[0].policy == policy


def test_many_broken_rows_are_one_report_with_count_and_first_rows(tmp_path):
    rows = [INTERACTION_HEADER] + [
        f"I{n},C1,2025-02-01T10:00:00Z,phone,,,{-n},,,,,," for n in range(1, 8)
    ]
    result = read_and_check(*_write(tmp_path, interactions="\n".join(rows) + "\n"))
    assert [b.rule for b in result.breaches] == ["negative:wait_seconds"]
    message = result.breaches[0].message()
    assert "7 rows have wait_seconds < 0" in message
    assert "row 1, interaction I1" in message and "row 3, interaction I3" in message
    assert "row 4" not in message


def test_missing_required_column_stops(tmp_path):
    customers = CUSTOMERS.replace("signup_date", "signed_up")
    result = read_and_check(*_write(tmp_path, customers=customers))
    (breach,) = [b for b in result.breaches if b.rule == "required_columns"]
    assert breach.policy == "stop"
    assert "lacks the required column signup_date" in breach.message()
    with pytest.raises(ContractError, match="signup_date"):
        apply_policy(result, quarantine_dir=tmp_path / "q")


def test_header_only_customers_table_stops(tmp_path):
    result = read_and_check(*_write(tmp_path, customers=CUSTOMERS.splitlines()[0] + "\n"))
    assert any(b.rule == "no_rows" and b.policy == "stop" for b in result.breaches)


def test_optional_columns_may_be_absent(tmp_path):
    customers = "customer_id,signup_date\nC1,2025-01-01\n"
    interactions = (
        "interaction_id,customer_id,started_at,channel\nI1,C1,2025-01-02T00:00:00Z,chat\n"
    )
    result = read_and_check(*_write(tmp_path, customers=customers, interactions=interactions))
    assert result.ok
    assert result.interactions["wait_seconds"].isna().all()
    assert result.customers["churned_at"].isna().all()


def test_contact_on_the_churn_day_is_allowed(tmp_path):
    interactions = _replace_row(
        INTERACTIONS, 1, "I1,C2,2025-03-01T23:00:00Z,phone,K1,billing,3,200,A1,0,false,pending,"
    )
    assert read_and_check(*_write(tmp_path, interactions=interactions)).ok


def test_set_aside_rows_go_to_quarantine_with_reason_and_are_counted(tmp_path):
    interactions = _replace_row(
        INTERACTIONS, 1, "I1,C1,2025-02-01T10:00:00Z,fax,K1,billing,3,200,A1,0,false,pending,"
    )
    messages: list[str] = []
    tables = load_tables(
        *_write(tmp_path, interactions=interactions),
        quarantine_dir=tmp_path / "q",
        report=messages.append,
    )
    assert tables.set_aside == {"customers": 0, "interactions": 1}
    assert list(tables.interactions["interaction_id"]) == ["I2", "I3", "I4"]
    (path,) = tables.quarantine_files
    quarantined = pd.read_csv(path)
    assert quarantined["source_row"].tolist() == [1]
    assert "unknown channel" in quarantined["quarantine_reason"][0]
    assert messages and "set aside 1 interactions row that breaks the contract" in messages[0]


def test_customer_set_aside_takes_its_interactions_along(tmp_path):
    customers = _replace_row(CUSTOMERS, 1, "C1,2025-01-01,,consumer,basic,-10,north")
    tables = load_tables(*_write(tmp_path, customers=customers), quarantine_dir=tmp_path / "q")
    assert "C1" not in set(tables.customers["customer_id"])
    assert "C1" not in set(tables.interactions["customer_id"])
    assert tables.set_aside == {"customers": 1, "interactions": 2}


def test_strict_stops_on_a_rule_that_would_set_rows_aside(tmp_path):
    interactions = _replace_row(
        INTERACTIONS, 1, "I1,C1,2025-02-01T10:00:00Z,fax,K1,billing,3,200,A1,0,false,pending,"
    )
    with pytest.raises(ContractError, match="unknown channel"):
        load_tables(
            *_write(tmp_path, interactions=interactions), quarantine_dir=tmp_path / "q", strict=True
        )
    assert not (tmp_path / "q").exists()


def test_parquet_file_and_folder_read_like_csv(tmp_path):
    c, i = _write(tmp_path)
    expected = read_and_check(c, i)
    frame = pd.read_csv(i, dtype=str)
    frame["wait_seconds"] = frame["wait_seconds"].astype(float)
    frame.to_parquet(tmp_path / "interactions.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:2].to_parquet(folder / "part-0.parquet")
    frame.iloc[2:].to_parquet(folder / "part-1.parquet")
    for source in (tmp_path / "interactions.parquet", folder):
        result = read_and_check(c, source)
        assert result.ok
        pd.testing.assert_frame_equal(result.interactions, expected.interactions)


def test_parquet_with_native_types_is_checked_too(tmp_path):
    c, _ = _write(tmp_path)
    frame = pd.DataFrame(
        {
            "interaction_id": [1, 2],
            "customer_id": ["C1", "C1"],
            "started_at": pd.to_datetime(["2025-02-01 10:00", "2025-02-02 10:00"]).tz_localize(
                "UTC"
            ),
            "channel": ["phone", "chat"],
            "wait_seconds": [10.0, -1.0],
            "abandoned": [True, False],
        }
    )
    frame.to_parquet(tmp_path / "i.parquet")
    result = read_and_check(c, tmp_path / "i.parquet")
    assert [b.rule for b in result.breaches] == ["negative:wait_seconds"]
    assert result.interactions["interaction_id"].tolist() == ["1", "2"]
    assert result.interactions["abandoned"].tolist() == [1.0, 0.0]


BAD_FILES = [
    ("empty", b"", "is empty"),
    ("not csv", bytes(range(256)) * 4, "binary file, not CSV"),
    ("latin-1", "customer_id,signup_date\nC\xe9,2025-01-01\n".encode("latin-1"), "not UTF-8"),
    ("blank header", b"\n\nC1,2025-01-01\n", "first line is blank"),
    ("tabs", b"customer_id\tsignup_date\nC1\t2025-01-01\n", "tab-separated"),
]


@pytest.mark.parametrize(("name", "content", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_unreadable_file_is_an_input_error_naming_the_file(tmp_path, name, content, words):
    c, i = _write(tmp_path)
    c.write_bytes(content)
    with pytest.raises(InputError, match=words) as raised:
        read_and_check(c, i)
    assert "customers.csv" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_wrong_columns_are_reported_not_raised(tmp_path):
    c, i = _write(tmp_path, customers="name,age\nann,3\n")
    result = read_and_check(c, i)
    assert result.breaches[0].rule == "required_columns"
    assert "customer_id, signup_date" in result.breaches[0].message()


@pytest.mark.parametrize("name", ["customers.txt", "customers.json"])
def test_unknown_extension_is_an_input_error(tmp_path, name):
    c, i = _write(tmp_path)
    other = tmp_path / name
    other.write_text(CUSTOMERS)
    with pytest.raises(InputError, match="neither .csv nor .parquet"):
        read_and_check(other, i)


def test_broken_parquet_is_an_input_error(tmp_path):
    c, i = _write(tmp_path)
    bad = tmp_path / "customers.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_and_check(bad, i)


def test_check_tables_works_on_frames_as_a_caller_sends_them():
    customers = pd.DataFrame({"customer_id": ["C1"], "signup_date": ["2025-01-01"]})
    interactions = pd.DataFrame(
        {
            "interaction_id": ["I1"],
            "customer_id": ["C1"],
            "started_at": ["2025-01-02T00:00:00Z"],
            "channel": ["phone"],
            "wait_seconds": [-5],
        }
    )
    result = check_tables(customers, interactions)
    assert [b.rule for b in result.breaches] == ["negative:wait_seconds"]


# --- the policy and the rules as public functions (the Dask engine and the service use them)


NAT = np.datetime64("NaT", "ns")


def _ns(*values: str | None) -> np.ndarray:
    return np.array([NAT if v is None else np.datetime64(v, "ns") for v in values])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "b", "a", None, "b", "a"], [0, 1, 0, -1, 1, 0]),
        (("x", "y"), [0, 1]),
        ([None, None], [-1, -1]),
        ([], []),
    ],
)
def test_first_copies_name_the_first_row_of_each_value(values, expected):
    series = pd.Series(values, dtype=TEXT) if isinstance(values, list) else values
    assert first_copies(series).tolist() == expected


def test_later_copies_break_the_unique_rule_but_missing_values_do_not():
    ids = pd.Series(["a", "b", "a", None, None, "b"], dtype=TEXT)
    assert later_copies(ids).tolist() == [False, False, True, False, False, True]
    assert not all_distinct(ids) and all_distinct(pd.Series(["a", None, None], dtype=TEXT))
    assert all_distinct(("a", "b", None, None)) and not all_distinct(("a", "b", "a"))


def test_timeline_predicates_keep_missing_dates():
    signup = _ns("2025-01-10", "2025-01-10", None, "2025-01-10")
    churned = _ns("2025-01-09", None, "2025-01-01", "2025-01-10")
    assert churned_before_signup(churned, signup).tolist() == [True, False, False, False]
    started = _ns("2025-01-09T23:59:59", "2025-01-10", "2025-01-11", "2025-01-11")
    assert contact_before_signup(started, signup).tolist() == [True, False, False, False]
    # A contact on the churned_at day is kept; one on the next day is not.
    late = contact_after_churn(
        _ns("2025-01-10T23:59", "2025-01-11", "2025-01-11"), churned[[3, 3, 1]]
    )
    assert late.tolist() == [False, True, False]


def _breach(table: str, rows: list[int], policy: str = "set_aside", problem: str = "p") -> Breach:
    return Breach("f.csv", table, "rule", problem, "e", policy, rows=np.array(rows))


def test_stop_if_needed_stops_on_the_first_stopping_rule_and_counts_the_others():
    set_aside_only = [_breach("customers", [1])]
    stop_if_needed(set_aside_only)  # nothing stops
    with pytest.raises(ContractError, match=r"^f.csv: 1 row has p \(first: row 2\); e$"):
        stop_if_needed(set_aside_only, strict=True)
    both = [_breach("customers", [1]), _breach("customers", [], policy="stop", problem="q")]
    with pytest.raises(ContractError) as error:
        stop_if_needed(both)
    assert str(error.value) == "f.csv: q; e (and 1 more broken rules: run churnml validate)"


def test_row_reasons_give_each_row_the_first_breach_that_names_it():
    breaches = [
        _breach("customers", [2], problem="first"),
        _breach("interactions", [0]),
        _breach("customers", [0, 2], problem="second"),
    ]
    assert row_reasons(breaches, "customers", 3).tolist() == ["second; e", None, "first; e"]
    assert row_reasons([_breach("interactions", [0])], "customers", 3) is None
    reasons = np.array([None, "own"], dtype=object)
    give_reason(reasons, np.array([0, 1]), "new")
    assert reasons.tolist() == ["new", "own"]


def test_a_customer_set_aside_takes_its_interactions_with_it():
    customer_ids = pd.Series(["C1", "C2", None], dtype=TEXT)
    owners = pd.Series(["C2", "C1", "C2", "C3"], dtype=TEXT)
    customers = np.array([None, "bad", "bad"], dtype=object)
    own = np.array([None, None, "own reason", None], dtype=object)
    found = set_orphans_aside(customer_ids, customers, owners, own)
    assert found.tolist() == [ORPHAN_REASON, None, "own reason", None]
    created = set_orphans_aside(customer_ids, customers, owners, None)
    assert created.tolist() == [ORPHAN_REASON, None, ORPHAN_REASON, None]
    assert set_orphans_aside(customer_ids, None, owners, None) is None


def test_set_aside_writes_the_quarantine_file_and_says_so(tmp_path):
    rows = pd.DataFrame({"customer_id": ["C7", "C9"], "plan": ["basic", None]})
    heard: list[str] = []
    path = set_aside(
        "customers", rows, np.array([6, 8]), ["why; fix", "how"], tmp_path, heard.append
    )
    written = pd.read_csv(path)
    assert written.columns.tolist() == ["source_row", "quarantine_reason", "customer_id", "plan"]
    assert written["source_row"].tolist() == [7, 9]
    assert written["quarantine_reason"].tolist() == ["why; fix", "how"]
    assert heard == [f"set aside 2 customers rows that break the contract: see {path}"]
    with pytest.raises(ContractError, match="no quarantine folder"):
        set_aside("customers", rows, np.array([6, 8]), ["a", "b"], None)


def test_typed_table_types_one_piece_and_names_its_breaches():
    raw = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "signup_date": ["2025-01-01", "soon"],
            "churned_at": ["", ""],
            "loyalty": ["3", "4"],
        }
    )
    typed, breaches, complete = typed_table(raw, "customers", "c.csv")
    assert complete and typed["signup_date"].dtype == "datetime64[ns]"
    assert [(b.rule, b.rows.tolist()) for b in breaches] == [("type:signup_date", [1])]
    assert typed["loyalty"].dtype == "float64"  # an extra column of numbers
    assert profile_column(pd.Series(["3", "x"])).tolist() == ["3", "x"]
    assert as_text(pd.Series(["a", " ", None])).isna().tolist() == [False, True, True]
