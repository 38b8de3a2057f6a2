"""Training on a Dask cluster: ``churnml train --engine dask``.

``train_dask(tables, settings)`` trains on the validated tables that
``churnml.engines.dask.checking.load_tables_dask`` left on the cluster, and logs and registers the
model exactly as ``training.pipeline.train_from_tables`` does: the same snapshots, folds,
calibrator, baselines, metrics, plots, champion comparison, promotion gate and MLflow run.
Only where the snapshot rows live and how LightGBM fits differ:

* **Snapshots on the workers.** Each customer partition runs the local engine's own
  ``build_snapshot_frame`` with its feature builder (``features.ContactHistory``), with the
  categories pinned to the whole table's (``partitions.pinned_settings``). A customer's
  snapshot rows depend on its own rows only; what is decided on the whole table is decided
  on the whole table: whether a snapshot day is sampled (on the table's count of active
  customers that day, summed over the partitions first), float32 or float64 per column and
  the category lists (united over the parts afterwards). Collected, the parts are the
  local engine's frame, row for row (``DaskSnapshots.frame``).
* **LightGBM on every training row.** ``lightgbm.dask.DaskLGBMClassifier`` trains
  data-parallel (``tree_learner=data``): each worker holds its share of the fold's
  training rows, one part per worker, and the workers add up their histograms for every
  split, so that all of them grow the same trees. There is no ``max_train_rows`` sample:
  memory scales with the workers. The snapshot sampling's weights are kept.
* **Early stopping.** ``lightgbm.dask`` does not support it: each worker would evaluate its
  own share of the validation rows, stop at its own round, and the others would wait for
  it (LightGBM issues #3712, #6351). Here every worker gets the whole validation fold as
  its eval set: the workers hold the same trees, evaluate them on the same rows and stop at
  the same round, by the local rule (``learners.EARLY_STOPPING_ROUNDS`` rounds without a
  lower validation log loss). The booster that comes back is an ordinary ``lgb.Booster``.

What comes to the client, and why:

* Per fold, the validation and test rows (the evaluated rows of their days: at most
  ``max_snapshot_customers`` per day): the calibrator, the metrics, the plots and the
  champion comparison work on them, as locally.
* Per fold, the training rows for the logistic baseline: all of them up to
  ``learners.LOGISTIC_MAX_ROWS`` (then it is the local engine's fit), else a seeded sample of
  that many (``_row_draws``: a hash of customer and day, whatever the partitioning).
* For fold 1, the uniform training rows for the model's reference statistics and drift bins:
  all of them up to ``features.drift.MAX_ROWS`` (the local values), else a seeded sample
  of that many (the local engine takes the medians over all rows and the drift bins over a
  sample of the same size).
* Counts per snapshot day (rows, churners, sampling rate): the label checks of the folds,
  the training churn rate, the run's parameters.

Only ``fit`` needs Dask: the model is the local engine's ``ChurnModel`` (a LightGBM text
model and a JSON spec), loaded and served without Dask.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.engines.dask.cluster import cluster_errors
from churnml.engines.dask.partitions import build_features_dask, pinned_settings
from churnml.engines.dask.tables import INTERACTION_COLUMNS, ROW, DaskTables
from churnml.errors import DaskEngineError, DataError
from churnml.io import ContentHash, content_hash
from training.settings import TrainingSettings
from training.snapshots import (
    EVALUATED,
    LABEL,
    SAMPLE_RATE,
    SNAPSHOT_DATE,
    Fold,
    SnapshotSampling,
    build_snapshot_frame,
    count_active,
    default_builder,
    training_weights,
)

if TYPE_CHECKING:
    from distributed import Client, Future

    from model.artifact import ChurnModel
    from training.folds import FoldData
    from training.pipeline import TrainResult


# --------------------------------------------------------------------------- entry point


def train_dask(
    tables: DaskTables,
    settings: TrainingSettings,
    *,
    as_of: pd.Timestamp | str | None = None,
    feature_settings: Any = None,
    report: Callable[[str], None] | None = None,
) -> TrainResult:
    """``train_from_tables`` on the cluster of ``tables``: snapshots built on the workers,
    LightGBM fitted with ``lightgbm.dask`` on every training row, one MLflow run, the
    model registered as the local engine registers it."""
    from training.pipeline import train_on_snapshots
    from training.snapshots import snapshot_plan

    say = report or (lambda message: None)
    clock = {"start": time.perf_counter()}
    if tables.interaction_rows == 0:
        raise DataError("interactions: the table has no contacts; train needs service contacts")
    first_contact, last_contact = _contact_span(tables)
    as_of = (
        pd.Timestamp(last_contact).normalize() if as_of is None else pd.Timestamp(as_of).normalize()
    )
    folds, needed = snapshot_plan(first_contact, as_of, settings)
    say(
        f"building features for {len(needed)} snapshots "
        f"({needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d}) on {tables.partitions} partitions"
    )
    source = build_snapshots_dask(tables, needed, settings, feature_settings)
    try:
        clock["features"] = time.perf_counter()
        data = _data_params(tables, source)
        return train_on_snapshots(
            source,
            folds=folds,
            needed=needed,
            as_of=as_of,
            settings=settings,
            feature_settings=feature_settings,
            champion_features=functools.partial(_champion_features, tables),
            data_params=data,
            train_sampling=(
                "none: lightgbm.dask fits on every training row (max_train_rows is the local "
                "engine's); the logistic baseline on a seeded sample of at most "
                f"{_logistic_rows()} rows"
            ),
            say=say,
            clock=clock,
        )
    finally:
        source.release()


def _data_params(tables: DaskTables, source: DaskSnapshots) -> dict[str, Any]:
    """The run's parameters about the data and the cluster."""
    threads = tables.client.nthreads()
    return {
        "engine": "dask",
        "dask.scheduler": tables.client.scheduler.address,
        "dask.workers": len(threads),
        "dask.threads": sum(threads.values()),
        "dask.partitions": tables.partitions,
        "customers_rows": tables.customer_rows,
        "interactions_rows": tables.interaction_rows,
        # The tables are never in one process: no SHA-256 of their bytes; the content
        # hashes are the local engine's for the same rows.
        "customers_sha256": "(not on the dask engine: see customers_content_hash)",
        "interactions_sha256": "(not on the dask engine: see interactions_content_hash)",
        "customers_content_hash": source.content["customers"].text,
        "interactions_content_hash": source.content["interactions"].text,
    }


def _contact_span(tables: DaskTables) -> tuple[pd.Timestamp, pd.Timestamp]:
    started = tables.interactions["started_at"]
    with cluster_errors("reading the contact days"):
        low, high = tables.client.compute([started.min(), started.max()], sync=True)
    return pd.Timestamp(low), pd.Timestamp(high)


def _champion_features(tables: DaskTables, champion: ChurnModel, day: pd.Timestamp) -> pd.DataFrame:
    """``champion.features_from_tables`` of the tables on the cluster."""
    return build_features_dask(tables, day, champion.build_settings)


def _logistic_rows() -> int:
    from training.learners import LOGISTIC_MAX_ROWS

    return LOGISTIC_MAX_ROWS


# --------------------------------------------------------------------------- snapshots


def build_snapshots_dask(
    tables: DaskTables,
    days: Sequence[pd.Timestamp],
    settings: TrainingSettings,
    feature_settings: Any = None,
) -> DaskSnapshots:
    """The snapshot frame of ``days`` on the cluster, one part per customer partition: what
    ``build_snapshot_frame(customers, interactions, days, default_builder(...), settings)``
    gives locally (``DaskSnapshots.frame()`` collects it in the local order)."""
    client = tables.client
    days = sorted(pd.Timestamp(d) for d in days)
    pinned = pinned_settings(tables, feature_settings)
    with cluster_errors("building the training snapshots"):
        customers = client.compute(tables.customers.to_delayed())
        interactions = client.compute(tables.interactions.to_delayed())
        active, content = _whole_table_facts(client, customers, interactions, days)
        raw = _submit_snapshot_parts(
            client, customers, interactions, days, pinned, settings, active
        )
        del customers, interactions  # the tables' partitions free once the parts are built
        summaries = client.gather(client.map(_summary, raw))
        dtypes = _unified_dtypes([s["empty"] for s in summaries])
        parts = [client.submit(_conform, part, dtypes, pure=False) for part in raw]
        del raw
        client.gather(client.map(len, parts))  # every part built, or the error here
    counts = pd.concat([s["counts"] for s in summaries]).groupby(level=[0, 1]).sum().sort_index()
    rates = pd.concat([s["rates"] for s in summaries]).groupby(level=0).first().sort_index()
    sampling = _sampling(settings.max_snapshot_customers, settings.seed, active, counts)
    return DaskSnapshots(
        client=client,
        settings=settings,
        parts=parts,
        meta=_conform(summaries[0]["empty"], dtypes),
        counts=counts,
        rates=rates,
        sampling=sampling,
        content=content,
    )


def _whole_table_facts(
    client: Client,
    customers: list[Future],
    interactions: list[Future],
    days: list[pd.Timestamp],
) -> tuple[np.ndarray, dict[str, ContentHash]]:
    """The whole table's active customers per day (sampling is decided on them) and the
    content hashes of both tables, summed over the partitions."""
    facts = client.gather(client.map(_table_facts, customers, interactions, days=days))
    active = np.sum([f[0] for f in facts], axis=0)
    content = {
        "customers": sum((f[1] for f in facts), ContentHash()),
        "interactions": sum((f[2] for f in facts), ContentHash()),
    }
    return active, content


def _submit_snapshot_parts(
    client: Client,
    customers: list[Future],
    interactions: list[Future],
    days: list[pd.Timestamp],
    pinned: Any,
    settings: TrainingSettings,
    active: np.ndarray,
) -> list[Future]:
    """One snapshot part per partition, partition j on worker j mod W (sorted), where the
    fits take their rows from (``_training_parts``): the tables' partitions move once, the
    snapshot rows never."""
    workers = sorted(client.nthreads())
    return [
        client.submit(
            _snapshot_part,
            part_customers,
            part_interactions,
            days,
            pinned,
            settings,
            active,
            workers=[workers[j % len(workers)]] if workers else None,
            allow_other_workers=True,
            pure=False,
        )
        for j, (part_customers, part_interactions) in enumerate(
            zip(customers, interactions, strict=True)
        )
    ]


def _sampling(cap: int, seed: int, active: np.ndarray, counts: pd.DataFrame) -> SnapshotSampling:
    """What the snapshot sampling kept, from the whole table's counts per day."""
    return SnapshotSampling(
        cap=cap,
        seed=seed,
        active_rows=int(active.sum()),
        kept_rows=int(counts["rows"].sum()),
        evaluated_rows=int(counts.xs(True, level=1)["rows"].sum())
        if True in counts.index.get_level_values(1)
        else 0,
        sampled_snapshots=int((active > cap).sum()),
        min_rate=min((float(cap / n) if n > cap else 1.0 for n in active), default=1.0),
    )


def _table_facts(
    customers: pd.DataFrame, interactions: pd.DataFrame, days: list[pd.Timestamp]
) -> tuple[np.ndarray, ContentHash, ContentHash]:
    """A partition's active customers on each day and the content hashes of its rows
    (``churnml.io.content_hash``: they add up to the whole table's, as one process has it)."""
    customers = customers.drop(columns=[ROW])
    return (
        count_active(customers, days),
        content_hash(customers),
        content_hash(interactions, INTERACTION_COLUMNS),
    )


def _snapshot_part(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    days: list[pd.Timestamp],
    feature_settings: Any,
    settings: TrainingSettings,
    active_counts: np.ndarray,
) -> pd.DataFrame:
    """``build_snapshot_frame`` of one customer partition, with each row's customers-table
    row number (``ROW``)."""
    rows = customers[ROW].to_numpy()
    customers = customers.drop(columns=[ROW])
    frame, _sampling = build_snapshot_frame(
        customers,
        interactions.drop(columns=[ROW]),
        days,
        default_builder(feature_settings),
        settings,
        active_counts=active_counts,
    )
    frame[ROW] = rows[pd.Index(customers[CUSTOMER_ID]).get_indexer(frame[CUSTOMER_ID])]
    return frame


def _summary(frame: pd.DataFrame) -> dict[str, Any]:
    """What the client needs of a part: its empty frame (dtypes, categories), and rows and
    churners per snapshot day and evaluated flag, and each day's sampling rate."""
    counts = frame.groupby([SNAPSHOT_DATE, EVALUATED], observed=True)[LABEL].agg(
        rows="size", churners="sum"
    )
    rates = frame.groupby(SNAPSHOT_DATE, observed=True)[SAMPLE_RATE].first()
    return {"empty": frame.iloc[:0], "counts": counts.astype("int64"), "rates": rates}


def _unified_dtypes(empties: list[pd.DataFrame]) -> dict[str, Any]:
    """The dtype of each column over all parts, as the local frame store decides on all
    rows: float64 when any part needed it, categories united (sorted)."""
    columns = list(empties[0].columns)
    dtypes: dict[str, Any] = {}
    for column in columns:
        found = [empty[column].dtype for empty in empties]
        if all(dtype == found[0] for dtype in found):
            dtypes[column] = found[0]
        elif all(isinstance(d, pd.CategoricalDtype) for d in found):
            united = sorted(set().union(*(set(d.categories) for d in found)))
            dtypes[column] = pd.CategoricalDtype(united)
        elif all(d in (np.float32, np.float64) for d in found):
            dtypes[column] = np.dtype(np.float64)
        else:
            raise DaskEngineError(
                f"building the training snapshots failed: the partitions disagree on the type "
                f"of {column!r} ({', '.join(sorted({str(d) for d in found}))})"
            )
    return dtypes


def _conform(frame: pd.DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with the unified dtypes (itself when it has them: no copy)."""
    changed = {c: t for c, t in dtypes.items() if frame[c].dtype != t}
    if not changed:
        return frame
    frame = frame.copy(deep=False)
    for column, dtype in changed.items():
        frame[column] = frame[column].astype(dtype)
    return frame


def _mask(frame: pd.DataFrame, dates: Sequence[pd.Timestamp], evaluated_only: bool) -> np.ndarray:
    mask = frame[SNAPSHOT_DATE].isin(list(dates)).to_numpy().copy()  # writable
    if evaluated_only:
        mask &= frame[EVALUATED].to_numpy(dtype=bool)
    return mask


def _row_draws(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A number in [0, 1) per row: a seeded hash of its customer and day, the same on any
    partitioning (``snapshots.customer_draws`` for rows)."""
    keys = pd.DataFrame(
        {
            CUSTOMER_ID: frame[CUSTOMER_ID].astype("object").to_numpy(),
            SNAPSHOT_DATE: frame[SNAPSHOT_DATE].to_numpy().astype("int64"),
        }
    )
    hashed = pd.util.hash_pandas_object(
        keys, index=False, hash_key=f"{seed % 10**16:016d}"
    ).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _smallest_draws(
    frame: pd.DataFrame, dates: list[pd.Timestamp], evaluated_only: bool, k: int, seed: int
) -> np.ndarray:
    draws = _row_draws(frame.loc[_mask(frame, dates, evaluated_only)], seed)
    return np.partition(draws, k - 1)[:k] if len(draws) > k else draws


def _select(
    frame: pd.DataFrame,
    dates: list[pd.Timestamp],
    evaluated_only: bool,
    columns: list[str] | None,
    threshold: float | None,
    seed: int,
) -> pd.DataFrame:
    mask = _mask(frame, dates, evaluated_only)
    if threshold is not None:
        mask[mask] = _row_draws(frame.loc[mask], seed) <= threshold
    return frame.loc[mask] if columns is None else frame.loc[mask, columns]


def _training_rows(
    dates: list[pd.Timestamp], columns: list[str], weighted: bool, *frames: pd.DataFrame
) -> dict[str, Any]:
    """One machine's training rows of a fold, as ``lightgbm.dask._train_part`` takes them:
    "data" (the features), "label" and, when ``weighted``, "weight"."""
    parts = [frame.loc[_mask(frame, dates, False)] for frame in frames]
    rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    part = {
        "data": rows[columns].reset_index(drop=True),
        "label": rows[LABEL].reset_index(drop=True),
    }
    if weighted:  # training_weights' rule, also on a machine without sampled rows
        rate = rows[SAMPLE_RATE].to_numpy().astype(np.float64)
        part["weight"] = np.where(rows[LABEL].to_numpy() == 1, 1.0, 1.0 / rate)
    return part


def _class_counts(part: dict[str, Any]) -> tuple[int, int]:
    return len(part["label"]), int(part["label"].sum())


def _merged(*parts: dict[str, Any]) -> dict[str, Any]:
    merged = {
        "data": pd.concat([p["data"] for p in parts], ignore_index=True),
        "label": pd.concat([p["label"] for p in parts], ignore_index=True),
    }
    if "weight" in parts[0]:
        merged["weight"] = np.concatenate([p["weight"] for p in parts])
    return merged


class DaskSnapshots:
    """The snapshot frame on the cluster: ``training.folds.SnapshotSource`` for
    ``train_on_snapshots``. Each part carries the customers-table row (``ROW``) of its
    rows; collected rows are put in the local order (snapshot day, then table order)."""

    def __init__(
        self,
        *,
        client: Client,
        settings: TrainingSettings,
        parts: list[Future],
        meta: pd.DataFrame,
        counts: pd.DataFrame,
        rates: pd.Series,
        sampling: SnapshotSampling,
        content: dict[str, ContentHash] | None = None,
    ) -> None:
        from training.folds import NOT_FEATURES

        self.client = client
        self.settings = settings
        self.parts = parts
        self.meta = meta
        self.counts = counts  # (snapshot day, evaluated) -> rows, churners
        self.rates = rates  # snapshot day -> sampling rate (float32, as the frame holds it)
        self.sampling = sampling
        self.content = content or {}  # the tables' content hashes
        self.snapshot_rows = int(counts["rows"].sum())
        self.feature_names = [c for c in meta.columns if c not in NOT_FEATURES and c != ROW]
        self.categorical = [
            c for c in self.feature_names if isinstance(meta[c].dtype, pd.CategoricalDtype)
        ]
        self._training: tuple[int, list[tuple[str, Future]]] | None = None  # per worker
        self._validation: tuple[pd.DataFrame, list[Future]] | None = None  # on every worker
        self._main: dict[str, Any] = {}

    # -- SnapshotSource ---------------------------------------------------------------
    def check(self, fold: Fold) -> None:
        from training.snapshots import check_fold_labels

        check_fold_labels(
            fold,
            lambda part, dates: self._count(dates, evaluated_only=part != "train"),
            self.settings,
        )

    def fold(self, fold: Fold) -> FoldData:
        from training import learners
        from training.fit import BoosterFit
        from training.folds import FoldData, capacity_on_sample

        self._training = self._validation = None  # the previous fold's are released
        names = self.feature_names
        evaluation = self._collect([*fold.validation, *fold.test], evaluated_only=True)
        on_validation = evaluation[SNAPSHOT_DATE].isin(list(fold.validation)).to_numpy()
        validation = evaluation.loc[on_validation].reset_index(drop=True)
        test = evaluation.loc[~on_validation].reset_index(drop=True)
        del evaluation
        churners, rows = self._count(fold.train, evaluated_only=False)
        weighted = bool((self.rates.reindex(list(fold.train)).dropna() < 1).any())
        sample = self._collect(
            fold.train,
            evaluated_only=False,
            columns=[*names, LABEL, SNAPSHOT_DATE, SAMPLE_RATE, EVALUATED, CUSTOMER_ID],
            at_most=learners.LOGISTIC_MAX_ROWS,
            total=rows,
        )
        if fold.produces_model:
            self._main = {"fold": fold, "test": test, "train": sample, "train_rows": rows}
        return FoldData(
            parts={"train": sample[names], "validation": validation[names], "test": test[names]},
            labels={
                "train": sample[LABEL].to_numpy(dtype="int8"),
                "validation": validation[LABEL].to_numpy(dtype="int8"),
                "test": test[LABEL].to_numpy(dtype="int8"),
            },
            train_weight=training_weights(sample, np.arange(len(sample))),
            validation_groups=validation[CUSTOMER_ID].to_numpy(),
            test=test,
            capacity=capacity_on_sample(self.settings.capacity, test, np.arange(len(test))),
            train_rows=f"{rows} of {rows}" + (", weighted" if weighted else ""),
            booster_fit=BoosterFit(
                fit=functools.partial(self._fit, fold, weighted),
                rows=rows,
                positives=churners,
                # lightgbm.dask sets each worker's threads; data-parallel trees.
                params={"num_threads": None, "tree_learner": "data"},
                fit_rounds=functools.partial(self._fit_rounds, fold, weighted),
            ),
            available_rows=rows,
        )

    def categories(self) -> dict[str, list[str]]:
        return {c: list(self.meta[c].cat.categories.astype(str)) for c in self.categorical}

    def feature_frame(self) -> pd.DataFrame:
        return self.meta[self.feature_names]

    def profile(self, fold: Fold) -> tuple[float, dict[str, Any], dict[str, Any]]:
        from features import drift
        from training.folds import training_profile

        churners, rows, weight = 0, 0, 0.0
        for (day, _evaluated), count in self.counts.iterrows():
            if day in fold.train:
                negatives = int(count["rows"] - count["churners"])
                churners += int(count["churners"])
                rows += int(count["rows"])
                weight += negatives / np.float64(self.rates[day])
        weighted = bool((self.rates.reindex(list(fold.train)).dropna() < 1).any())
        base_rate = churners / rows if not weighted else churners / (churners + weight)
        _, uniform_rows = self._count(fold.train, evaluated_only=True)
        sample = self._main["train"]
        if not (len(sample) == uniform_rows == self._main["train_rows"]):
            # Sampled snapshots, or more rows than the logistic sample holds: the uniform rows.
            sample = self._collect(
                fold.train,
                evaluated_only=True,
                columns=[*self.feature_names, SNAPSHOT_DATE],
                at_most=drift.MAX_ROWS,
                total=uniform_rows,
            )
        self._main["train"] = None
        reference, distribution = training_profile(
            sample[self.feature_names], np.arange(len(sample))
        )
        return float(base_rate), reference, distribution

    def test_frame(self, fold: Fold) -> pd.DataFrame:
        return self._main["test"]

    # -- the rest ----------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """The whole snapshot frame on the client, in the local engine's order (tests)."""
        return self._collect(sorted(self.rates.index), evaluated_only=False)

    def release(self) -> None:
        """Let the cluster free the snapshot parts."""
        self.parts, self._training, self._validation, self._main = [], None, None, {}

    def _count(self, dates: Sequence[pd.Timestamp], *, evaluated_only: bool) -> tuple[int, int]:
        """Churners and rows of ``dates`` (the evaluated rows only, or all)."""
        days = self.counts.index.get_level_values(0).isin(list(dates))
        if evaluated_only:
            days &= self.counts.index.get_level_values(1) == True  # noqa: E712
        chosen = self.counts.loc[days]
        return int(chosen["churners"].sum()), int(chosen["rows"].sum())

    def _collect(
        self,
        dates: Sequence[pd.Timestamp],
        *,
        evaluated_only: bool,
        columns: list[str] | None = None,
        at_most: int | None = None,
        total: int | None = None,
    ) -> pd.DataFrame:
        """Rows of ``dates`` on the client, in the local order; at most ``at_most`` of them
        (the ``at_most`` smallest ``_row_draws``) when ``total`` is more."""
        client, seed = self.client, self.settings.seed
        dates = list(dates)
        wanted = None if columns is None else list(dict.fromkeys([*columns, SNAPSHOT_DATE, ROW]))
        with cluster_errors("collecting training rows"):
            threshold = None
            if at_most is not None and total is not None and total > at_most:
                smallest = client.gather(
                    client.map(
                        _smallest_draws,
                        self.parts,
                        dates=dates,
                        evaluated_only=evaluated_only,
                        k=at_most,
                        seed=seed,
                    )
                )
                threshold = float(np.partition(np.concatenate(smallest), at_most - 1)[at_most - 1])
            pieces = client.gather(
                client.map(
                    _select,
                    self.parts,
                    dates=dates,
                    evaluated_only=evaluated_only,
                    columns=wanted,
                    threshold=threshold,
                    seed=seed,
                )
            )
        frame = pd.concat(pieces, ignore_index=True) if pieces else self.meta
        frame = frame.sort_values([SNAPSHOT_DATE, ROW], kind="stable")
        keep = [c for c in frame.columns if c != ROW and (columns is None or c in columns)]
        return frame[keep].reset_index(drop=True)

    def _training_parts(self, fold: Fold, weighted: bool) -> list[tuple[str, Future]]:
        """The fold's training rows, one part per worker in sorted order (worker r takes the
        snapshot partitions r, r + W, ...), each with both classes (a part of one class
        is merged into another: LightGBM ignores a machine whose labels are all alike)."""
        if self._training is not None and self._training[0] == fold.number:
            return self._training[1]
        client = self.client
        workers = sorted(client.nthreads())
        if not workers:
            raise DaskEngineError("training on the cluster failed: the cluster has no worker")
        groups: dict[int, list[Future]] = {}
        for j, part in enumerate(self.parts):
            groups.setdefault(j % len(workers), []).append(part)
        with cluster_errors("selecting the training rows"):
            placed = [
                (
                    workers[r],
                    client.submit(
                        _training_rows,
                        list(fold.train),
                        self.feature_names,
                        weighted,
                        *members,
                        workers=[workers[r]],
                        allow_other_workers=True,
                        pure=False,
                    ),
                )
                for r, members in sorted(groups.items())
            ]
            sizes = client.gather(client.map(_class_counts, [part for _w, part in placed]))
            kept = [(w, f, n, p) for (w, f), (n, p) in zip(placed, sizes, strict=True) if n]
            alike = [item for item in kept if not 0 < item[3] < item[2]]
            if alike:
                mixed = [item for item in kept if 0 < item[3] < item[2]]
                target = max(mixed or kept, key=lambda item: item[2])
                others = [item[1] for item in alike if item is not target]
                merged = client.submit(
                    _merged, target[1], *others, workers=[target[0]], allow_other_workers=True
                )
                kept = [
                    (w, merged if f is target[1] else f, n, p)
                    for w, f, n, p in kept
                    if f is target[1] or all(f is not o for o in others)
                ]
                client.gather(client.map(_class_counts, [f for _w, f, _n, _p in kept]))
        placed = [(w, f) for w, f, _n, _p in kept]
        self._training = (fold.number, placed)
        return placed

    def _fit(
        self,
        fold: Fold,
        weighted: bool,
        valid_x: pd.DataFrame,
        valid_y: np.ndarray,
        params: dict[str, Any],
    ) -> lgb.Booster:
        placed = self._training_parts(fold, weighted)
        if self._validation is None or self._validation[0] is not valid_x:
            with cluster_errors("sending the validation rows"):
                shared = share_validation(self.client, valid_x, valid_y)
            self._validation = (valid_x, shared)
        return fit_on_cluster(
            self.client,
            placed,
            valid_x,
            valid_y,
            params,
            shared=self._validation[1],
            columns=self.feature_names,
        )

    def _fit_rounds(
        self, fold: Fold, weighted: bool, params: dict[str, Any], rounds: int
    ) -> lgb.Booster:
        """``rounds`` rounds on the fold's training rows, no validation (the refit)."""
        return fit_on_cluster(
            self.client,
            self._training_parts(fold, weighted),
            None,
            None,
            params,
            rounds=rounds,
            columns=self.feature_names,
        )


# --------------------------------------------------------------------------- LightGBM


def fit_on_cluster(
    client: Client,
    placed: list[tuple[str, Future]],
    valid_x: pd.DataFrame | None,
    valid_y: np.ndarray | None,
    params: dict[str, Any],
    *,
    shared: list[Future] | None = None,
    rounds: int | None = None,
    columns: Sequence[str],
) -> lgb.Booster:
    """``learners.fit_booster`` with ``lightgbm.dask``: one LightGBM machine per ``(worker,
    part)`` of ``placed``, ranked in that order, each part a dict of "data", "label" and
    maybe "weight" (``_training_rows``); early stopping on the validation rows, which every
    machine gets whole (see the module); ``shared``: ``share_validation``'s futures of
    them, when several fits use the same (tuning).

    This is ``DaskLGBMClassifier.fit`` (``lightgbm.dask._train``) with two changes that it
    cannot be asked for: the machines are ranked in the given order, not in the order of
    a set of task keys (machine r finds the bins of its share of the features on its own
    rows, so the rank order changed the model from run to run), and the eval set is the
    whole validation fold on every machine, not a share of it. Each machine runs
    ``lightgbm.dask._train_part``, the library's own (requirements.lock pins lightgbm).

    ``rounds``: exactly that many rounds, without validation rows or early stopping (the
    refit, ``learners.fit_booster_rounds``). ``columns``: the feature names in the order the
    machines see them (their known directions are the booster's monotone constraints)."""
    from training import learners

    params = {k: v for k, v in params.items() if k != "num_threads"}
    params = learners.monotone_params(params, list(columns))
    params["n_estimators"] = learners.MAX_BOOST_ROUNDS if rounds is None else rounds
    workers = [worker for worker, _part in placed]
    with cluster_errors("training LightGBM on the cluster"):
        if rounds is None:
            shared = shared or share_validation(client, valid_x, valid_y)
            parts = [
                client.submit(
                    _with_eval,
                    part,
                    *shared,
                    workers=[worker],
                    allow_other_workers=True,
                    pure=False,
                )
                for worker, part in placed
            ]
        else:
            parts = [part for _worker, part in placed]
        futures = _submit_machines(client, workers, parts, params, early_stopping=rounds is None)
        try:
            model = client.gather(futures)[0]
        except lgb.basic.LightGBMError as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise DaskEngineError(
                f"training LightGBM on the cluster failed ({reason}): a worker died, or the "
                "workers cannot reach each other (LightGBM connects them through a port on "
                "each); no model was kept"
            ) from None
    booster = model.booster_
    if rounds is None and "validation" not in booster.best_score:
        raise DaskEngineError(
            "training LightGBM on the cluster failed: no validation score came back"
        )
    return booster


def _submit_machines(
    client: Client,
    workers: list[str],
    parts: list[Future],
    params: dict[str, Any],
    *,
    early_stopping: bool = True,
) -> list[Future]:
    """One ``lightgbm.dask._train_part`` per worker, ranked in ``workers``' order; the
    model comes back from rank 0 (early stopping on the parts' eval set, or none)."""
    from urllib.parse import urlparse

    from lightgbm.dask import _assign_open_ports_to_workers, _train_part

    from training import learners

    threads = client.nthreads()
    sockets, ports = _assign_open_ports_to_workers(client=client, workers=workers)
    machines = ",".join(f"{urlparse(worker).hostname}:{ports[worker]}" for worker in workers)
    return [
        client.submit(
            _train_part,
            model_factory=_QuietClassifier,
            params={**params, "num_threads": threads.get(worker, 1)},
            list_of_parts=[part],
            machines=machines,
            local_listen_port=ports[worker],
            num_machines=len(workers),
            time_out=params.get("time_out", 120),
            remote_socket=sockets[worker],
            return_model=rank == 0,
            eval_names=["validation"] if early_stopping else None,
            callbacks=[lgb.early_stopping(learners.EARLY_STOPPING_ROUNDS, verbose=False)]
            if early_stopping
            else None,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )
        for rank, (worker, part) in enumerate(zip(workers, parts, strict=True))
    ]


def share_validation(client: Client, valid_x: pd.DataFrame, valid_y: np.ndarray) -> list[Future]:
    """The validation rows on every worker, once (new keys: a copy with the same content
    as an earlier, released one would race with its release)."""
    labels = pd.Series(valid_y, name=LABEL)
    return client.scatter([valid_x, labels], broadcast=True, hash=False)


def _with_eval(part: dict[str, Any], valid_x: pd.DataFrame, valid_y: pd.Series) -> dict[str, Any]:
    """A training part as ``lightgbm.dask._train_part`` takes it, with the eval set."""
    return {**part, "eval_set": [([valid_x], [valid_y])]}


class _QuietClassifier(lgb.LGBMClassifier):
    """``LGBMClassifier`` whose fit prints nothing on the worker's standard output.

    LightGBM keeps its log level per thread, and its network set-up logs before the
    parameters (``verbosity=-1``) reach it, partly from a thread of its own: every fit
    printed "[LightGBM] [Info]" lines on the workers' standard output, which a LocalCluster
    shares with the command's. The process's standard output is closed while it fits."""

    def fit(self, *args: Any, **kwargs: Any) -> _QuietClassifier:
        with _native_stdout_closed():
            return super().fit(*args, **kwargs)


@contextlib.contextmanager
def _native_stdout_closed() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
