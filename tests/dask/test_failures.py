"""A worker that dies while features are built: Dask runs its task again elsewhere and
the result is complete and correct; a task that kills every worker it runs on ends in
one clear line. Never a partial result."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed.diagnostics.plugin import WorkerPlugin

from churnml.engines.dask import cluster, partitions
from churnml.engines.dask.checking import load_tables_dask
from churnml.engines.dask.partitions import build_features_dask
from churnml.errors import DaskEngineError
from churnml.validation import load_tables
from features import build_features
from tests.dask.helpers import AS_OF, SAMPLE

pytestmark = pytest.mark.slow

PLUGIN = "churnml-test-crash"


def _patch(marker: str | None) -> None:
    """On a worker: make the Dask partitions' build_features kill the worker process, once (the
    first call to create ``marker``) or always (``marker`` None)."""
    original = getattr(partitions.build_features, "original", partitions.build_features)

    def crashing(*args, **kwargs):
        if marker is None:
            os._exit(1)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return original(*args, **kwargs)
        os._exit(1)  # the first call anywhere: the worker dies in the middle of its task

    crashing.original = original
    partitions.build_features = crashing


def _restore() -> None:
    partitions.build_features = getattr(
        partitions.build_features, "original", partitions.build_features
    )


class CrashEveryWorker(WorkerPlugin):
    """Installed on every worker, those the nanny restarts too."""

    name = PLUGIN

    def setup(self, worker) -> None:
        _patch(None)

    def teardown(self, worker) -> None:
        _restore()


@pytest.fixture(scope="module")
def tables(dask_client):
    return load_tables_dask(
        SAMPLE / "customers.csv", SAMPLE / "interactions.csv", client=dask_client, partitions=6
    )


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    local = load_tables(SAMPLE / "customers.csv", SAMPLE / "interactions.csv")
    return build_features(local.customers, local.interactions, AS_OF)


def test_a_worker_killed_while_building_features_changes_nothing(
    dask_client, tables, expected, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"
    pids = set(dask_client.run(os.getpid).values())
    dask_client.run(_patch, str(marker))
    try:
        features = build_features_dask(tables, AS_OF)
    finally:
        dask_client.run(_restore)
    assert marker.exists(), "no worker died: the test proved nothing"
    assert set(dask_client.run(os.getpid).values()) != pids  # the nanny started a new one
    pd.testing.assert_frame_equal(features, expected, check_exact=True)


def test_a_task_that_kills_every_worker_ends_in_one_clear_line(
    dask_client, tables, expected
) -> None:
    dask_client.register_plugin(CrashEveryWorker())
    try:
        with pytest.raises(DaskEngineError) as error:
            build_features_dask(tables, AS_OF)
    finally:
        dask_client.unregister_worker_plugin(PLUGIN)
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == 1
    assert message.startswith(
        (
            "building features failed: Dask workers died 4 times while",
            "building features failed: no Dask worker was alive for 20 s",
        )
    )
    assert "no partial result" in message
    # The tables' partitions died with the workers; on fresh workers it all works again.
    dask_client.restart()
    again = load_tables_dask(
        SAMPLE / "customers.csv", SAMPLE / "interactions.csv", client=dask_client, partitions=6
    )
    pd.testing.assert_frame_equal(build_features_dask(again, AS_OF), expected, check_exact=True)


def test_a_cluster_left_without_workers_ends_in_one_clear_line() -> None:
    """No worker alive (all gone, none restarted): the scheduler's no-workers timeout fails
    the waiting tasks, and the computation ends in one line instead of waiting for ever."""
    with cluster.client(None, workers=1, no_workers_timeout=3) as client:
        tables = load_tables_dask(
            SAMPLE / "customers.csv", SAMPLE / "interactions.csv", client=client, partitions=2
        )
        client.cluster.scale(0)  # the nanny and its worker go: no restart
        deadline = time.monotonic() + 30
        while client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.scheduler_info()["workers"]
        with pytest.raises(DaskEngineError) as error:
            build_features_dask(tables, AS_OF)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("building features failed: no Dask worker was alive for 3 s")
    assert "no partial result" in message
