"""Batch scoring with a registered model: ``model_uri`` (the command resolves --model and
``CHURNML_MODEL_URI``, ``model.loading.resolve_model_uri``), else the champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnml.errors import DataError
from model.loading import LoadedModel, load_model, resolve_model_uri
from model.predictor import DEFAULT_REVENUE_MONTHS, Predictor
from training.settings import TrainingSettings


def _load(settings: TrainingSettings, uri: str | None = None) -> LoadedModel:
    """The model at ``uri`` (default: the champion) in the configured store."""
    return load_model(resolve_model_uri(uri), settings.resolved_tracking_uri())


def score_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    settings: TrainingSettings,
    *,
    model_uri: str | None = None,
    with_reasons: bool = True,
    retention_contacts: pd.DataFrame | None = None,
    months: float = DEFAULT_REVENUE_MONTHS,
) -> pd.DataFrame:
    """One row per customer active on ``as_of``: customer_id, churn_probability, risk_band,
    reasons (the top drivers in words), reason_codes, as_of, model_version; with a model
    that has a call-effect head also call_effect and saved_revenue (``months`` of revenue),
    reading the customers' retention history from ``retention_contacts``."""
    loaded = _load(settings, model_uri)
    scores = Predictor(loaded.model).score_tables(
        customers,
        interactions,
        as_of,
        with_reasons=with_reasons,
        retention_contacts=retention_contacts,
        months=months,
    )
    scores["model_version"] = loaded.version or loaded.uri
    return scores


def score_table(
    table: pd.DataFrame | str | Path,
    settings: TrainingSettings,
    *,
    id_column: str | None = None,
    model_uri: str | None = None,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """Scores of every row of a customer table: the id (``id_column``, else the model's id
    column, else the row number), churn_probability, risk_band, reasons."""
    return score_table_lacking(
        table, settings, id_column=id_column, model_uri=model_uri, with_reasons=with_reasons
    )[0]


def score_table_lacking(
    table: pd.DataFrame | str | Path,
    settings: TrainingSettings,
    *,
    id_column: str | None = None,
    model_uri: str | None = None,
    with_reasons: bool = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``score_table``'s scores, and how many rows lacked each field the model was trained
    on almost always having (``Predictor.rows_lacking``)."""
    if not isinstance(table, pd.DataFrame):
        from churnml.io import read_table

        table = read_table(Path(table), "table")
    if id_column is not None and id_column not in table.columns:
        raise DataError(f"--id {id_column!r} is not a column of the table")
    loaded = _load(settings, model_uri)
    predictor = Predictor(loaded.model)
    scores = predictor.score_table(table, with_reasons=with_reasons)
    if id_column is not None:
        scores = scores.drop(columns=[scores.columns[0]])
        scores.insert(0, id_column, table[id_column].astype(str).to_numpy())
    scores["model_version"] = loaded.version or loaded.uri
    return scores, predictor.rows_lacking(table)
