"""``churnml features --engine dask`` and ``churnml score --engine dask`` write what the local
engine writes (each command starts its own LocalCluster of 2 workers)."""

from __future__ import annotations

import pandas as pd
import pytest

from churnml.cli import main
from tests.dask.helpers import AS_OF
from tests.serving.helpers import trained_home

pytestmark = pytest.mark.slow


def call(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return exited.value.code, capsys.readouterr().err


def test_features_and_scores_on_dask_equal_the_local_engine(capsys, tmp_path, monkeypatch) -> None:
    for engine in ("local", "dask"):
        code, err = call(
            capsys,
            "features",
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / f"f-{engine}.parquet"),
            "--engine",
            engine,
            "--quiet",
        )
        assert code in (0, None), err
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "f-dask.parquet"),
        pd.read_parquet(tmp_path / "f-local.parquet"),
        check_exact=True,
    )

    monkeypatch.setenv("CHURNML_HOME", str(trained_home()))
    for engine in ("local", "dask"):
        code, err = call(
            capsys,
            "score",
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / f"s-{engine}.csv"),
            "--engine",
            engine,
            "--quiet",
        )
        assert code in (0, None), err
    local = pd.read_csv(tmp_path / "s-local.csv", keep_default_na=False)
    dask = pd.read_csv(tmp_path / "s-dask.csv", keep_default_na=False)
    assert list(dask.columns) == list(local.columns)
    assert (dask["customer_id"] == local["customer_id"]).all()
    assert (dask["churn_probability"] - local["churn_probability"]).abs().max() <= 1e-9
    assert (dask["reasons"] == local["reasons"]).all() and (
        dask["risk_band"] == local["risk_band"]
    ).all()


def test_an_unknown_engine_is_refused_in_one_line(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CHURNML_ENGINE", "spark")
    code, err = call(capsys, "features", "--as-of", AS_OF, "--out", str(tmp_path / "f.csv"))
    assert code == 2 and "engine 'spark'" in err and err.count("\n") == 1
