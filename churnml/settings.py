"""Configuration: one frozen object built at each entry point and passed down.

Values come from, in order of precedence: command-line flags, ``CHURNML_*``
environment variables, and the defaults below. Nothing here runs at import time.

``Settings`` holds what every entry point shares, grouped by concern below; it is the
only place that reads these variables. Each package keeps the settings of its own
concern and builds them from this object, so home and the tracking URI are parsed once:
``training.settings.TrainingSettings.from_settings``, ``serving.settings.ServingSettings``
(the service) and ``serving.settings.RiskListSettings`` (the daily list).

| concern | setting | environment variable | default |
|---|---|---|---|
| state | home | ``CHURNML_HOME`` | ``.churnml`` in the working directory |
| data | customers | ``CHURNML_CUSTOMERS`` | the sample world: ``data/sample/customers.csv`` |
| data | interactions | ``CHURNML_INTERACTIONS`` | ``data/sample/interactions.csv`` |
| data | retention_contacts | ``CHURNML_RETENTION_CONTACTS`` | the sample's, on the sample |
| data | strict | ``CHURNML_STRICT`` (1/true) | false: rows that break a rule are set aside |
| engine | engine | ``CHURNML_ENGINE`` (local/dask) | local: one process |
| engine | scheduler | ``CHURNML_SCHEDULER`` | none: ``--engine dask`` starts a LocalCluster |
| engine | dask_workers | ``CHURNML_DASK_WORKERS`` | 2 (workers of that LocalCluster) |
| tracking | tracking_uri | ``MLFLOW_TRACKING_URI`` | ``sqlite:///<home>/mlflow.db`` |
| tracking | model_uri | ``CHURNML_MODEL_URI`` | none: the registry's champion |
| lists | risk_store | ``CHURNML_RISK_STORE`` | SQLite ``<home>/risk-lists.db`` |

A bad value is one ``ConfigError`` line that names the variable (``read_env``).

Permissions of the state. The state folder holds customer data (the risk lists, the
MLflow store with its training rows' feature distributions, quarantined rows, exports),
so everything churnml creates is for its owner only: folders 0700, files 0600. The
command line (``churnml.cli.common.main``) sets the process's umask from
``CHURNML_UMASK`` (octal, default ``077``) before any command runs, so that what MLflow,
SQLite (``-wal``/``-shm`` files) and the service's workers create follows it too, and
``churnml.io``'s atomic writes give their files the same mode. ``CHURNML_UMASK=027`` lets
the owner's group read (folders 0750, files 0640); ``022`` is the usual Unix default
(everyone reads). Exports (``--out``) follow the same rule rather than the user's login
umask: they hold the same customer rows as the store, and sharing one is a deliberate act
(``chmod``, or ``CHURNML_UMASK``). A folder that already exists keeps its mode.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from churnml.errors import ConfigError

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
DEFAULT_HOME = Path(".churnml")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
ENGINES = ("local", "dask")
DEFAULT_UMASK = 0o077  # owner only: folders 0700, files 0600

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Where churnml reads its data, where it runs, and where it keeps its state."""

    home: Path = DEFAULT_HOME
    customers: Path = SAMPLE_DIR / "customers.csv"
    interactions: Path = SAMPLE_DIR / "interactions.csv"
    # The retention team's picks and outcomes (contract v1.1); None: no such table.
    retention_contacts: Path | None = None
    strict: bool = False
    engine: str = "local"
    scheduler: str | None = None
    dask_workers: int = 2
    tracking_uri: str | None = None
    model_uri: str | None = None
    risk_store: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment, then ``overrides`` (flags); None overrides are ignored."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "home": read_env(env, "CHURNML_HOME", Path, "a folder"),
            "customers": read_env(env, "CHURNML_CUSTOMERS", Path, "a file or folder"),
            "interactions": read_env(env, "CHURNML_INTERACTIONS", Path, "a file or folder"),
            "retention_contacts": read_env(
                env, "CHURNML_RETENTION_CONTACTS", Path, "a file or folder"
            ),
            "engine": read_env(env, "CHURNML_ENGINE", _word, "local or dask"),
            "scheduler": env.get("CHURNML_SCHEDULER") or None,
            "dask_workers": read_env(env, "CHURNML_DASK_WORKERS", int, "a whole number"),
            "tracking_uri": env.get("MLFLOW_TRACKING_URI") or None,
            "model_uri": env.get("CHURNML_MODEL_URI") or None,
            "risk_store": env.get("CHURNML_RISK_STORE") or None,
        }
        if "CHURNML_STRICT" in env:
            values["strict"] = parse_flag(env["CHURNML_STRICT"], "CHURNML_STRICT")
        values.update({key: value for key, value in overrides.items() if value is not None})
        settings = replace(cls(), **{k: v for k, v in values.items() if v is not None})
        sample = SAMPLE_DIR / "retention_contacts.csv"
        on_sample = (settings.customers, settings.interactions) == (
            cls.customers,
            cls.interactions,
        )
        if settings.retention_contacts is None and on_sample and sample.exists():
            settings = replace(settings, retention_contacts=sample)
        if settings.engine not in ENGINES:
            raise ConfigError(
                f"engine {settings.engine!r}: expected one of {', '.join(ENGINES)} "
                "(--engine or CHURNML_ENGINE)"
            )
        if settings.dask_workers < 1:
            raise ConfigError(f"CHURNML_DASK_WORKERS={settings.dask_workers}: expected at least 1")
        return settings

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def effective_tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, or SQLite under home."""
        return tracking_uri_for(self.home, self.tracking_uri)


@dataclass(frozen=True)
class WorldSettings:
    """``churnml generate``'s world: customers at the start, days, seed, folder, first day,
    the horizon of the oracle's probabilities and labels, and the tables' file format."""

    customers: int = 3000
    days: int = 540
    seed: int = 42
    out: Path = Path("world")
    start_date: dt.date = dt.date(2025, 1, 1)
    horizon_days: int = 30
    file_format: str = "csv"


def tracking_uri_for(home: Path, tracking_uri: str | None) -> str:
    """The tracking URI in use: the configured one, or the embedded SQLite store under home.

    The one place of that default: every package's settings that carry a home call it."""
    if tracking_uri:
        return tracking_uri
    return f"sqlite:///{(Path(home) / 'mlflow.db').resolve()}"


def read_env(
    env: Mapping[str, str], name: str, parse: Callable[[str], T], expected: str
) -> T | None:
    """Variable ``name`` parsed, or None when it is unset or empty.

    ``parse`` raises ValueError on a bad value, which becomes one ConfigError line naming
    the variable and what it expects (``CHURNML_CAPACITY='x': expected a whole number``)."""
    text = env.get(name)
    if not text:
        return None
    try:
        return parse(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected {expected}") from None


def state_umask(env: Mapping[str, str] | None = None) -> int:
    """The umask churnml creates its files with: ``CHURNML_UMASK`` (octal), else 077."""
    env = os.environ if env is None else env
    umask = read_env(env, "CHURNML_UMASK", _octal, "an octal umask such as 077 or 027")
    return DEFAULT_UMASK if umask is None else umask


def _octal(text: str) -> int:
    value = int(text.strip(), 8)
    if not 0 <= value <= 0o777:
        raise ValueError(text)
    return value


def parse_flag(value: str, name: str) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (or empty)."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={value!r}: expected 1/0 or true/false")


def _word(text: str) -> str:
    return text.strip().lower()
