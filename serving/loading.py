"""The served model: loaded from MLflow by ``model.loading``, checked, described.

``load_served_model(uri, tracking_uri)`` loads the model behind ``models:/NAME@ALIAS``
(or ``models:/NAME/VERSION``, or the version of NAME a reload named) with
``model.loading.load_model``, checks that it fits this churnml (trained on interaction logs,
for this data contract, with exactly the feature columns the installed feature builders
produce), and builds its ``Predictor`` and ``Scorer`` once. Any failure is a ``ModelError``
with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

from churnml.contract import CONTRACT_VERSION
from churnml.errors import ModelError
from features.columns import feature_columns
from model.artifact import KIND_INTERACTIONS, ChurnModel
from model.loading import find_version, load_model, parse_uri, registry_client
from model.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A loaded model, its predictor and scorer, and what the service says about it."""

    model: ChurnModel
    predictor: Predictor
    scorer: Any  # serving.scoring.Scorer, built once per model
    name: str
    version: str
    alias: str | None
    uri: str
    info: dict[str, Any]


def load_served_model(uri: str, tracking_uri: str, *, version: str | None = None) -> ServedModel:
    """Resolve, download, load and check the model behind ``uri``; ModelError on any failure.

    ``version``: load that version of ``uri``'s model instead of resolving its alias (the
    version another worker's reload named), described with ``uri`` and its alias all the same.
    """
    from mlflow.exceptions import MlflowException

    from serving.scoring import Scorer

    model_name, alias, _ = parse_uri(uri)  # the service takes registry URIs only
    if version is None:
        loaded = load_model(uri, tracking_uri)
    else:
        loaded = replace(load_model(f"models:/{model_name}/{version}", tracking_uri), alias=alias)
    model = loaded.model
    check_model(model)
    try:
        metrics = _test_metrics(registry_client(tracking_uri), loaded.run_id)
    except MlflowException as error:
        first = str(error).splitlines()[0][:200]
        raise ModelError(f"cannot load {uri} from {tracking_uri}: {first}") from None
    name, version = str(loaded.name), str(loaded.version)
    created = dt.datetime.fromtimestamp((loaded.created_ms or 0) / 1000, dt.UTC)
    info = {
        "name": name,
        "version": version,
        "alias": loaded.alias,
        "uri": uri,
        "trained_at": created.isoformat(timespec="seconds"),
        "data_as_of": model.metadata.get("as_of"),
        "horizon_days": model.metadata.get("horizon_days"),
        "contract_version": str(model.metadata.get("contract_version", CONTRACT_VERSION)),
        "test_metrics": metrics,
        "features": list(model.feature_names),
        "input_schema": [field.to_dict() for field in model.input_schema],
        "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    predictor = Predictor(model)
    return ServedModel(
        model=model,
        predictor=predictor,
        scorer=Scorer(predictor, name=name, version=version),
        name=name,
        version=version,
        alias=loaded.alias,
        uri=uri,
        info=info,
    )


def _test_metrics(client: Any, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    wanted = (
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top_decile",
        "precision_at_k",
        "recall_at_k",
        "churn_rate",
    )
    return {k: float(metrics[f"test_{k}"]) for k in wanted if f"test_{k}" in metrics}


def check_model(model: ChurnModel) -> None:
    """Refuse a model this service cannot feed: wrong kind, contract or feature list."""
    if model.kind != KIND_INTERACTIONS:
        raise ModelError(
            "the model was trained on a customer table; the service scores interaction logs: "
            "serve a model trained with `churnml train --customers F --interactions F`"
        )
    contract = str(model.metadata.get("contract_version"))
    if contract != CONTRACT_VERSION:
        raise ModelError(
            f"the model reads data contract v{contract}, this churnml v{CONTRACT_VERSION}; "
            "retrain it"
        )
    if model.feature_settings is None:
        raise ModelError("the model carries no feature settings; retrain it with this churnml")
    settings = model.build_settings
    expected = feature_columns(settings, settings.profile_columns or ())
    if list(model.feature_names) != expected:
        missing = [c for c in model.feature_names if c not in expected]
        extra = [c for c in expected if c not in model.feature_names]
        raise ModelError(
            f"the model's {len(model.feature_names)} features do not match the "
            f"{len(expected)} the installed feature builders make (model only: "
            f"{missing[:3]}, builders only: {extra[:3]}); retrain the model with this churnml"
        )


def check_registered(uri: str, tracking_uri: str) -> str:
    """The version behind ``uri``, or a ModelError with a one-line reason (no download)."""
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_uri(uri)
    try:
        return str(find_version(registry_client(tracking_uri), name, alias, version).version)
    except MlflowException:
        raise ModelError(
            f"no model {uri} in the registry at {tracking_uri}: train one with `churnml train`"
            " and promote it (`churnml promote VERSION`), or pass --model"
        ) from None
