"""Pointing MLflow at one store for the length of a block, and no longer.

``mlflow.set_tracking_uri`` and ``mlflow.set_registry_uri`` change process-wide state and
mirror it into ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``. Restoring them with
``mlflow.get_tracking_uri()`` does not undo that: it returns MLflow's default
(``./mlflow.db``) and leaves it pinned for every later command in the process. This
context manager saves and restores the exact state instead; training and serving both
use it. MLflow is imported only when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENV_NAMES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def mlflow_store(uri: str) -> Iterator[None]:
    """Make ``uri`` MLflow's tracking and registry URI inside the block; restore after."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {name: os.environ.get(name) for name in ENV_NAMES}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
