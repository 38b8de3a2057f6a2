"""Configuration: one frozen object built at each entry point and passed down.

Values come from, in order of precedence: command-line flags, ``CHURNML_*``
environment variables, and the defaults below. Nothing here runs at import time.

| setting | environment variable | default |
|---|---|---|
| home | ``CHURNML_HOME`` | ``.churnml`` in the working directory |
| customers | ``CHURNML_CUSTOMERS`` | the sample world's ``data/sample/customers.csv`` |
| interactions | ``CHURNML_INTERACTIONS`` | the sample world's ``data/sample/interactions.csv`` |
| tracking_uri | ``MLFLOW_TRACKING_URI`` | ``sqlite:///<home>/mlflow.db`` |
| strict | ``CHURNML_STRICT`` (1/true) | false: rows that break a rule are set aside |
| engine | ``CHURNML_ENGINE`` (local/dask) | local: one process |
| scheduler | ``CHURNML_SCHEDULER`` | none: ``--engine dask`` starts a LocalCluster |
| dask_workers | ``CHURNML_DASK_WORKERS`` | 2 (workers of that LocalCluster) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from churnml.errors import ConfigError

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
DEFAULT_HOME = Path(".churnml")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
ENGINES = ("local", "dask")


@dataclass(frozen=True)
class Settings:
    """Where churnml reads its data and keeps its state."""

    home: Path = DEFAULT_HOME
    customers: Path = SAMPLE_DIR / "customers.csv"
    interactions: Path = SAMPLE_DIR / "interactions.csv"
    tracking_uri: str | None = None
    strict: bool = False
    engine: str = "local"
    scheduler: str | None = None
    dask_workers: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment, then ``overrides`` (flags); None overrides are ignored."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("CHURNML_HOME"):
            values["home"] = Path(env["CHURNML_HOME"])
        if env.get("CHURNML_CUSTOMERS"):
            values["customers"] = Path(env["CHURNML_CUSTOMERS"])
        if env.get("CHURNML_INTERACTIONS"):
            values["interactions"] = Path(env["CHURNML_INTERACTIONS"])
        if env.get("MLFLOW_TRACKING_URI"):
            values["tracking_uri"] = env["MLFLOW_TRACKING_URI"]
        if "CHURNML_STRICT" in env:
            values["strict"] = _flag(env["CHURNML_STRICT"], "CHURNML_STRICT")
        if env.get("CHURNML_ENGINE"):
            values["engine"] = env["CHURNML_ENGINE"].strip().lower()
        if env.get("CHURNML_SCHEDULER"):
            values["scheduler"] = env["CHURNML_SCHEDULER"]
        if env.get("CHURNML_DASK_WORKERS"):
            try:
                values["dask_workers"] = int(env["CHURNML_DASK_WORKERS"])
            except ValueError:
                raise ConfigError(
                    f"CHURNML_DASK_WORKERS={env['CHURNML_DASK_WORKERS']!r}: expected a whole number"
                ) from None
        values.update({key: value for key, value in overrides.items() if value is not None})
        settings = replace(cls(), **values)
        if settings.engine not in ENGINES:
            raise ConfigError(
                f"engine {settings.engine!r}: expected one of {', '.join(ENGINES)} "
                "(--engine or CHURNML_ENGINE)"
            )
        if settings.dask_workers < 1:
            raise ConfigError(f"dask workers {settings.dask_workers}: expected at least 1")
        return settings

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def effective_tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, or SQLite under home."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"


def _flag(value: str, name: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={value!r}: expected 1/0 or true/false")
