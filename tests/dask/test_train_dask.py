"""``churnml train --engine dask``: snapshots built on the cluster are the local engine's
frame, row for row; lightgbm.dask registers a model about as good as the local one, which
loads and scores without Dask; the folds fail with the local engine's one-line errors."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from churnml.cli import main
from churnml.engines.dask import cluster
from churnml.engines.dask.checking import load_tables_dask
from churnml.engines.dask.train import build_snapshots_dask, train_dask
from churnml.errors import ChurnmlError, DaskEngineError, DataError
from churnml.validation import load_tables
from tests.dask.helpers import AS_OF, SAMPLE, sample_text
from tests.serving.helpers import trained_home
from training import TrainingSettings, train_from_tables
from training.snapshots import build_snapshot_frame, default_as_of, default_builder, snapshot_plan

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_tables():
    return load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")


@pytest.fixture(scope="module")
def tables(dask_client):
    return load_tables_dask(
        SAMPLE / "customers.csv", SAMPLE / "interactions.csv", client=dask_client
    )


@pytest.mark.parametrize("cap", [150_000, 1_500], ids=["all-customers", "sampled-days"])
def test_the_snapshot_frame_on_dask_is_the_local_one(tables, local_tables, cap) -> None:
    """With cap 1500 every snapshot day is sampled, which only the whole table's count of
    active customers decides (each of the 4 partitions holds fewer than 1500)."""
    settings = TrainingSettings(backtest_folds=1, max_snapshot_customers=cap)
    customers, interactions = local_tables.customers, local_tables.interactions
    first = pd.Timestamp(interactions["started_at"].min())
    _folds, needed = snapshot_plan(first, default_as_of(interactions), settings)
    local, sampling = build_snapshot_frame(
        customers, interactions, needed, default_builder(), settings
    )
    source = build_snapshots_dask(tables, needed, settings)
    try:
        pd.testing.assert_frame_equal(source.frame(), local, check_exact=True)
        assert source.sampling == sampling
        assert source.snapshot_rows == len(local)
    finally:
        source.release()
    assert tables.partitions > 1
    if cap < 150_000:
        assert sampling.sampled_snapshots == len(needed)
        assert tables.customer_rows / tables.partitions < cap


@pytest.fixture(scope="module")
def trained_on_dask(tmp_path_factory):
    """``churnml train --engine dask --backtest 1`` (the console script, which starts its own
    LocalCluster of 2 workers; their output is the command's) in a copy of trained_home(),
    whose registry holds the local engine's model of the same settings as version 1 (the
    champion): the Dask model becomes version 2."""
    home = tmp_path_factory.mktemp("dask-train") / "home"
    shutil.copytree(trained_home(), home)
    with contextlib.closing(sqlite3.connect(home / "mlflow.db")) as db, db:
        # New runs' artifacts under the copy, not the shared original.
        old, new = (TrainingSettings(home=h).artifact_root.as_uri() for h in (trained_home(), home))
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE artifact_location = ?", (new, old)
        )
    env = {**os.environ, "CHURNML_HOME": str(home)}
    for name in ("MLFLOW_TRACKING_URI", "CHURNML_ENGINE", "CHURNML_SCHEDULER"):
        env.pop(name, None)
    churnml = Path(sys.executable).with_name("churnml")
    done = subprocess.run(
        [str(churnml), "train", "--engine", "dask", "--backtest", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return home, done.returncode, done.stdout, done.stderr


def _run(home: Path, version: str) -> mlflow.entities.Run:
    client = mlflow.MlflowClient(TrainingSettings(home=home).resolved_tracking_uri())
    entry = client.get_model_version("churn-risk", version)
    return client.get_run(entry.run_id)


def test_the_cli_trains_on_dask_and_registers_the_model(trained_on_dask) -> None:
    home, code, out, err = trained_on_dask
    assert code in (0, None), err
    assert "interactions model, version 2" in out and "registered as version 2" in out
    assert "[LightGBM]" not in out + err  # the workers' network chatter stays quiet
    params = _run(home, "2").data.params
    assert params["engine"] == "dask"
    assert params["dask.workers"] == "2" and int(params["dask.partitions"]) >= 2
    assert params["lgbm.tree_learner"] == "data" and "lgbm.num_threads" not in params
    train_rows = params["fold1.train_rows"].split(" of ")
    assert train_rows[0] == train_rows[1]  # every training row, no max_train_rows sample
    assert int(params["snapshot_rows"]) > int(train_rows[0])


def test_the_dask_model_is_as_good_as_the_local_one(trained_on_dask) -> None:
    home, code, _out, err = trained_on_dask
    assert code in (0, None), err
    local, dask = _run(home, "1").data, _run(home, "2").data
    assert (local.params["engine"], dask.params["engine"]) == ("local", "dask")
    for table in ("customers", "interactions"):  # both engines saw the same rows
        key = f"{table}_content_hash"
        assert dask.params[key] == local.params[key] and dask.params[key].startswith("rowsum64:")
    local, dask = local.metrics, dask.metrics
    assert abs(dask["test_roc_auc"] - local["test_roc_auc"]) <= 0.02
    assert dask["test_roc_auc"] > dask["test_rule_roc_auc"]
    assert dask["test_ece"] < 0.02


def test_the_dask_model_loads_and_scores_without_dask(trained_on_dask, tmp_path) -> None:
    """``churnml score`` and the service's loader, in a process where Dask cannot be
    imported."""
    home, code, _out, err = trained_on_dask
    assert code in (0, None), err
    out = tmp_path / "scores.csv"
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("dask", "distributed"):
            sys.modules[name] = None  # import fails
        from serving.loading import load_served_model
        from training import TrainingSettings
        served = load_served_model(
            "models:/churn-risk/2", TrainingSettings(home={str(home)!r}).resolved_tracking_uri()
        )
        print("loaded", type(served.model).__name__, served.model.kind)
        from churnml.cli import main
        try:
            main(["score", "--as-of", "{AS_OF}", "--model", "models:/churn-risk/2",
                  "--out", {str(out)!r}, "--quiet"])
        except SystemExit as exit:
            assert not exit.code, exit.code
        assert not [m for m in sys.modules if m == "dask" or m.startswith("dask.")
                    if sys.modules[m] is not None]
        """
    )
    env = {**os.environ, "CHURNML_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("CHURNML_ENGINE", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded ChurnModel interactions" in done.stdout
    scores = pd.read_csv(out, keep_default_na=False)
    assert len(scores) > 2000 and scores["customer_id"].is_unique
    assert (scores["model_version"] == 2).all()
    assert scores["churn_probability"].between(0, 1).all()
    assert (scores["reasons"] != "").mean() > 0.5


def _error(call) -> ChurnmlError:
    with pytest.raises(ChurnmlError) as raised:
        call()
    return raised.value


def test_too_little_history_fails_as_on_the_local_engine(tables, local_tables, tmp_path) -> None:
    settings = TrainingSettings(home=tmp_path, backtest_folds=1)
    early = "2025-04-01"
    local = _error(
        lambda: train_from_tables(
            local_tables.customers, local_tables.interactions, settings, as_of=early
        )
    )
    dask = _error(lambda: train_dask(tables, settings, as_of=early))
    assert type(dask) is type(local) is DataError
    assert str(dask) == str(local) and "\n" not in str(dask)
    assert "training with 1 backtest fold and a 30-day horizon needs" in str(dask)


def test_a_fold_without_churners_fails_as_on_the_local_engine(dask_client, tmp_path) -> None:
    """600 customers of the sample world, none of whom ever leaves."""
    customers, interactions = sample_text()
    customers = customers.iloc[:600].assign(churned_at="")
    interactions = interactions[interactions["customer_id"].isin(customers["customer_id"])]
    paths = (tmp_path / "customers.csv", tmp_path / "interactions.csv")
    customers.to_csv(paths[0], index=False)
    interactions.to_csv(paths[1], index=False)
    settings = TrainingSettings(home=tmp_path / "home", backtest_folds=1)
    local_tables = load_tables(*paths)
    local = _error(
        lambda: train_from_tables(local_tables.customers, local_tables.interactions, settings)
    )
    tables = load_tables_dask(*paths, client=dask_client)
    dask = _error(lambda: train_dask(tables, settings))
    assert type(dask) is type(local) is DataError
    assert str(dask) == str(local) and "\n" not in str(dask)
    assert "fold 1 train snapshots" in str(dask) and "no customer churned" in str(dask)


def test_a_customer_table_with_engine_dask_is_refused_in_one_line(capsys, tmp_path) -> None:
    table = tmp_path / "table.csv"
    pd.DataFrame({"x": [1, 2], "churned": [0, 1]}).to_csv(table, index=False)
    with pytest.raises(SystemExit) as exited:
        main(["train", "--table", str(table), "--label", "churned", "--engine", "dask"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert "--table trains on the local engine" in err


def _die_after_three_rounds() -> None:
    """On a worker: its next LightGBM fit kills the worker process after 3 rounds, once
    every machine is connected."""
    from churnml.engines.dask import train as dask_train

    original = dask_train._QuietClassifier.fit

    def fit(self, *args, **kwargs):
        def die(env) -> None:
            if env.iteration == 3:
                os._exit(1)

        kwargs["callbacks"] = [*kwargs.get("callbacks", []), die]
        return original(self, *args, **kwargs)

    dask_train._QuietClassifier.fit = fit


def test_a_worker_dying_during_the_fit_is_one_line_and_registers_nothing(tmp_path) -> None:
    settings = TrainingSettings(home=tmp_path / "home", backtest_folds=1)
    with cluster.client(None, workers=2) as client:
        tables = load_tables_dask(
            SAMPLE / "customers.csv", SAMPLE / "interactions.csv", client=client
        )
        client.run(_die_after_three_rounds, workers=[sorted(client.nthreads())[1]])
        error = _error(lambda: train_dask(tables, settings))
    assert isinstance(error, DaskEngineError) and "\n" not in str(error)
    assert str(error).startswith("training LightGBM on the cluster failed")
    client = mlflow.MlflowClient(settings.resolved_tracking_uri())
    assert not client.search_model_versions("name = 'churn-risk'")
