"""Training: snapshots and labels, time folds, LightGBM + calibration, baselines,
metrics, MLflow runs and the ``churn-risk`` registry behind a promotion gate.

A module per stage, which ``pipeline`` runs in turn: ``snapshots`` and ``folds`` (the
data and its time folds; ``table`` for a customer table), ``fit`` (the booster with
early stopping, the blend, the calibrator; the learners themselves in ``learners``),
``evaluate`` (fold metrics against the baselines; ``metrics``), ``call_effect_fit`` (the
call-effect head: its rows, time folds, gate and refit; ``uplift`` and ``uplift_metrics``),
``promotion`` (the gate's
evidence and decision), ``mlflow_log`` (params, metrics, artifacts, ``plots``, the
environment) and ``registry`` (registering, aliases, champion moves).

Entry points (the CLI calls these; each takes a ``TrainingSettings``)::

    train_from_tables(customers, interactions, settings, *, as_of=None,
                      retention_contacts=None) -> TrainResult
    train_from_table(table_or_path, label, settings, *, id_column=None) -> TrainResult
    score_tables(customers, interactions, as_of, settings, *, model_uri=None,
                 retention_contacts=None, months=12.0) -> DataFrame
    score_table(table_or_path, settings, *, id_column=None, model_uri=None) -> DataFrame
    score_table_lacking(...) -> (DataFrame, {field: rows lacking it})
    promote(version, settings, *, reason="") -> dict
    rollback(settings, *, reason="") -> dict
    champion_history(settings) -> list[dict]

Nothing heavy is imported until one of them is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.settings import TrainingSettings

if TYPE_CHECKING:
    from training.pipeline import TrainResult

__all__ = [
    "TrainResult",
    "TrainingSettings",
    "champion_history",
    "promote",
    "rollback",
    "score_table",
    "score_table_lacking",
    "score_tables",
    "train_from_table",
    "train_from_tables",
]

_WHERE = {
    "train_from_tables": "training.pipeline",
    "train_from_table": "training.pipeline",
    "TrainResult": "training.pipeline",
    "score_tables": "training.scoring",
    "score_table": "training.scoring",
    "score_table_lacking": "training.scoring",
    "promote": "training.registry",
    "rollback": "training.registry",
    "champion_history": "training.registry",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
