"""The sample-world simulator: customers, their service contacts and churn, day by day.

``generate_world`` writes ``customers``, ``interactions``, ``retention_contacts`` (the
simulated retention team's picks and calls) and ``oracle`` tables per the data
contract; ``SimulationParams`` holds every number behind the world, each with its
source (``shared/domain.md`` or a stated assumption).

``generate_world`` and ``WorldSummary`` are imported on first use, so that the command
line can read the parameters' defaults without loading numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from churnml.simulator.params import SimulationParams, parameter_rows

if TYPE_CHECKING:
    from churnml.simulator.world import WorldSummary, generate_world

__all__ = ["SimulationParams", "WorldSummary", "generate_world", "parameter_rows"]


def __getattr__(name: str) -> Any:
    if name in ("WorldSummary", "generate_world"):
        from churnml.simulator import world

        return getattr(world, name)
    raise AttributeError(f"module 'churnml.simulator' has no attribute {name!r}")
