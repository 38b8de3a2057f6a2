from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.serving.helpers import environment, service_env, trained_home


@pytest.fixture(scope="session")
def registry_home() -> Path:
    return trained_home()


@pytest.fixture(scope="module")
def client(registry_home: Path) -> Iterator[TestClient]:
    """The service's ASGI app, with the real model, behind the real key gate."""
    with environment(service_env(registry_home)):
        from serving.service import ChurnService

        with TestClient(ChurnService.to_asgi()) as test_client:
            yield test_client
