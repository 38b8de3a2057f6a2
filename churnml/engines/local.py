"""The local engine: both tables in one process, as pandas frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnml.validation import Tables, load_tables

if TYPE_CHECKING:
    from churnml.settings import Settings
    from features.settings import FeatureSettings
    from model.predictor import Predictor
    from training.pipeline import TrainResult
    from training.settings import TrainingSettings


class LocalEngine:
    """``churnml.validation.load_tables``, ``features.build_features`` and the local
    training, on the tables of ``settings``; the tables are read on first use."""

    name = "local"

    def __init__(
        self,
        settings: Settings,
        report: Callable[[str], None] | None = None,
        *,
        tables: Tables | None = None,
    ) -> None:
        self.settings = settings
        self.report = report
        self._tables = tables

    def tables(self) -> Tables:
        if self._tables is None:
            self._tables = load_tables(
                self.settings.customers,
                self.settings.interactions,
                retention_contacts_path=self.settings.retention_contacts,
                quarantine_dir=self.settings.quarantine_dir,
                strict=self.settings.strict,
                report=self.report,
            )
        return self._tables

    def latest_day(self) -> dt.date | None:
        interactions = self.tables().interactions
        if interactions.empty:
            return None
        return interactions["started_at"].max().date()

    def features(self, day: dt.date, settings: FeatureSettings | None = None) -> pd.DataFrame:
        from features import build_features

        tables = self.tables()
        return build_features(tables.customers, tables.interactions, day, settings)

    def map(
        self,
        function: Callable[..., Any],
        predictor: Predictor,
        day: dt.date,
        *args: Any,
        what: str = "computing",
    ) -> list[Any]:
        """One partition: the whole tables, with the model's features of ``day``."""
        tables = self.tables()
        features = predictor.model.features_from_tables(
            tables.customers, tables.interactions, pd.Timestamp(day)
        )
        return [function(predictor, features, tables.customers, tables.interactions, *args)]

    def train(
        self,
        settings: TrainingSettings,
        *,
        as_of: dt.date | None,
        report: Callable[[str], None] | None,
    ) -> TrainResult:
        from training import train_from_tables

        tables = self.tables()
        return train_from_tables(
            tables.customers,
            tables.interactions,
            settings,
            as_of=as_of,
            report=report,
            retention_contacts=tables.retention_contacts,
        )
