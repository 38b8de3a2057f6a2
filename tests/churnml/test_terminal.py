"""What a user's terminal shows, from the real ``churnml`` console script: a normal run
without MLflow's colour codes, CloudPickle warning or registry chatter, one outcome line
after training, advice that leads somewhere for too little data, and one line for a busy
port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REAL_TABLES
from tests.serving.helpers import SAMPLE

CHURNML = str(Path(sys.executable).with_name("churnml"))
ROOT = Path(__file__).resolve().parents[2]
# What MLflow prints on its own when a model is logged and registered.
CHATTER = (
    "\x1b[",
    "CloudPickle",
    "Successfully registered model",
    "Created version",
    "Add type hints",
)


def run(home: Path, *args: str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CHURNML_HOME": str(home), **env}
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [CHURNML, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_training_prints_no_mlflow_chatter_and_one_outcome_line(tmp_path: Path) -> None:
    table = REAL_TABLES / "telecom_mlc_churn.csv"
    done = run(tmp_path, "train", "--table", str(table), "--label", "churn")
    assert done.returncode == 0, done.stderr
    terminal = done.stdout + done.stderr
    assert [word for word in CHATTER if word in terminal] == []
    outcome = [line for line in done.stdout.splitlines() if line.startswith("registered as")]
    assert len(outcome) == 1, done.stdout
    assert "champion" in outcome[0]
    assert "champion: v" not in done.stdout  # said once, by the outcome line


def test_too_little_data_says_how_many_months_and_churners_training_needs(
    tmp_path: Path,
) -> None:
    customers = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    few = customers[customers["churned_at"].isna()].head(10)
    contacts = pd.read_csv(SAMPLE / "interactions.csv", dtype=str)
    few.to_csv(tmp_path / "customers.csv", index=False)
    contacts[contacts["customer_id"].isin(few["customer_id"])].to_csv(
        tmp_path / "interactions.csv", index=False
    )
    done = run(
        tmp_path,
        "train",
        "--customers",
        str(tmp_path / "customers.csv"),
        "--interactions",
        str(tmp_path / "interactions.csv"),
        "--quiet",
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "no customer churned" in done.stderr
    assert "training needs at least 9 churners spread over the last 10 months" in done.stderr
    assert [word for word in CHATTER if word in done.stderr] == []


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(
            tmp_path,
            "serve",
            "--port",
            str(port),
            timeout=120,
            CHURNML_API_KEYS="a-key-of-sixteen-chars-or-more",
        )
    assert done.returncode == 2
    assert done.stderr == (
        f"churnml: error: port {port} on 127.0.0.1 is already in use (another churnml serve?): "
        "stop that process or pick another --port\n"
    )
