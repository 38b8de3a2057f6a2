"""A fold's rows out of the snapshot frame: where the frame lives (``SnapshotSource``: one
pandas frame here, ``LocalSnapshots``, or partitions on a Dask cluster) and what a fold
hands the fit and the evaluation (``FoldData``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from features import drift
from model.artifact import ChurnModel
from training import learners
from training.evaluate import HeldOutRows
from training.fit import BoosterFit, FitInput
from training.settings import TrainingSettings
from training.snapshots import (
    EVALUATED,
    LABEL,
    RULE_CONTACTS,
    SAMPLE_RATE,
    SEGMENT_EVAL,
    SNAPSHOT_DATE,
    Fold,
    SnapshotSampling,
    check_churners,
    evaluated_rows,
    fold_rows,
    training_weights,
)

NOT_FEATURES = {
    CUSTOMER_ID,
    LABEL,
    RULE_CONTACTS,
    SEGMENT_EVAL,
    SNAPSHOT_DATE,
    SAMPLE_RATE,
    EVALUATED,
}
PROFILE_CHUNK_COLUMNS = 8  # feature columns copied at a time for the reference statistics


@dataclass
class FoldData:
    """One fold's rows on the client. ``parts``: the feature columns of "train" (the fit's
    rows; with ``booster_fit`` a sample for the logistic baseline), "validation" and
    "test"; ``test``: the test rows' rule count, snapshot date and segment;
    ``train_rows``: the fold's train_rows parameter; ``available_rows``: every training
    row of the fold's days (before any ``max_train_rows`` sample)."""

    parts: dict[str, pd.DataFrame]
    labels: dict[str, np.ndarray]
    train_weight: np.ndarray | None
    validation_groups: np.ndarray
    test: pd.DataFrame
    capacity: int
    train_rows: str
    booster_fit: BoosterFit | None = None
    available_rows: int = 0

    def fit_input(self, categorical: list[str], *, tune: bool) -> FitInput:
        """What the fit takes of these rows."""
        return FitInput(
            parts=self.parts,
            labels=self.labels,
            categorical=categorical,
            validation_groups=self.validation_groups,
            train_weight=self.train_weight,
            booster_fit=self.booster_fit,
            tune=tune,
        )

    def held_out(self) -> HeldOutRows:
        """What the metrics need of the test rows besides their features."""
        test = self.test
        return HeldOutRows(
            labels=self.labels["test"],
            capacity=self.capacity,
            rule=test[RULE_CONTACTS].to_numpy(dtype="float64"),
            segments=test[SEGMENT_EVAL].to_numpy() if SEGMENT_EVAL in test else None,
            dates=test[SNAPSHOT_DATE].to_numpy(),
        )


class SnapshotSource(Protocol):
    """Where the snapshot frame lives and how a fold's parts come out of it: one pandas
    frame in this process (``LocalSnapshots``), or partitions on a Dask cluster
    (``churnml.engines.dask.train``). ``train_on_snapshots`` does the rest, the same for both."""

    feature_names: list[str]
    categorical: list[str]
    snapshot_rows: int
    sampling: SnapshotSampling

    def check(self, fold: Fold) -> None:
        """``check_churners`` of the fold."""

    def fold(self, fold: Fold) -> FoldData:
        """The fold's rows."""

    def categories(self) -> dict[str, list[str]]:
        """The categories of each categorical feature, as text."""

    def feature_frame(self) -> pd.DataFrame:
        """A frame with the feature columns and dtypes (for ``FeatureSettings.freeze``)."""

    def profile(self, fold: Fold) -> tuple[float, dict[str, Any], dict[str, Any]]:
        """The fold's training churn rate (weighted) and the reference statistics and drift
        distribution of its uniform training rows (``fold`` produces the model and was
        passed to ``fold()`` before)."""

    def test_frame(self, fold: Fold) -> pd.DataFrame:
        """The fold's test rows, every column (``fold`` as for ``profile``)."""


class LocalSnapshots:
    """The snapshot frame in this process: the local engine."""

    def __init__(
        self, snapshots: pd.DataFrame, sampling: SnapshotSampling, settings: TrainingSettings
    ) -> None:
        self.snapshots = snapshots
        self.sampling = sampling
        self.settings = settings
        self.snapshot_rows = len(snapshots)
        self.feature_names = [c for c in snapshots.columns if c not in NOT_FEATURES]
        self.categorical = [
            c for c in self.feature_names if isinstance(snapshots[c].dtype, pd.CategoricalDtype)
        ]
        self.features_only = snapshots[self.feature_names]  # a view: rows are copied per part
        self.test_columns = [
            c for c in (RULE_CONTACTS, SNAPSHOT_DATE, SEGMENT_EVAL) if c in snapshots
        ]
        self.all_labels = snapshots[LABEL].to_numpy(dtype="int8")

    def check(self, fold: Fold) -> None:
        check_churners(self.snapshots, fold, self.settings)

    def fold(self, fold: Fold) -> FoldData:
        snapshots, settings = self.snapshots, self.settings
        available = self._train_rows(fold)
        keep, weight = learners.training_sample(
            self.all_labels[available],
            training_weights(snapshots, available),
            settings.max_train_rows,
            settings.seed,
        )
        rows = {
            "train": available if keep is None else available[keep],
            "validation": np.flatnonzero(evaluated_rows(snapshots, fold.validation)),
            "test": self._test_rows(fold),
        }
        return FoldData(
            parts={part: self.features_only.take(part_rows) for part, part_rows in rows.items()},
            labels={part: self.all_labels[part_rows] for part, part_rows in rows.items()},
            train_weight=weight,
            validation_groups=snapshots[CUSTOMER_ID].take(rows["validation"]).to_numpy(),
            test=snapshots[self.test_columns].take(rows["test"]),
            capacity=capacity_on_sample(settings.capacity, snapshots, rows["test"]),
            train_rows=f"{len(rows['train'])} of {len(available)}"
            + (", weighted" if weight is not None else ""),
            available_rows=len(available),
        )

    def categories(self) -> dict[str, list[str]]:
        return {c: list(self.snapshots[c].cat.categories.astype(str)) for c in self.categorical}

    def feature_frame(self) -> pd.DataFrame:
        return self.features_only

    def profile(self, fold: Fold) -> tuple[float, dict[str, Any], dict[str, Any]]:
        train = self._train_rows(fold)
        weight = training_weights(self.snapshots, train)
        train_labels = self.all_labels[train]
        base_rate = (
            float(train_labels.mean())
            if weight is None
            else float(np.sum(weight * train_labels) / np.sum(weight))
        )
        # The usual values and bins of the features, on the uniform part of the fold's
        # training rows (every row when nothing is sampled), a few columns at a time.
        uniform_train = train[self.snapshots[EVALUATED].to_numpy()[train]]
        reference, distribution = training_profile(self.features_only, uniform_train)
        return base_rate, reference, distribution

    def test_frame(self, fold: Fold) -> pd.DataFrame:
        return self.snapshots.take(self._test_rows(fold))

    def _train_rows(self, fold: Fold) -> np.ndarray:
        """Positions of every row of the fold's training snapshots."""
        return np.flatnonzero(fold_rows(self.snapshots, fold.train))

    def _test_rows(self, fold: Fold) -> np.ndarray:
        """Positions of the evaluated rows of the fold's test snapshots."""
        return np.flatnonzero(evaluated_rows(self.snapshots, fold.test))


def capacity_on_sample(capacity: int, snapshots: pd.DataFrame, rows: np.ndarray) -> int:
    """K for precision and recall at K on sampled test snapshots: the same share of the day's
    customers as K of all of them (K times the sampling rate); K itself without sampling."""
    rate = float(np.mean(snapshots[SAMPLE_RATE].to_numpy()[rows])) if len(rows) else 1.0
    return capacity if rate >= 1 else max(1, round(capacity * rate))


def training_profile(
    features: pd.DataFrame, rows: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    """``reference_statistics`` and ``drift.distribution`` of ``features.take(rows)``,
    computed on a few columns at a time (both treat columns one by one, and the drift
    sample depends on the row count only), so that the rows are never copied whole."""
    reference: dict[str, dict[str, float]] = {}
    distribution: dict[str, dict[str, Any]] = {}
    for start in range(0, features.shape[1], PROFILE_CHUNK_COLUMNS):
        part = features.iloc[:, start : start + PROFILE_CHUNK_COLUMNS].take(rows)
        reference.update(ChurnModel.reference_statistics(part))
        distribution.update(drift.distribution(part))
    return reference, distribution
