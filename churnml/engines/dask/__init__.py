"""The Dask engine: the same reading, checking, features and scores on a Dask cluster.

The package is split by concern, in the order a table goes through it:

* ``cluster``: the client (a scheduler, or a LocalCluster) and the one-line errors of a
  cluster that fails (``DaskEngineError``);
* ``reading``: the plan of pieces each task reads (Parquet row groups, files of a folder);
* ``checking``: every piece typed and checked with ``churnml.validation``, the rows split by
  customer, the rules across rows checked per customer partition, and validation's policy
  applied (stop, or set aside into the same quarantine files);
* ``partitions``: the features of each customer partition and any per-partition work with
  a model (``map_with_model``);
* ``train``: training on the cluster (snapshots on the workers, ``lightgbm.dask``);
* ``lists``: the day's risk list of tables on the cluster.

``DaskEngine`` puts them behind ``churnml.engines.Engine``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from churnml import dask_engine

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from churnml.settings import Settings
    from features.settings import FeatureSettings
    from training.pipeline import TrainResult
    from training.settings import TrainingSettings

__all__ = ["DaskEngine"]


class DaskEngine:
    """The tables of ``settings`` on the cluster of ``client``, read and checked on first
    use and kept there, partitioned by customer."""

    name = "dask"

    def __init__(
        self,
        client: Client,
        settings: Settings,
        report: Callable[[str], None] | None = None,
        *,
        partitions: int | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.report = report
        self.partitions = partitions
        self._tables: dask_engine.DaskTables | None = None

    @classmethod
    @contextmanager
    def open(
        cls, settings: Settings, report: Callable[[str], None] | None = None
    ) -> Iterator[DaskEngine]:
        """An engine on ``settings.scheduler``, or on a LocalCluster of
        ``settings.dask_workers`` workers closed on exit."""
        with dask_engine.client(settings.scheduler, settings.dask_workers) as connected:
            yield cls(connected, settings, report)

    def tables(self) -> dask_engine.DaskTables:
        if self._tables is None:
            self._tables = dask_engine.load_tables_dask(
                self.settings.customers,
                self.settings.interactions,
                client=self.client,
                partitions=self.partitions,
                quarantine_dir=self.settings.quarantine_dir,
                strict=self.settings.strict,
                report=self.report,
            )
        return self._tables

    def latest_day(self) -> dt.date | None:
        return dask_engine.latest_contact_day(self.tables())

    def features(self, day: dt.date, settings: FeatureSettings | None = None) -> pd.DataFrame:
        return dask_engine.build_features_dask(self.tables(), day, settings)

    def map(
        self,
        function: Callable[..., Any],
        model: Any,
        day: dt.date,
        *args: Any,
        what: str = "computing",
    ) -> list[Any]:
        import pandas as pd

        return dask_engine.map_with_model(
            function, model, self.tables(), pd.Timestamp(day), *args, what=what
        )

    def train(
        self,
        settings: TrainingSettings,
        *,
        as_of: dt.date | None,
        report: Callable[[str], None] | None,
    ) -> TrainResult:
        from training.dask_train import train_dask

        return train_dask(self.tables(), settings, as_of=as_of, report=report)
