"""The validated tables on the cluster, partitioned by customer.

Both tables are split by ``hash(customer_id) % partitions`` (``shuffle.buckets``), and
partition j of the customers is paired with partition j of the interactions. Rows keep
their table order inside a partition and carry their row number in the table (``ROW``),
so ties in ``started_at`` break as in the local engine and results go back in its order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from churnml.engines.dask.cluster import cluster_errors
from features.build import INTERACTION_COLUMNS_USED

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

ROW = "__churnml_row__"  # the row's number in its table (0-based, as validation counts)
REASON = "__churnml_reason__"  # why a row is set aside; missing when it is kept
# The interaction columns build_features reads: all the kept partitions hold.
INTERACTION_COLUMNS = INTERACTION_COLUMNS_USED


@dataclass
class DaskTables:
    """Validated tables on the cluster: the kept rows, partitioned by customer (partition j
    of each table holds the same customers), with what was set aside.

    ``customers`` has every column of the validated customers table; ``interactions`` the
    columns ``build_features`` reads. Both carry the row's number in its table (column
    ``ROW``), which puts the results back in the local engine's order."""

    client: Client
    customers: dd.DataFrame
    interactions: dd.DataFrame
    partitions: int
    customer_rows: int
    interaction_rows: int
    categories: dict[str, tuple[str, ...]]  # text columns of the customers: sorted values
    set_aside: dict[str, int]
    quarantine_files: tuple[Path, ...] = ()
    meta: dict[str, pd.DataFrame] = field(default_factory=dict)
    # the retention team's table after its rules (small: kept on the client), or None
    retention_contacts: pd.DataFrame | None = None

    def customers_frame(self) -> pd.DataFrame:
        """The kept customers as one pandas frame, in table order: ``Tables.customers``."""
        with cluster_errors("collecting the customers"):
            frame = self.client.compute(self.customers).result()
        frame = frame.sort_values(ROW, kind="stable").drop(columns=[ROW])
        return frame.reset_index(drop=True)
