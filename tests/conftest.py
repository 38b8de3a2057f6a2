"""Shared fixtures: every test gets its own CHURNML_HOME and no tracking URI from outside."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("churnml-home")
    monkeypatch.setenv("CHURNML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("CHURNML_CUSTOMERS", "CHURNML_INTERACTIONS", "CHURNML_STRICT"):
        monkeypatch.delenv(name, raising=False)
    return home


# The real customer tables live in shared/, beside the repository root (as in CI).
REAL_TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
