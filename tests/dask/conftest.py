"""A local Dask cluster of 2 worker processes, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from churnml import dask_engine


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    with dask_engine.client(None, workers=2) as client:
        yield client
