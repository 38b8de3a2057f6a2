"""The Dask engine: the same reading, checking, features and scores on a Dask cluster.

The package is split by concern, in the order a table goes through it:

* ``cluster``: the client (a scheduler, or a LocalCluster) and the one-line errors of a
  cluster that fails (``DaskEngineError``);
* ``reading``: the plan of pieces each task reads (Parquet row groups, files of a folder);
* ``checking``: every piece typed and checked with ``churnml.validation``, the rows sent to
  their customer's partition (``shuffle``), the rules across rows checked per customer
  partition, and validation's policy applied (stop, or set aside into the same quarantine
  files); ``tables`` holds what is kept on the cluster;
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

import pandas as pd

from churnml.engines.dask.checking import load_tables_dask
from churnml.engines.dask.cluster import client
from churnml.engines.dask.partitions import build_features_dask, latest_contact_day, map_with_model
from churnml.engines.dask.tables import DaskTables

if TYPE_CHECKING:
    from distributed import Client

    from churnml.settings import Settings
    from features.settings import FeatureSettings
    from model.predictor import Predictor
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
        settings: Settings | None,
        report: Callable[[str], None] | None = None,
        *,
        partitions: int | None = None,
        tables: DaskTables | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.report = report
        self.partitions = partitions
        self._tables = tables
        self._latest: tuple[dt.date | None] | None = None

    @classmethod
    def on_tables(cls, tables: DaskTables) -> DaskEngine:
        """An engine on tables already read and checked on their cluster."""
        return cls(tables.client, None, tables=tables)

    @classmethod
    @contextmanager
    def open(
        cls, settings: Settings, report: Callable[[str], None] | None = None
    ) -> Iterator[DaskEngine]:
        """An engine on ``settings.scheduler``, or on a LocalCluster of
        ``settings.dask_workers`` workers closed on exit."""
        with client(settings.scheduler, settings.dask_workers) as connected:
            yield cls(connected, settings, report)

    def tables(self) -> DaskTables:
        if self._tables is None:
            if self.settings is None:
                raise TypeError("DaskEngine.on_tables: the tables are given, not read")
            self._tables = load_tables_dask(
                self.settings.customers,
                self.settings.interactions,
                client=self.client,
                partitions=self.partitions,
                retention_contacts_path=self.settings.retention_contacts,
                quarantine_dir=self.settings.quarantine_dir,
                strict=self.settings.strict,
                report=self.report,
            )
        return self._tables

    def latest_day(self) -> dt.date | None:
        # One pass over the cluster's contacts: the default day and the list's freshness
        # check both ask.
        if self._latest is None:
            self._latest = (latest_contact_day(self.tables()),)
        return self._latest[0]

    def features(self, day: dt.date, settings: FeatureSettings | None = None) -> pd.DataFrame:
        return build_features_dask(self.tables(), day, settings)

    def map(
        self,
        function: Callable[..., Any],
        predictor: Predictor,
        day: dt.date,
        *args: Any,
        what: str = "computing",
    ) -> list[Any]:
        return map_with_model(
            function, predictor, self.tables(), pd.Timestamp(day), *args, what=what
        )

    def train(
        self,
        settings: TrainingSettings,
        *,
        as_of: dt.date | None,
        report: Callable[[str], None] | None,
    ) -> TrainResult:
        from churnml.engines.dask.train import train_dask
        from churnml.errors import ConfigError

        if settings.horizons:
            raise ConfigError(
                "--horizons trains on the local engine for now (the time-to-churn model's "
                "period rows are not built on the cluster); drop --engine dask or --horizons"
            )
        if report is not None and self.settings is not None and self.settings.retention_contacts:
            report(
                "the Dask engine trains the churn model without the retention contacts (no "
                "call-effect head, calls not left out of the target); train with --engine "
                "local for them"
            )
        return train_dask(self.tables(), settings, as_of=as_of, report=report)
