"""Small simulated worlds shared by the simulator tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from churnml.simulator import SimulationParams, WorldSummary, generate_world


@dataclass
class World:
    summary: WorldSummary
    customers: pd.DataFrame
    interactions: pd.DataFrame
    oracle: pd.DataFrame
    retention_contacts: pd.DataFrame


def load_world(summary: WorldSummary) -> World:
    folder = summary.out_dir
    customers = pd.read_csv(folder / "customers.csv", dtype={"customer_id": str})
    interactions = pd.read_csv(folder / "interactions.csv", dtype={"agent_id": str})
    oracle = pd.read_csv(folder / "oracle.csv")
    for column in ("signup_date", "churned_at"):
        customers[column] = pd.to_datetime(customers[column], format="%Y-%m-%d")
    interactions["started_at"] = pd.to_datetime(interactions["started_at"], utc=True)
    oracle["as_of"] = pd.to_datetime(oracle["as_of"], format="%Y-%m-%d")
    contacts = pd.read_csv(folder / "retention_contacts.csv", dtype={"customer_id": str})
    contacts["contacted_at"] = pd.to_datetime(contacts["contacted_at"], format="%Y-%m-%d")
    return World(summary, customers, interactions, oracle, contacts)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """3000 customers over 240 days: enough contacts to see every mechanism.

    The oracle uses fewer replicates than the default to keep the suite fast.
    """
    out = Path(tmp_path_factory.mktemp("small_world"))
    params = SimulationParams(oracle_replicates=60)
    return load_world(generate_world(3000, 240, 11, out, params=params))
