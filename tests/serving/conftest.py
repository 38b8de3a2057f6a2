from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from serving.loading import load_served_model
from serving.store import RiskListStore
from tests.serving.helpers import environment, service_env, trained_home


@pytest.fixture(scope="session")
def registry_home() -> Path:
    return trained_home()


@pytest.fixture(scope="module")
def served(registry_home: Path):
    """The champion as the list and the service load it."""
    return load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )


@pytest.fixture()
def store(tmp_path: Path) -> RiskListStore:
    """An empty list store in SQLite, the test's own."""
    return RiskListStore(f"sqlite:///{tmp_path / 'lists.db'}")


@pytest.fixture(scope="module")
def client(registry_home: Path) -> Iterator[TestClient]:
    """The service's ASGI app, with the real model, behind the real key gate."""
    with environment(service_env(registry_home)):
        from serving.service import ChurnService

        with TestClient(ChurnService.to_asgi()) as test_client:
            yield test_client
