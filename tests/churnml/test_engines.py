"""The local engine behind churnml.engines.Engine: the local functions' frames, and no Dask."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from churnml.engines import open_engine
from churnml.engines.local import LocalEngine
from churnml.engines.scoring import score_day
from churnml.errors import DataError
from churnml.settings import Settings
from churnml.validation import load_tables
from features import build_features

SAMPLE = Settings().customers.parent


def test_a_local_command_never_imports_dask() -> None:
    code = textwrap.dedent(
        """
        import sys
        from churnml.engines import open_engine
        from churnml.settings import Settings
        with open_engine(Settings.from_env({}), print) as engine:
            assert engine.name == "local", engine.name
            engine.latest_day()
        assert not [name for name in sys.modules if name.split(".")[0] in ("dask", "distributed")]
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_the_local_engine_reads_once_and_gives_the_local_frames(tmp_path) -> None:
    heard: list[str] = []
    with open_engine(Settings(home=tmp_path), heard.append) as engine:
        assert isinstance(engine, LocalEngine)
        tables = engine.tables()
        assert engine.tables() is tables
        expected = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
        pd.testing.assert_frame_equal(tables.customers, expected.customers)
        day = engine.latest_day()
        assert day == expected.interactions["started_at"].max().date()
        pd.testing.assert_frame_equal(
            engine.features(day), build_features(expected.customers, expected.interactions, day)
        )
    assert heard == []  # the sample breaks no rule


@pytest.mark.slow
def test_the_days_scores_are_the_models_scores(tmp_path) -> None:
    from serving.loading import load_served_model
    from tests.serving.helpers import trained_home

    home = trained_home()
    predictor = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(home / 'mlflow.db').resolve()}"
    ).predictor
    engine = LocalEngine(Settings(home=tmp_path))
    day = dt.date(2026, 6, 24)
    tables = engine.tables()
    expected = predictor.score_tables(tables.customers, tables.interactions, day)
    pd.testing.assert_frame_equal(score_day(engine, predictor, day), expected, check_exact=True)
    with pytest.raises(DataError, match="no customer is active on 1990-01-01"):
        score_day(engine, predictor, dt.date(1990, 1, 1))
