"""Train against a real ``mlflow server`` over HTTP and load the champion back from it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.conftest import REAL_TABLES
from tests.integration.servers import free_port, running
from training import TrainingSettings, score_table, train_from_table

REAL = REAL_TABLES
START_SECONDS = 90


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real tracking server on 127.0.0.1 with its own SQLite store and artifact folder."""
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_cli),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "server-artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(
        command,
        ready_url=f"{url}/health",
        log_path=tmp_path / "server.log",
        start_seconds=START_SECONDS,
    ):
        yield url


@pytest.mark.slow
def test_training_over_http_registers_a_champion_that_loads_back(
    mlflow_server: str, tmp_path: Path
) -> None:
    settings = TrainingSettings(home=tmp_path / "home", tracking_uri=mlflow_server)
    result = train_from_table(REAL / "telecom_mlc_churn.csv", "churn", settings)
    assert result.champion_version == result.model_version
    assert not (tmp_path / "home" / "mlflow.db").exists()  # nothing went to the embedded store

    mlflow.set_tracking_uri(mlflow_server)
    champion = mlflow.pyfunc.load_model("models:/churn-risk@champion")
    table = pd.read_csv(REAL / "telecom_mlc_churn.csv", dtype=str).head(50)
    scores = champion.predict(table)
    assert len(scores) == 50 and scores["churn_probability"].between(0, 1).all()

    served = score_table(table, settings)  # the scoring entry point, through the same server
    pd.testing.assert_series_equal(served["churn_probability"], scores["churn_probability"])
    assert any((tmp_path / "server-artifacts").rglob("booster.txt"))
