"""Scoring with a registered model: the champion unless a model URI is given."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from churnml.errors import DataError, ModelError
from features.model import ChurnModel
from training.registry import CHAMPION, tracking
from training.settings import TrainingSettings


def load_model(settings: TrainingSettings, model_uri: str | None = None) -> ChurnModel:
    """The model at ``model_uri`` (default ``models:/churn-risk@champion``)."""
    uri = model_uri or f"models:/{settings.model_name}@{CHAMPION}"
    with tracking(settings):
        try:
            loaded = mlflow.pyfunc.load_model(uri)
        except mlflow.exceptions.MlflowException as error:
            first = str(error).splitlines()[0][:200]
            raise ModelError(
                f"cannot load model {uri} from {settings.resolved_tracking_uri()} ({first}); "
                "run `churnml train` or `churnml promote VERSION`, or pass --model"
            ) from None
        except OSError as error:
            raise ModelError(f"cannot load model {uri}: {error}") from None
    try:
        return loaded.unwrap_python_model().model
    except AttributeError:
        raise ModelError(
            f"{uri} is not a churnml model; pass a model registered by churnml"
        ) from None


def score_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    settings: TrainingSettings,
    *,
    model_uri: str | None = None,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """One row per customer active on ``as_of``: customer_id, churn_probability, risk_band,
    reasons (the top drivers in words), reason_codes, as_of, model_version."""
    model = load_model(settings, model_uri)
    scores = model.score_tables(customers, interactions, as_of, with_reasons=with_reasons)
    scores["model_version"] = version_of(
        model_uri or f"models:/{settings.model_name}@{CHAMPION}", settings
    )
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
    if not isinstance(table, pd.DataFrame):
        from churnml.io import read_table

        table = read_table(Path(table), "table")
    if id_column is not None and id_column not in table.columns:
        raise DataError(f"--id {id_column!r} is not a column of the table")
    model = load_model(settings, model_uri)
    scores = model.score_table(table, with_reasons=with_reasons)
    if id_column is not None:
        scores = scores.drop(columns=[scores.columns[0]])
        scores.insert(0, id_column, table[id_column].astype(str).to_numpy())
    scores["model_version"] = version_of(
        model_uri or f"models:/{settings.model_name}@{CHAMPION}", settings
    )
    return scores


def version_of(uri: str, settings: TrainingSettings) -> str:
    """The registry version behind ``models:/name@alias`` or ``models:/name/N``; else the URI."""
    if not uri.startswith("models:/"):
        return uri
    rest = uri[len("models:/") :]
    with tracking(settings) as client:
        try:
            if "@" in rest:
                name, alias = rest.split("@", 1)
                return str(client.get_model_version_by_alias(name, alias).version)
            name, _, version = rest.partition("/")
            if version:
                return version
        except mlflow.exceptions.MlflowException:
            pass
    return uri
