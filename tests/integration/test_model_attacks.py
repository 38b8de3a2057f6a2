"""Issue 13's attacks on the model files and versions, on the real commands and the real
``churnml serve`` (2 workers) over 127.0.0.1: workers serving mixed versions after a reload
(#3), a truncated ``booster.txt`` (#2), a crafted ``python_model.pkl`` (#11).

The module trains its own registry (the shared one of the serving tests stays untouched):
v1 trained and promoted; v2 and v3 are more versions of the same files.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.attacks import worker_processes
from tests.integration.servers import churnml_serve
from tests.integration.test_service_http import call
from tests.serving.helpers import ADMIN_KEY, AS_OF, SAMPLE, payload_customers, service_env

pytestmark = pytest.mark.slow
START_SECONDS = 180
NAME = "churn-risk"
CHURNML = str(Path(sys.executable).with_name("churnml"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CHURNML_HOME whose registry holds churn-risk v1 (trained here) as champion."""
    from churnml.validation import load_tables
    from training import TrainingSettings, promote, train_from_tables

    home = tmp_path_factory.mktemp("model-attacks-home")
    tables = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    settings = TrainingSettings(home=home, backtest_folds=1)
    result = train_from_tables(tables.customers, tables.interactions, settings)
    if result.champion_version is None:
        promote(result.model_version, settings, reason="model attack tests")
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **service_env(home, **extra)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _registry(home: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _pyfunc_folder(home: Path) -> Path:
    """The registered pyfunc's own folder (every version of this module shares its files)."""
    (mlmodel,) = home.glob("mlartifacts/**/MLmodel")
    return mlmodel.parent


def _booster(home: Path) -> Path:
    return _pyfunc_folder(home) / "artifacts" / "model" / "booster.txt"


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = _env(home, CHURNML_SERVE_WORKERS="2")
    with churnml_serve(env, log_path, start_seconds=START_SECONDS) as url:
        yield url


def _scored_version(url: str) -> str:
    body = {"customers": payload_customers(1), "as_of": AS_OF}
    status, raw = call(url + "/score", method="POST", body=body)
    assert status == 200, raw
    (score,) = json.loads(raw)["scores"]
    return score["model_version"]


def _versions_over(url: str, rounds: int, seconds: float, *, at_once: int = 4) -> list[str]:
    """What the /score and /model calls of ``rounds`` rounds over ``seconds`` say they used;
    ``at_once`` calls at a time, so that both workers answer some (one idle worker tends to
    take every call made one by one)."""

    def one(index: int) -> str:
        if index % 2:
            return json.loads(call(url + "/model")[1])["version"]
        return _scored_version(url)

    seen = []
    with ThreadPoolExecutor(at_once) as pool:
        for _ in range(rounds):
            seen += pool.map(one, range(at_once))
            time.sleep(seconds / rounds)
    return seen


def _live_workers(port: int) -> list:
    """The worker processes, or none while one is a zombie (killed, not yet reaped)."""
    import psutil

    try:
        return worker_processes(port)
    except psutil.Error:
        return []


def _promote(home: Path, version: str) -> None:
    from training import TrainingSettings, promote

    promote(version, TrainingSettings(home=home), reason="model attack tests")


# -- #3: every worker serves the version the reload named ---------------------------------
@pytest.fixture(scope="module")
def versions(home: Path) -> list[str]:
    """v2 and v3 registered besides v1: the same files, registered again."""
    import mlflow

    from churnml.tracking import mlflow_store

    first = _registry(home).get_model_version(NAME, "1")
    with mlflow_store(f"sqlite:///{home / 'mlflow.db'}"):
        for _ in range(2):
            mlflow.register_model(first.source, NAME)
    return ["1", "2", "3"]


def test_every_worker_answers_with_the_version_the_reload_named(
    server: str, home: Path, versions: list[str]
) -> None:
    assert len(worker_processes(urlsplit(server).port)) == 2  # CHURNML_SERVE_WORKERS=2
    _promote(home, "2")
    assert set(_versions_over(server, 10, 1)) == {"1"}, "a promotion alone changes nothing"

    status, raw = call(server + "/admin/reload", method="POST", body={}, key=ADMIN_KEY)
    assert status == 200, raw
    assert json.loads(raw)["model"]["version"] == "2"
    # The alias moves on, but no reload names v3: no worker may go and read it.
    _promote(home, "3")
    assert set(_versions_over(server, 30, 3)) == {"2"}


def test_a_worker_restarted_after_a_promotion_serves_what_the_others_serve(
    server: str, home: Path, versions: list[str]
) -> None:
    port = urlsplit(server).port
    (serving,) = set(_versions_over(server, 5, 0.5))
    _promote(home, next(v for v in versions if v != serving))  # the alias moves, no reload
    victim = worker_processes(port)[0]
    victim.kill()
    deadline = time.monotonic() + START_SECONDS
    while not (
        len(workers := _live_workers(port)) == 2 and victim.pid not in {w.pid for w in workers}
    ):
        assert time.monotonic() < deadline, "BentoML did not restart the killed worker"
        time.sleep(0.5)
    time.sleep(10)  # the new worker loads its model before it takes calls
    assert set(_versions_over(server, 20, 2)) == {serving}


# -- #2: a truncated booster ------------------------------------------------------------
@pytest.fixture
def truncated_booster(home: Path) -> Iterator[Path]:
    booster = _booster(home)
    whole = booster.read_bytes()
    booster.write_bytes(whole[: len(whole) // 2])
    try:
        yield booster
    finally:
        booster.write_bytes(whole)


def test_reloading_a_truncated_booster_is_a_409_and_the_old_model_keeps_serving(
    server: str, truncated_booster: Path
) -> None:
    serving = json.loads(call(server + "/model")[1])["version"]
    for _ in range(3):  # each reload lands on one of the two workers
        status, raw = call(server + "/admin/reload", method="POST", body={}, key=ADMIN_KEY)
        assert status == 409, raw
        answer = json.loads(raw)
        assert answer["reloaded"] is False and answer["model"]["version"] == serving
        assert "booster.txt does not match the sha256" in answer["message"]
    assert set(_versions_over(server, 10, 1)) == {serving}


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHURNML, *args], env=_env(home), capture_output=True, text=True, timeout=300
    )


def _one_error_line(completed: subprocess.CompletedProcess[str]) -> str:
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("churnml: error: "), completed.stderr[-2000:]
    return lines[0]


def test_a_truncated_champion_stops_every_command_with_one_line(
    home: Path, truncated_booster: Path, tmp_path: Path
) -> None:
    tables = ["--customers", str(SAMPLE / "customers.csv")]
    tables += ["--interactions", str(SAMPLE / "interactions.csv")]
    for command in (
        ["risk-list", *tables, "--as-of", AS_OF, "--quiet"],
        ["score", *tables, "--as-of", AS_OF, "--out", str(tmp_path / "s.csv"), "--quiet"],
    ):
        line = _one_error_line(_run(home, *command))
        assert f"models:/{NAME}@champion (version " in line, line
        assert "booster.txt does not match the sha256" in line and "churnml train" in line


# -- #11: loading a model never runs its pickle ------------------------------------------
class _WritesMarker:
    """Unpickled, it writes ``marker``: what a crafted python_model.pkl could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 (pickle's protocol)
        return (exec, (f"open({str(self.marker)!r}, 'w').write('the pickle ran')",))


def _plant_pickle(folder: Path, marker: Path) -> None:
    pkl = folder / "python_model.pkl"
    pkl.write_bytes(pickle.dumps(_WritesMarker(marker)))
    # The control: unpickling this file does write the marker.
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))", pkl],
        check=True,
    )
    assert marker.exists()
    marker.unlink()


def test_score_with_a_model_folder_never_runs_its_crafted_pickle(
    home: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(_pyfunc_folder(home), tmp_path / "model"))
    marker = tmp_path / "pickle-ran"
    _plant_pickle(folder, marker)
    out = tmp_path / "scores.csv"
    completed = _run(
        home,
        "score",
        "--model",
        str(folder),
        "--customers",
        str(SAMPLE / "customers.csv"),
        "--interactions",
        str(SAMPLE / "interactions.csv"),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--quiet",
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert out.stat().st_size > 0
    assert not marker.exists()


def test_the_champion_check_of_training_never_runs_a_crafted_pickle(
    home: Path, tmp_path: Path
) -> None:
    from training import TrainingSettings
    from training.promotion import load_champion

    pkl = _pyfunc_folder(home) / "python_model.pkl"
    original = pkl.read_bytes()
    marker = tmp_path / "pickle-ran"
    try:
        _plant_pickle(pkl.parent, marker)
        champion = load_champion(TrainingSettings(home=home))
    finally:
        pkl.write_bytes(original)
    assert champion.feature_names
    assert not marker.exists()


def test_score_with_a_folder_that_is_not_a_churnml_model_is_one_line(
    home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "someone-elses-model"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
        "    python_model: python_model.pkl\n"
    )
    marker = tmp_path / "pickle-ran"
    _plant_pickle(folder, marker)
    completed = _run(
        home,
        "score",
        "--model",
        str(folder),
        "--customers",
        str(SAMPLE / "customers.csv"),
        "--interactions",
        str(SAMPLE / "interactions.csv"),
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "s.csv"),
    )
    line = _one_error_line(completed)
    assert f"{folder} is not a churnml model" in line
    assert not marker.exists()
