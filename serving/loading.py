"""Loading the served model from MLflow, without the training package.

``load_served_model(uri, tracking_uri)`` resolves ``models:/NAME@ALIAS`` (or
``models:/NAME/VERSION``) with ``MlflowClient``, downloads the pyfunc's files, opens
its ``model`` artifact folder with ``features.model.ChurnModel.load`` and checks that
the model fits this churnml: trained on interaction logs, for this data contract, with
exactly the feature columns the installed feature builders produce. Any failure is a
``ModelError`` with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from churnml.contract import CONTRACT_VERSION
from churnml.errors import ChurnmlError, ModelError
from features.model import KIND_INTERACTIONS, ChurnModel

log = logging.getLogger(__name__)
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and what the service says about it."""

    model: ChurnModel
    scorer: Any  # serving.scoring.Scorer, built once per model
    name: str
    version: str
    alias: str | None
    uri: str
    info: dict[str, Any]


def parse_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> (NAME, ALIAS, None); ``models:/NAME/3`` -> (NAME, None, "3")."""
    if not uri.startswith("models:/"):
        raise ModelError(f"model URI {uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, alias, None
    else:
        name, _, version = rest.partition("/")
        if name and version.isdigit():
            return name, None, version
    raise ModelError(f"model URI {uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")


def load_served_model(uri: str, tracking_uri: str) -> ServedModel:
    """Resolve, download, load and check the model behind ``uri``; ModelError on any failure."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if alias is not None:
            try:
                entry = client.get_model_version_by_alias(name, alias)
            except MlflowException:
                raise ModelError(
                    f"model {name!r} has no {alias} in the registry at {tracking_uri}: train "
                    "one with `churnml train` and promote it with `churnml promote VERSION`, "
                    "or pass another --model"
                ) from None
        else:
            try:
                entry = client.get_model_version(name, version)
            except MlflowException:
                raise ModelError(
                    f"model {name!r} has no version {version} in the registry at {tracking_uri}"
                ) from None
        folder = _download(client, name, str(entry.version), tracking_uri)
        model = ChurnModel.load(folder / _artifact_path(folder))
        check_model(model)
        metrics = _test_metrics(client, entry.run_id)
    except ChurnmlError:
        raise
    except MlflowException as error:
        first = str(error).splitlines()[0][:200]
        raise ModelError(f"cannot load {uri} from {tracking_uri}: {first}") from None
    except (OSError, KeyError, ValueError, TypeError, yaml.YAMLError) as error:
        raise ModelError(f"cannot load {uri}: {type(error).__name__}: {error}") from None

    from serving.scoring import Scorer

    created = dt.datetime.fromtimestamp(entry.creation_timestamp / 1000, dt.UTC)
    info = {
        "name": name,
        "version": str(entry.version),
        "alias": alias,
        "uri": uri,
        "trained_at": created.isoformat(timespec="seconds"),
        "data_as_of": model.metadata.get("as_of"),
        "horizon_days": model.metadata.get("horizon_days"),
        "contract_version": str(model.metadata.get("contract_version", CONTRACT_VERSION)),
        "test_metrics": metrics,
        "features": list(model.feature_names),
        "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return ServedModel(
        model=model,
        scorer=Scorer(model, name=name, version=str(entry.version)),
        name=name,
        version=str(entry.version),
        alias=alias,
        uri=uri,
        info=info,
    )


def _download(client: Any, name: str, version: str, tracking_uri: str) -> Path:
    import mlflow.artifacts

    from churnml.tracking import mlflow_store

    # models:/ URIs resolve through the process-wide registry URI, whatever tracking_uri says.
    with mlflow_store(tracking_uri):
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", tracking_uri=tracking_uri
            )
        )


def _artifact_path(folder: Path) -> str:
    """Where the pyfunc keeps the ChurnModel folder (``artifacts/model``), from its MLmodel."""
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    artifacts = spec["flavors"]["python_function"].get("artifacts") or {}
    if MODEL_ARTIFACT not in artifacts:
        raise ModelError(f"{folder}: not a churnml model (no {MODEL_ARTIFACT!r} artifact)")
    return artifacts[MODEL_ARTIFACT]["path"]


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
    from features.columns import feature_columns
    from features.settings import FeatureSettings

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
    settings = FeatureSettings.from_dict(model.feature_settings)
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
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if alias is not None:
            return str(client.get_model_version_by_alias(name, alias).version)
        return str(client.get_model_version(name, version).version)
    except MlflowException:
        raise ModelError(
            f"no model {uri} in the registry at {tracking_uri}: train one with `churnml train`"
            " and promote it (`churnml promote VERSION`), or pass --model"
        ) from None
