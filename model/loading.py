"""Which model to use and how to open it: the one place a model URI is resolved and loaded.

``resolve_model_uri(given, configured)`` is the model every command scores with: ``--model``,
else ``CHURNML_MODEL_URI`` (read once, by ``churnml.settings.Settings.model_uri``), else
``DEFAULT_MODEL_URI`` (the registry's champion).
``load_model(uri, tracking_uri)`` resolves ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``
in the registry (any other MLflow artifact URI, ``runs:/...`` or a path, is opened as it
is), downloads the files and opens churnml's own artifact (``model/booster.txt`` and
``model/spec.json`` of the pyfunc, see ``training.model``) with ``ChurnModel.load``, which
checks the booster's sha256 before LightGBM parses it. The pyfunc's pickle is never run.
Every failure is a ``ModelError`` of one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from churnml.errors import ChurnmlError, ModelError
from churnml.tracking import mlflow_store

if TYPE_CHECKING:
    from model.artifact import ChurnModel

DEFAULT_MODEL_NAME = "churn-risk"
CHAMPION = "champion"
DEFAULT_MODEL_URI = f"models:/{DEFAULT_MODEL_NAME}@{CHAMPION}"
MODEL_ARTIFACT = "model"  # the pyfunc's artifact that holds the ChurnModel folder
_URI_SHAPE = "expected models:/NAME@ALIAS or models:/NAME/VERSION"


@dataclass(frozen=True)
class LoadedModel:
    """A model and where it came from. ``name``, ``alias``, ``version``, ``run_id`` and
    ``created_ms`` (the version's registration time) are the registry's; None for a
    model opened from another URI."""

    model: ChurnModel
    uri: str
    name: str | None = None
    alias: str | None = None
    version: str | None = None
    run_id: str | None = None
    created_ms: int | None = None


def resolve_model_uri(given: str | None = None, configured: str | None = None) -> str:
    """``given`` (a --model flag), else ``configured`` (``Settings.model_uri``, from
    ``CHURNML_MODEL_URI``), else the champion."""
    return given or configured or DEFAULT_MODEL_URI


def parse_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> (NAME, ALIAS, None); ``models:/NAME/3`` -> (NAME, None, "3")."""
    if not uri.startswith("models:/"):
        raise ModelError(f"model URI {uri!r}: {_URI_SHAPE}")
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, alias, None
    else:
        name, _, version = rest.partition("/")
        if name and version.isdigit():
            return name, None, version
    raise ModelError(f"model URI {uri!r}: {_URI_SHAPE}")


def registry_client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def find_version(client: Any, name: str, alias: str | None, version: str | None) -> Any:
    """The registry's ModelVersion of ``name`` at ``alias`` or ``version``
    (MlflowException when there is none)."""
    if alias is not None:
        return client.get_model_version_by_alias(name, alias)
    return client.get_model_version(name, version)


def load_model(uri: str, tracking_uri: str) -> LoadedModel:
    """The model behind ``uri`` in the store at ``tracking_uri``; ModelError on any failure."""
    from mlflow.exceptions import MlflowException

    try:
        if uri.startswith("models:/"):
            return _load_registered(uri, tracking_uri)
        return LoadedModel(_open(_download(uri, tracking_uri), uri, uri), uri)
    except ChurnmlError:
        raise
    except MlflowException as error:
        first = str(error).splitlines()[0][:200]
        raise ModelError(f"cannot load {uri} from {tracking_uri}: {first}") from None
    except (OSError, KeyError, ValueError, TypeError, yaml.YAMLError) as error:
        raise ModelError(f"cannot load {uri}: {type(error).__name__}: {error}") from None


def _load_registered(uri: str, tracking_uri: str) -> LoadedModel:
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_uri(uri)
    try:
        entry = find_version(registry_client(tracking_uri), name, alias, version)
    except MlflowException:
        if alias is not None:
            raise ModelError(
                f"model {name!r} has no {alias} in the registry at {tracking_uri}: train "
                "one with `churnml train` and promote it with `churnml promote VERSION`, "
                "or pass another --model"
            ) from None
        raise ModelError(
            f"model {name!r} has no version {version} in the registry at {tracking_uri}"
        ) from None
    folder = _download(f"models:/{name}/{entry.version}", tracking_uri)
    return LoadedModel(
        model=_open(folder, uri, f"{uri} (version {entry.version})"),
        uri=uri,
        name=name,
        alias=alias,
        version=str(entry.version),
        run_id=entry.run_id,
        created_ms=entry.creation_timestamp,
    )


def _download(artifact_uri: str, tracking_uri: str) -> Path:
    import mlflow.artifacts

    # models:/ URIs resolve through the process-wide registry URI, whatever tracking_uri says.
    with mlflow_store(tracking_uri):
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, tracking_uri=tracking_uri
            )
        )


def _open(folder: Path, uri: str, source: str) -> ChurnModel:
    """The ChurnModel folder of a downloaded pyfunc (``artifacts/model``, from its MLmodel),
    opened as ``source`` (how errors name it)."""
    from model.artifact import ChurnModel

    try:
        spec = yaml.safe_load((folder / "MLmodel").read_text())
        artifacts = spec["flavors"]["python_function"].get("artifacts") or {}
        path = artifacts[MODEL_ARTIFACT]["path"]
    except (OSError, KeyError, TypeError, AttributeError):
        raise ModelError(
            f"{uri} is not a churnml model (no {MODEL_ARTIFACT!r} artifact); "
            "pass a model registered by churnml"
        ) from None
    return ChurnModel.load(folder / path, source=source)
