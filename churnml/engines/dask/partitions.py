"""Features and any per-partition work with a model, on the customer partitions.

``dd.map_partitions`` runs ``features.build_features`` on each pair of partitions, with
the categories of the categorical columns pinned to the values of the whole customers
table (what the local engine sees); ``collect`` puts the result back in the customers
table's order. ``map_with_model`` runs a function of the local engine's own frames on
every partition with a model's features (scores, the risk list's scoring stage).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
import pandas as pd

from churnml import contract
from churnml.contract import CUSTOMER_ID
from churnml.engines.dask.cluster import LOCAL_CONFIG, cluster_errors
from churnml.engines.dask.tables import ROW, DaskTables
from churnml.engines.scoring import ORDER, in_table_order, place_in_table
from churnml.errors import DaskEngineError, ModelError
from features import FeatureSettings, build_features, parse_as_of
from features.columns import CATEGORICAL_FEATURES, PROFILE_PREFIX

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from model.artifact import ChurnModel
    from model.predictor import Predictor


def pinned_settings(tables: DaskTables, settings: FeatureSettings | None) -> FeatureSettings:
    """``settings`` with the categories of every categorical feature column pinned to the
    values of the whole customers table, as the local engine finds them unpinned."""
    settings = settings or FeatureSettings()
    pinned = dict(settings.categories)
    for column in CATEGORICAL_FEATURES:
        pinned.setdefault(column, tables.categories.get(column, ()))
    known = {column.name for column in contract.CUSTOMER_COLUMNS}
    columns = list(tables.meta["customers"].columns)
    if settings.profile_columns is None:
        extra = [c for c in columns if c not in known and c != ROW]
    else:
        extra = list(settings.profile_columns)
    for name in extra:
        if name not in settings.exclude_profile_columns and name in tables.categories:
            pinned.setdefault(PROFILE_PREFIX + name, tables.categories[name])
    return replace(settings, categories=tuple(pinned.items()))


def _features_part(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    day: pd.Timestamp,
    settings: FeatureSettings,
) -> pd.DataFrame:
    """features.build_features on one partition, with each row's number in the table."""
    rows = customers[ROW].to_numpy()
    customers = customers.drop(columns=[ROW])
    frame = build_features(customers, interactions.drop(columns=[ROW]), day, settings)
    frame[ROW] = rows[pd.Index(customers[CUSTOMER_ID]).get_indexer(frame.index)]
    return frame


def features_dask(
    tables: DaskTables,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> dd.DataFrame:
    """The features of every customer active on ``as_of``, lazily, one partition per
    customer partition (with a ROW column; ``collect`` gives the local engine's frame)."""
    import dask.dataframe as dd

    day = parse_as_of(as_of)
    settings = pinned_settings(tables, settings)
    meta = _features_part(tables.meta["customers"], tables.meta["interactions"], day, settings)
    with dask.config.set(LOCAL_CONFIG):
        return dd.map_partitions(
            _features_part,
            tables.customers,
            tables.interactions,
            day,
            settings,
            meta=meta,
            align_dataframes=False,
            enforce_metadata=False,
        )


def collect(frame: dd.DataFrame, client: Client, what: str = "computing") -> pd.DataFrame:
    """A partitioned result as one pandas frame in the customers table's order; all of it
    or DaskEngineError."""
    with cluster_errors(what):
        parts = client.gather(client.compute(frame.to_delayed()))
    if len(parts) != frame.npartitions:  # never expected: Dask returns all or raises
        raise DaskEngineError(f"{what} failed: {len(parts)} of {frame.npartitions} partitions")
    result = pd.concat(parts) if parts else frame._meta
    if not result[ROW].is_unique:
        raise DaskEngineError(f"{what} failed: a customer came back twice; run again")
    return result.sort_values(ROW, kind="stable").drop(columns=[ROW])


def build_features_dask(
    tables: DaskTables,
    as_of: dt.date | str | pd.Timestamp,
    settings: FeatureSettings | None = None,
) -> pd.DataFrame:
    """``features.build_features`` of the validated tables, computed on the cluster: the
    same frame (index, columns, dtypes, values, row order)."""
    return collect(features_dask(tables, as_of, settings), tables.client, "building features")


class _Model:
    """Holds the predictor as one value of the task graph: sent once to each worker, where
    it builds its tree attributions once for every partition it scores."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor


def explained_partition(
    predictor: Predictor, features: pd.DataFrame, customers: pd.DataFrame, _interactions: Any
) -> pd.DataFrame:
    """Probabilities, bands and reasons (dicts) of one partition by ``Predictor.explain``,
    with each customer's place in the customers table."""
    prediction = predictor.explain(predictor.prepare(features))
    return pd.DataFrame(
        {
            CUSTOMER_ID: features.index.astype(str).to_numpy(dtype=object),
            "churn_probability": prediction.probability,
            "risk_band": prediction.band,
            "thin_history": prediction.thin_history,
            "reasons": pd.Series(prediction.reasons, dtype=object).to_numpy(),
            ORDER: place_in_table(features, customers),
        }
    )


def score_dask(
    predictor: Predictor, tables: DaskTables, as_of: dt.date | str | pd.Timestamp
) -> pd.DataFrame:
    """Scores of every customer active on ``as_of``, computed on the cluster: columns
    customer_id, churn_probability, risk_band, thin_history and reasons (the model's
    drivers, a list of dicts per customer, as the risk list keeps them), in the customers
    table's order."""
    day = parse_as_of(as_of)
    parts = map_with_model(explained_partition, predictor, tables, day, what="scoring")
    return in_table_order(parts, day)


def model_features_dask(
    model: ChurnModel, tables: DaskTables, as_of: dt.date | str | pd.Timestamp
) -> dd.DataFrame:
    """``features_dask`` with the model's feature settings (``ChurnModel.features_from_tables``
    on the cluster); ModelError for a model trained on a customer table."""
    from model.artifact import KIND_INTERACTIONS

    if model.kind != KIND_INTERACTIONS:
        raise ModelError(
            "this model was trained on a customer table; score it with --table, "
            "or pass a model trained on interaction logs"
        )
    return features_dask(tables, as_of, model.build_settings)


def map_with_model(
    function: Callable[..., Any],
    predictor: Predictor,
    tables: DaskTables,
    as_of: dt.date | str | pd.Timestamp,
    *args: Any,
    what: str = "computing",
) -> list[Any]:
    """``function(predictor, features, customers, interactions, *args)`` on every partition,
    with the features of ``as_of`` the predictor's model reads: one result per partition, in
    partition order, all of them or DaskEngineError. The frames are those the local engine
    holds for the partition's customers (no ROW column), so the function can be the local
    engine's own;
    the customers' index is their row number in the table (orders them across partitions).

    For work whose result is not a frame (counts, sums, a few values per customer):
    ``dd.map_partitions`` wants frames, so each partition is one delayed call on the
    partitions of the features and of both tables; the model goes once to each worker."""
    features = model_features_dask(predictor.model, tables, as_of)
    with dask.config.set(LOCAL_CONFIG):
        holder = dask.delayed(_Model(predictor), pure=False)
        tasks = [
            dask.delayed(_call_with_model, pure=True)(function, holder, *parts, *args)
            for parts in zip(
                features.to_delayed(),
                tables.customers.to_delayed(),
                tables.interactions.to_delayed(),
                strict=True,
            )
        ]
    with cluster_errors(what):
        results = tables.client.gather(tables.client.compute(tasks))
    if len(results) != tables.partitions:  # never expected: Dask returns all or raises
        raise DaskEngineError(f"{what} failed: {len(results)} of {tables.partitions} partitions")
    return list(results)


def _call_with_model(
    function: Callable[..., Any],
    holder: _Model,
    features: pd.DataFrame,
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    *args: Any,
) -> Any:
    # The customers' index is their row in the table: it orders results across partitions.
    order = pd.Index(customers[ROW].to_numpy(), dtype=np.int64)
    return function(
        holder.predictor,
        features.drop(columns=[ROW]),
        customers.drop(columns=[ROW]).set_axis(order),
        interactions.drop(columns=[ROW]).reset_index(drop=True),
        *args,
    )


def latest_contact_day(tables: DaskTables) -> dt.date | None:
    """The day of the latest kept contact (UTC), as the local engine's default --as-of;
    None when no contact is kept."""
    if not tables.interaction_rows:
        return None
    with cluster_errors("finding the latest contact"):
        latest = tables.client.compute(tables.interactions["started_at"].max()).result()
    return None if pd.isna(latest) else pd.Timestamp(latest).date()
