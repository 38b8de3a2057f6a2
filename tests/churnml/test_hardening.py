"""What an attack on churnml's command line found (issue 13): state files readable by every
user of the machine, and tracebacks where a user's mistake deserves one line."""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.churnml.test_validation import CUSTOMERS, INTERACTIONS, _replace_row, _write

REPO = Path(__file__).resolve().parents[2]


def churnml(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """The real command in a new process (its own umask, as a user's shell gives it)."""
    return subprocess.run(
        [sys.executable, "-m", "churnml.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def modes(root: Path) -> dict[str, set[str]]:
    """The permission bits of every folder (root included) and file under ``root``."""
    found: dict[str, set[str]] = {"folders": {oct(stat.S_IMODE(root.stat().st_mode))}}
    found["files"] = set()
    for path in root.rglob("*"):
        kind = "folders" if path.is_dir() else "files"
        found[kind].add(oct(stat.S_IMODE(path.lstat().st_mode)))
    return found


@pytest.fixture()
def open_umask():
    """The test process's umask at 022 (files 0644 by default), as a typical login has."""
    saved = os.umask(0o022)
    yield
    os.umask(saved)


# -- finding 10: customer data world-readable ----------------------------------------------


@pytest.fixture(scope="module")
def run_home(tmp_path_factory) -> Path:
    """The home of `churnml run --no-serve` started from a shell whose umask is 022."""
    home = tmp_path_factory.mktemp("run") / "state"
    saved = os.umask(0o022)
    try:
        done = churnml("run", "--no-serve", "--quiet", env={"CHURNML_HOME": str(home)}, timeout=600)
    finally:
        os.umask(saved)
    assert done.returncode == 0, done.stderr
    return home


@pytest.mark.usefixtures("open_umask")
def test_run_leaves_every_state_file_owner_only(run_home, tmp_path):
    home = run_home
    export = tmp_path / "list.csv"
    listed = churnml("risk-list", "--out", str(export), "--quiet", env={"CHURNML_HOME": str(home)})
    assert listed.returncode == 0, listed.stderr
    assert (home / "risk-lists.db").exists() and (home / "mlflow.db").exists()
    assert any(home.rglob("*.txt")) or any(home.rglob("*.json"))  # the model's files too
    assert modes(home) == {"folders": {"0o700"}, "files": {"0o600"}}
    assert oct(stat.S_IMODE(export.stat().st_mode)) == "0o600"


def _bad_tables(tmp_path: Path) -> tuple[Path, Path]:
    interactions = _replace_row(
        INTERACTIONS, 1, "I1,C1,2025-02-01T10:00:00Z,fax,K1,billing,30,200,A1,0,false,pending,"
    )
    return _write(tmp_path, interactions=interactions)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize(
    ("umask", "folder", "file"),
    [(None, "0o700", "0o600"), ("027", "0o750", "0o640"), ("022", "0o755", "0o644")],
)
def test_quarantine_and_export_follow_churnml_umask(tmp_path, umask, folder, file):
    customers, interactions = _bad_tables(tmp_path)
    home = tmp_path / "state"
    out = tmp_path / "features.csv"
    env = {"CHURNML_HOME": str(home)}
    if umask is not None:
        env["CHURNML_UMASK"] = umask
    done = churnml(
        "features",
        "--customers",
        str(customers),
        "--interactions",
        str(interactions),
        "--as-of",
        "2025-02-28",
        "--out",
        str(out),
        "--quiet",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert list((home / "quarantine").glob("interactions-*.csv"))
    assert modes(home) == {"folders": {folder}, "files": {file}}
    assert oct(stat.S_IMODE(out.stat().st_mode)) == file


def test_a_bad_umask_is_one_line_naming_the_variable(tmp_path):
    done = churnml("validate", env={"CHURNML_UMASK": "rw-r--r--"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "CHURNML_UMASK='rw-r--r--'" in done.stderr and "octal" in done.stderr


# -- finding 8: tracebacks instead of one line -----------------------------------------------


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one line on stderr and no traceback; that line."""
    assert done.returncode not in (0, None), done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("churnml: error: ")
    return lines[0]


UNREACHABLE = {
    "postgresql": "postgresql://churn:s3cret@127.0.0.1:1/mlflow",
    "http": "http://127.0.0.1:1",
}


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
@pytest.mark.parametrize(
    "command",
    [["promote", "1", "--reason", "x"], ["risk-list", "--as-of", "2026-06-01"], ["serve"]],
)
def test_an_unreachable_tracking_store_is_one_quick_line(tmp_path, kind, command):
    uri = UNREACHABLE[kind]
    env = {"MLFLOW_TRACKING_URI": uri, "CHURNML_HOME": str(tmp_path), "CHURNML_AUTH": "off"}
    started = time.monotonic()
    line = one_line_error(churnml(*command, env=env, timeout=60))
    assert time.monotonic() - started < 30  # MLflow alone retried for minutes
    assert "MLFLOW_TRACKING_URI=" in line and "127.0.0.1:1" in line
    assert "s3cret" not in line  # the password is hidden
    assert "start it" in line


def test_validate_does_not_need_the_tracking_store(tmp_path):
    customers, interactions = _write(tmp_path)
    env = {"MLFLOW_TRACKING_URI": UNREACHABLE["postgresql"]}
    done = churnml(
        "validate", "--customers", str(customers), "--interactions", str(interactions), env=env
    )
    assert done.returncode == 0, done.stderr


def _parquet_tables(tmp_path: Path, table: str, column: str, values: pa.Array) -> tuple[Path, Path]:
    """The inline tables as Parquet, with one column of ``table`` replaced by ``values``,
    written without pandas' metadata, as other tools write Parquet."""
    frames = {
        "customers": pd.read_csv(io.StringIO(CUSTOMERS), dtype=str),
        "interactions": pd.read_csv(io.StringIO(INTERACTIONS), dtype=str),
    }
    paths = {}
    for name, frame in frames.items():
        arrow = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        if name == table:
            arrow = arrow.set_column(arrow.schema.get_field_index(column), column, values)
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(arrow, paths[name])
    return paths["customers"], paths["interactions"]


def _features(customers: Path, interactions: Path, tmp_path: Path):
    return churnml(
        "features",
        "--customers",
        str(customers),
        "--interactions",
        str(interactions),
        "--as-of",
        "2025-02-28",
        "--out",
        str(tmp_path / "features.parquet"),
        env={"CHURNML_HOME": str(tmp_path / "state")},
    )


UNPARSABLE = [
    # a date column of int64 (days as a number, and one far out of range)
    ("customers", "signup_date", pa.array([20250101, 10**18, 20250201], pa.int64()), 2, 1),
    # a date beyond what pandas holds in nanoseconds
    (
        "customers",
        "signup_date",
        pa.array([dt.date(2025, 1, 1), dt.date(9999, 1, 1), dt.date(2025, 2, 1)]),
        2,
        1,
    ),
    # a timestamp column of int64 seconds (none is ISO 8601), and one in year 9999
    (
        "interactions",
        "started_at",
        pa.array([1738400000, -(2**62), 1738400000, 1738400000], pa.int64()),
        1,
        4,
    ),
    (
        "interactions",
        "started_at",
        pa.array(
            [
                dt.datetime(2025, 2, 1),
                dt.datetime(9999, 1, 1),
                dt.datetime(2025, 2, 3),
                dt.datetime(2025, 2, 4),
            ],
            pa.timestamp("us"),
        ),
        2,
        1,
    ),
    # a text column stored as binary, one value not UTF-8
    (
        "interactions",
        "topic",
        pa.array([b"billing", b"\xff\xfe", b"technical", None], pa.binary()),
        2,
        1,
    ),
    ("customers", "segment", pa.array([b"consumer", b"\xc3\x28", b"consumer"], pa.binary()), 2, 1),
]


@pytest.mark.parametrize(("table", "column", "values", "row", "count"), UNPARSABLE)
def test_a_value_that_does_not_parse_sets_its_row_aside(
    tmp_path, table, column, values, row, count
):
    customers, interactions = _parquet_tables(tmp_path, table, column, values)
    checked = churnml(
        "validate", "--customers", str(customers), "--interactions", str(interactions)
    )
    assert checked.returncode == 1, checked.stderr
    assert "Traceback" not in checked.stderr
    broken = [line for line in checked.stdout.splitlines() if line.startswith(f"{table}.parquet")]
    assert len(broken) == 1 and column in broken[0] and f"row {row}" in broken[0]
    assert "[rows are set aside]" in broken[0]
    done = _features(customers, interactions, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"set aside {count} {table} row{'' if count == 1 else 's'} " in done.stdout + done.stderr
    quarantined = list((tmp_path / "state" / "quarantine").glob(f"{table}-*.csv"))
    assert len(quarantined) == 1


@pytest.mark.parametrize(
    ("column", "values", "words"),
    [
        ("wait_seconds", pa.array([[1, 2], [3], None, [4]], pa.list_(pa.int64())), "lists"),
        ("wait_seconds", pa.array([{"s": 1}, {"s": 2}, None, {"s": 3}]), "records"),
        ("started_at", pa.array([[1], [2], [3], [4]], pa.list_(pa.int64())), "lists"),
        ("status", pa.array([["a"], None, None, ["b"]], pa.list_(pa.string())), "lists"),
    ],
)
def test_a_column_of_lists_is_one_line_naming_it(tmp_path, column, values, words):
    customers, interactions = _parquet_tables(tmp_path, "interactions", column, values)
    line = one_line_error(_features(customers, interactions, tmp_path))
    assert f"interactions.parquet: column {column} holds {words}" in line
    assert f"write {column} as a plain column" in line


def test_a_binary_column_that_pandas_metadata_calls_text_is_read(tmp_path):
    """A file whose pandas metadata says str for a binary column: Arrow's conversion used
    to fail at the first byte that is not UTF-8, naming no column."""
    frame = pd.read_csv(io.StringIO(INTERACTIONS), dtype=str)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)  # keeps pandas metadata
    values = pa.array([b"phone", b"\xff", b"email", b"store"], pa.binary())
    arrow = arrow.set_column(arrow.schema.get_field_index("channel"), "channel", values)
    pq.write_table(arrow, tmp_path / "interactions.parquet")
    customers = tmp_path / "customers.csv"
    customers.write_text(CUSTOMERS)
    checked = churnml(
        "validate",
        "--customers",
        str(customers),
        "--interactions",
        str(tmp_path / "interactions.parquet"),
    )
    assert checked.returncode == 1, checked.stderr
    assert "channel that is not UTF-8 text (first: row 2" in checked.stdout


def test_a_far_date_in_a_csv_sets_its_row_aside(tmp_path):
    customers = _replace_row(CUSTOMERS, 2, "C2,9999-01-05,,business,pro,99,south")
    c, i = _write(tmp_path, customers=customers)
    checked = churnml("validate", "--customers", str(c), "--interactions", str(i))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert (
        "signup_date that is not a date (first: row 2, customer C2, value '9999-01-05')"
        in checked.stdout
    )


# -- a model file that is not what it should be (S2 makes loading skip the pickle) ---------


def test_garbage_given_as_model_is_one_line(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "python_model.pkl").write_bytes(b"\x80\x04\x95garbage" + bytes(range(40)))
    customers, interactions = _write(tmp_path)
    for given in (folder, folder / "python_model.pkl"):
        line = one_line_error(
            churnml(
                "score",
                "--model",
                str(given),
                "--customers",
                str(customers),
                "--interactions",
                str(interactions),
                "--as-of",
                "2025-02-28",
                "--out",
                str(tmp_path / "scores.csv"),
                env={"CHURNML_HOME": str(tmp_path / "state")},
            )
        )
        assert str(given) in line and "churnml model" in line


def test_a_truncated_pickle_in_a_model_folder_is_never_read(run_home, tmp_path):
    """churnml loads its own files (booster text, JSON), so a cut python_model.pkl, which
    unpickling would choke on or, crafted, run, changes nothing."""
    import shutil

    pickle = next(run_home.glob("mlartifacts/**/python_model.pkl"))
    model = tmp_path / "model"
    shutil.copytree(pickle.parent, model)
    (model / "python_model.pkl").write_bytes(pickle.read_bytes()[:64])
    out = tmp_path / "scores.csv"
    done = churnml(
        "score",
        "--model",
        str(model),
        "--as-of",
        "2026-06-01",
        "--out",
        str(out),
        "--quiet",
        env={"CHURNML_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_text().startswith("customer_id,")
