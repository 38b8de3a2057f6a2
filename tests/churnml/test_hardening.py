"""What an attack on churnml's command line found (issue 13): state files readable by every
user of the machine, and tracebacks where a user's mistake deserves one line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.churnml.test_validation import INTERACTIONS, _replace_row, _write

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


@pytest.mark.usefixtures("open_umask")
def test_run_leaves_every_state_file_owner_only(tmp_path):
    home = tmp_path / "state"
    done = churnml("run", "--no-serve", "--quiet", env={"CHURNML_HOME": str(home)}, timeout=600)
    assert done.returncode == 0, done.stderr
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
