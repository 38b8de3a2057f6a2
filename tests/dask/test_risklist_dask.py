"""``make_risk_list_dask`` and ``churnml risk-list --engine dask`` store the list the local
engine stores (header, rows, departures, drift, fingerprint; the call effect, saved revenue,
control group and the customers not picked for their call effect), on a LocalCluster of 2
workers: with the same model and day, on a second day, with a worker killed in the middle;
and when every worker dies, one line and a store left as it was."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed.comm.core import CommClosedError

from churnml.cli import main
from churnml.engines.dask.checking import load_tables_dask
from churnml.engines.dask.lists import make_risk_list_dask
from churnml.errors import DaskEngineError, DataError
from churnml.io import ContentHash, content_hash
from churnml.validation import load_tables
from serving.loading import load_served_model
from serving.risklist import make_risk_list
from serving.settings import RiskListSettings
from serving.store import REASON_KEYS, RiskListStore
from tests.dask.helpers import SAMPLE
from tests.dask.test_failures import PLUGIN, CrashEveryWorker, _patch, _restore
from tests.serving.helpers import trained_home

pytestmark = pytest.mark.slow

DAY1 = dt.date(2026, 6, 10)
DAY2 = dt.date(2026, 6, 17)
# With a control group (the model's default ranking: revenue, its call-effect head did not pass
# its gate); SAVED ranks by saved revenue, so that customers are left out for their call effect.
SETTINGS = RiskListSettings(capacity=50, control_share=0.2)
SAVED = RiskListSettings(capacity=50, rank_by="saved-revenue", control_share=0.2)
TOLERANCE = 1e-9
FLOAT_COLUMNS = (
    "churn_probability",
    "revenue_at_risk",
    "previous_probability",
    "call_effect",
    "saved_revenue",
)


@pytest.fixture(scope="module")
def served():
    home = trained_home()  # trained once per session, shared with the serving tests
    return load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )


@pytest.fixture(scope="module")
def tables(dask_client):
    return load_tables_dask(
        SAMPLE / "customers.csv",
        SAMPLE / "interactions.csv",
        client=dask_client,
        partitions=6,
        retention_contacts_path=SAMPLE / "retention_contacts.csv",
    )


@pytest.fixture(scope="module")
def found():
    return load_tables(
        SAMPLE / "customers.csv",
        SAMPLE / "interactions.csv",
        retention_contacts_path=SAMPLE / "retention_contacts.csv",
    )


def make_local(found, served, store: RiskListStore, day: dt.date, settings) -> None:
    make_risk_list(
        found.customers,
        found.interactions,
        day,
        served,
        store,
        settings,
        retention_contacts=found.retention_contacts,
    )


@pytest.fixture(scope="module")
def local(served, found, tmp_path_factory) -> RiskListStore:
    """The local engine's lists of both days, in their own store."""
    store = new_store(tmp_path_factory.mktemp("local"))
    for day in (DAY1, DAY2):
        make_local(found, served, store, day, SETTINGS)
    return store


def new_store(folder: Path) -> RiskListStore:
    return RiskListStore(f"sqlite:///{folder / 'lists.db'}")


def stored(store: RiskListStore, day: dt.date) -> dict:
    """The day's header (without created_at), rows and departures as the store holds them."""
    header = store.header(f"{day}")
    assert header is not None, f"no list for {day}"
    with store.engine.connect() as conn:
        rows, departures = (
            pd.read_sql(
                f"select * from {table} where list_id = {header['list_id']} order by {order}",
                conn,
            ).drop(columns=["list_id"])
            for table, order in (
                ("risk_list_rows", "rank"),
                ("risk_list_departures", "previous_rank"),
            )
        )
    header.pop("created_at")
    return {"header": header, "rows": rows, "departures": departures}


def assert_same_list(dask: dict, local: dict) -> None:
    """Equal lists: every value equal, probabilities (and the reasons' contributions, which
    sum in another order on a partition) within 1e-9."""
    assert dask["header"] == local["header"]
    pd.testing.assert_frame_equal(dask["departures"], local["departures"], check_exact=True)
    ours, theirs = dask["rows"], local["rows"]
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs) > 0
    for column in ours.columns:
        if column in FLOAT_COLUMNS:
            assert_close(ours[column], theirs[column])
        elif column == "reasons":
            for mine, other in zip(ours[column], theirs[column], strict=True):
                assert_same_reasons(json.loads(mine), json.loads(other))
        else:
            assert ours[column].equals(theirs[column]), column


def assert_close(ours: pd.Series, theirs: pd.Series) -> None:
    """Numbers within 1e-9, missing in the same places (None, NaN or an empty CSV cell)."""

    def numbers(values: pd.Series) -> np.ndarray:
        return np.array([np.nan if v is None or v == "" else float(v) for v in values])

    np.testing.assert_allclose(numbers(ours), numbers(theirs), rtol=0, atol=TOLERANCE)


def assert_same_reasons(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs, strict=True):
        # Stored in the order of serving.store.REASON_KEYS: all equal but the contribution.
        at = REASON_KEYS.index("contribution")
        assert mine[:at] + mine[at + 1 :] == other[:at] + other[at + 1 :]
        assert math.isclose(mine[at], other[at], rel_tol=0, abs_tol=TOLERANCE)


def test_the_content_fingerprint_adds_up_over_parts_and_sees_a_changed_value() -> None:
    customers = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv").customers
    whole = content_hash(customers)
    parts = sum((content_hash(customers.iloc[k::5]) for k in range(5)), ContentHash())
    assert parts == whole and whole.rows == len(customers)
    assert content_hash(customers.iloc[::-1]) == whole  # row order is not content
    changed = customers.copy()
    changed.loc[7, "monthly_revenue"] += 0.01
    assert content_hash(changed).text != whole.text


def test_the_dask_list_is_the_local_list_on_both_days(served, tables, local, tmp_path) -> None:
    store = new_store(tmp_path)
    for day in (DAY1, DAY2):
        make_risk_list_dask(tables, day, served, store, SETTINGS)
    for day in (DAY1, DAY2):
        ours, theirs = stored(store, day), stored(local, day)
        assert_same_list(ours, theirs)
    # The comparison had something to compare: changes, departures, drift, fingerprint.
    second = stored(store, DAY2)
    assert second["header"]["previous_date"] == f"{DAY1}"
    assert set(second["rows"]["change"].dropna()) >= {"new", "risen", "fallen"}
    assert len(second["departures"]) == second["header"]["departures"] > 0
    # Every customer of the first list who churned in between left it as "churned on".
    first = stored(store, DAY1)["rows"]
    customers = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv").customers
    churned_at = pd.to_datetime(customers.set_index("customer_id")["churned_at"]).dt.date
    listed = first.loc[first["on_list"].astype(bool), "customer_id"]
    left = {c for c in listed if pd.notna(churned_at[c]) and DAY1 < churned_at[c] <= DAY2}
    departures = second["departures"].set_index("customer_id")["why"]
    assert {c for c, why in departures.items() if why.startswith("churned on")} == left
    assert len(second["header"]["drift"]["psi"]) > 20
    fingerprint = second["header"]["fingerprint"]
    assert fingerprint["interactions_rows"] == tables.interaction_rows
    assert fingerprint["customers_content"].startswith("rowsum64:")
    # The new columns had something to compare: controls, call effects, and DAY1's controls
    # held out on DAY2.
    for day in (DAY1, DAY2):
        rows = stored(store, day)["rows"]
        assert (rows["group"] == "control").sum() == 10 and (rows["group"] == "treated").sum()
        assert rows["call_effect"].notna().all() and (rows["call_effect"] < 0).any()
    held = second["rows"]["not_listed_because"].fillna("")
    assert held.str.startswith(f"held out as a control on {DAY1}").any()


def test_the_dask_list_by_saved_revenue_is_the_local_list(served, tables, found, tmp_path) -> None:
    ours, theirs = new_store(tmp_path / "dask"), new_store(tmp_path / "local")
    make_risk_list_dask(tables, DAY1, served, ours, SAVED)
    make_local(found, served, theirs, DAY1, SAVED)
    dask, local = stored(ours, DAY1), stored(theirs, DAY1)
    assert_same_list(dask, local)
    rows = dask["rows"]
    assert dask["header"]["rank_by"] == "saved-revenue"
    left_out = rows["not_listed_because"].isin(
        ["likely to leave whatever we do", "a call may do harm"]
    )
    assert left_out.any() and not rows.loc[left_out, "on_list"].any()
    assert (rows["group"] == "control").sum() == 10


# Before the tests that kill workers: the module's cluster loses its persisted tables.
def test_a_day_after_the_data_ends_is_refused_on_dask_before_any_work(
    served, tables, local, tmp_path
) -> None:
    store = new_store(tmp_path)
    make_risk_list_dask(tables, DAY1, served, store, SETTINGS)
    before = store.runs()
    with pytest.raises(DataError) as error:
        make_risk_list_dask(tables, dt.date(2026, 6, 27), served, store, SETTINGS)
    message = str(error.value)
    assert "\n" not in message and "2026-06-27" in message and "2026-06-24" in message
    assert store.dates() == [f"{DAY1}"] and store.runs() == before
    # Within the grace: stored, with the same freshness as the local engine's lists.
    make_risk_list_dask(tables, dt.date(2026, 6, 26), served, store, SETTINGS)
    assert store.header("2026-06-26")["data_through"] == "2026-06-24"
    assert stored(store, DAY1)["header"]["data_through"] == f"{DAY1}"
    assert stored(local, DAY1)["header"]["data_through"] == f"{DAY1}"


def test_a_worker_killed_while_making_the_list_changes_nothing(
    dask_client, served, tables, local, tmp_path
) -> None:
    store = new_store(tmp_path)
    marker = tmp_path / "crashed"
    pids = set(dask_client.run(os.getpid).values())
    dask_client.run(_patch, str(marker))
    try:
        make_risk_list_dask(tables, DAY1, served, store, SETTINGS)
    finally:
        dask_client.run(_restore)
    assert marker.exists(), "no worker died: the test proved nothing"
    assert set(dask_client.run(os.getpid).values()) != pids  # the nanny started a new one
    assert_same_list(stored(store, DAY1), stored(local, DAY1))


def test_every_worker_dying_is_one_line_and_leaves_the_store_as_it_was(
    dask_client, served, tables, tmp_path
) -> None:
    store = new_store(tmp_path)
    make_risk_list_dask(tables, DAY1, served, store, SETTINGS)
    before = stored(store, DAY1)
    dask_client.register_plugin(CrashEveryWorker())
    try:
        with pytest.raises(DaskEngineError) as error:
            make_risk_list_dask(tables, DAY2, served, store, SETTINGS)
    finally:
        # The scheduler forgets the plugin first, then tells the workers; one that is just
        # being restarted may drop that message, which a restart makes moot.
        with contextlib.suppress(CommClosedError):
            dask_client.unregister_worker_plugin(PLUGIN)
        dask_client.restart()  # the tables died with the workers: leave fresh ones
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == 1
    assert "no partial result" in message
    assert message.startswith(
        (
            "making the risk list failed: Dask workers died 4 times while",
            "making the risk list failed: no Dask worker was alive for 20 s",
        )
    )
    assert store.dates() == [f"{DAY1}"] and store.header(f"{DAY2}") is None
    after = stored(store, DAY1)
    assert after["header"] == before["header"]
    pd.testing.assert_frame_equal(after["rows"], before["rows"], check_exact=True)
    assert len(store.runs()) == 1


def call(capsys, *args: str) -> tuple[int | None, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return exited.value.code, capsys.readouterr().err


def test_the_cli_on_dask_exports_the_local_engines_list(
    capsys, local, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("CHURNML_HOME", str(trained_home()))
    rows = stored(local, DAY1)["rows"].sort_values("churn_probability", ascending=False)
    suppress = tmp_path / "contacted.csv"
    pd.DataFrame(  # the riskiest customer called 2 days ago, the next 40 days ago
        {"customer_id": rows["customer_id"].iloc[:2], "contacted_at": ["2026-06-08", "2026-05-01"]}
    ).to_csv(suppress, index=False)
    for engine in ("local", "dask"):
        code, err = call(
            capsys,
            "risk-list",
            "--as-of",
            f"{DAY1}",
            "--engine",
            engine,
            "--out",
            str(tmp_path / f"{engine}.csv"),
            "--store",
            f"sqlite:///{tmp_path / f'{engine}.db'}",
            "--capacity",
            "20",
            "--rank-by",
            "probability",
            "--suppress",
            str(suppress),
            "--suppress-days",
            "7",
            "--quiet",
        )
        assert code in (0, None), err
    ours = pd.read_csv(tmp_path / "dask.csv", keep_default_na=False)
    theirs = pd.read_csv(tmp_path / "local.csv", keep_default_na=False)
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs) > 0
    assert ours["suppressed"].sum() == 1 and ours["on_list"].sum() == 21  # one suppressed
    for column in ours.columns:
        if column in FLOAT_COLUMNS:
            assert_close(ours[column], theirs[column])
        else:
            assert ours[column].equals(theirs[column]), column
