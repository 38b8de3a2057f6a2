"""Where the work runs: one interface, a local and a Dask implementation.

An engine reads and checks the two input tables once, and runs per-customer work on them:
the features of a day, a function on every partition with a model's features, training.
The commands and the day's scores and risk list (``churnml.engines.scoring``) are written
once over this interface, so both engines give the same frames by the same code.

``open_engine(settings, report)`` gives the engine that ``settings.engine`` names. The Dask
engine is imported only when asked for: a local command never imports dask.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from churnml.settings import Settings
    from features.settings import FeatureSettings
    from training.pipeline import TrainResult
    from training.settings import TrainingSettings

__all__ = ["Engine", "open_engine"]


class Engine(Protocol):
    """Where the input tables are read and checked, and per-customer work runs."""

    name: str  # "local" or "dask"

    def tables(self) -> Any:
        """The validated tables, read and checked once (set-aside rows reported once)."""
        ...

    def latest_day(self) -> dt.date | None:
        """The day (UTC) of the latest kept contact; None when no contact is kept."""
        ...

    def features(self, day: dt.date, settings: FeatureSettings | None = None) -> pd.DataFrame:
        """``features.build_features``' frame of ``day``: same index, columns and order."""
        ...

    def map(
        self, function: Callable[..., Any], model: Any, day: dt.date, *args: Any, what: str = ...
    ) -> list[Any]:
        """``function(model, features, customers, interactions, *args)`` on every partition,
        with the model's features of ``day``: one result per partition, in partition order
        (local: one). ``customers``' index orders its rows as the customers table does,
        across partitions too (the local engine's is the table's RangeIndex)."""
        ...

    def train(
        self,
        settings: TrainingSettings,
        *,
        as_of: dt.date | None,
        report: Callable[[str], None] | None,
    ) -> TrainResult:
        """Train on time snapshots of the tables, log to MLflow, register the model."""
        ...


@contextmanager
def open_engine(settings: Settings, report: Callable[[str], None]) -> Iterator[Engine]:
    """``settings.engine == "local"``: LocalEngine; ``"dask"``: DaskEngine on
    ``settings.scheduler`` or a LocalCluster of ``settings.dask_workers`` (closed on exit).
    ``report`` hears what was set aside (once)."""
    if settings.engine == "dask":
        from churnml.engines.dask import DaskEngine

        with DaskEngine.open(settings, report) as engine:
            yield engine
        return
    from churnml.engines.local import LocalEngine

    yield LocalEngine(settings, report)
