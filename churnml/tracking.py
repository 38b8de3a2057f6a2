"""Pointing MLflow at one store for the length of a block, and no longer.

``mlflow.set_tracking_uri`` and ``mlflow.set_registry_uri`` change process-wide state and
mirror it into ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``. Restoring them with
``mlflow.get_tracking_uri()`` does not undo that: it returns MLflow's default
(``./mlflow.db``) and leaves it pinned for every later command in the process. This
context manager saves and restores the exact state instead; training and serving both
use it. MLflow is imported only when it runs.

Before MLflow is pointed at a store, ``check_reachable`` tries it once with a short
timeout: MLflow itself retries a database it cannot reach for about 100 s (printing each
exception), and an HTTP server with 7 retries of up to 120 s each. An unreachable store
is one ``ConfigError`` line naming the URI (its password hidden) and what to check.
``REQUEST_DEFAULTS`` are the shorter HTTP timeout and retry count the command line gives
MLflow (unless the environment sets them) for a server that goes away later.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from churnml.errors import ConfigError

ENV_NAMES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
PROBE_SECONDS = 5
# MLflow's own names (mlflow.environment_variables), read when a request is made.
REQUEST_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
# Connection timeouts by SQLAlchemy backend: the name each driver gives the option.
_CONNECT_TIMEOUTS = {
    "postgresql": "connect_timeout",
    "mysql": "connect_timeout",
    "mssql": "timeout",
}
_reached: set[str] = set()


def check_reachable(uri: str) -> None:
    """ConfigError naming ``uri`` when its tracking store does not answer within
    ``PROBE_SECONDS``; nothing for a local file store, or a store already reached."""
    if uri in _reached:
        return
    scheme = uri.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        _probe_http(uri)
    elif scheme.split("+")[0] in _CONNECT_TIMEOUTS:
        _probe_database(uri)
    _reached.add(uri)


def _probe_http(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_SECONDS):
            pass
    except urllib.error.HTTPError:
        return  # it answered: whatever it said, MLflow's own calls say more
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={_shown(uri)}: the MLflow server does not answer ({reason}); "
            "start it (mlflow server), or fix or unset MLFLOW_TRACKING_URI"
        ) from None


def _probe_database(uri: str) -> None:
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(uri)
        option = _CONNECT_TIMEOUTS[url.get_backend_name()]
        engine = sa.create_engine(url, connect_args={option: PROBE_SECONDS})
    except ImportError as error:
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={_shown(uri)}: its database driver is not installed "
            f"({error}); install it, or name an installed one (postgresql+psycopg://...)"
        ) from None
    except (sa.exc.ArgumentError, KeyError, ValueError) as error:
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={_shown(uri)}: not a database URL ({error})"
        ) from None
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as error:
        first = (str(error.orig or error).strip().splitlines() or ["no answer"])[0][:200]
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={_shown(uri)}: the tracking database cannot be reached "
            f"({first}); start it or check the host, port and credentials"
        ) from None
    finally:
        engine.dispose()


def _shown(uri: str) -> str:
    """``uri`` without the password of its user part."""
    scheme, sep, rest = uri.partition("://")
    user_part, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in user_part:
        return uri
    return f"{scheme}://{user_part.split(':', 1)[0]}:***@{host}"


@contextmanager
def mlflow_store(uri: str) -> Iterator[None]:
    """Make ``uri`` MLflow's tracking and registry URI inside the block; restore after."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    check_reachable(uri)
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
