"""A local Dask cluster of 2 worker processes, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from churnml.engines.dask import cluster


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    # A nanny may give up restarting a worker that keeps dying; the scheduler then fails
    # the waiting tasks after this many seconds without a worker (the tests that kill
    # every worker end either way, with one line).
    with cluster.client(None, workers=2, no_workers_timeout=20) as client:
        yield client
