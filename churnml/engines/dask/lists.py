"""The day's risk list of tables on a Dask cluster."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from churnml.engines.dask.tables import DaskTables

if TYPE_CHECKING:
    from serving.loading import ServedModel
    from serving.risklist import RiskListResult
    from serving.settings import RiskListSettings
    from serving.store import RiskListStore


def make_risk_list_dask(
    tables: DaskTables,
    as_of: dt.date,
    served: ServedModel,
    store: RiskListStore,
    settings: RiskListSettings,
    **options: Any,
) -> RiskListResult:
    """``serving.risklist.make_risk_list`` of tables on a Dask cluster, with its keyword
    ``options``: the same stored list, by the same ``make_risk_list_on`` over the engine.
    Each partition builds its features and runs ``score_customers`` on its worker. The
    tables' retention contacts (when read with them) are the list's unless ``options``
    give others."""
    from churnml.engines.dask import DaskEngine
    from serving.risklist import make_risk_list_on

    options.setdefault("retention_contacts", tables.retention_contacts)
    engine = DaskEngine.on_tables(tables)
    return make_risk_list_on(engine, as_of, served, store, settings, **options)
