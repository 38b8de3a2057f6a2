"""The sample-world simulator: customers, their service contacts and churn, day by day.

``generate_world`` writes ``customers``, ``interactions`` and ``oracle`` tables per
the data contract; ``SimulationParams`` holds every number behind the world, each
with its source (``shared/domain.md`` or a stated assumption).
"""

from churnml.simulator.params import SimulationParams, parameter_rows
from churnml.simulator.world import WorldSummary, generate_world

__all__ = ["SimulationParams", "WorldSummary", "generate_world", "parameter_rows"]
