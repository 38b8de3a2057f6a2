"""Settings of serving's two entry points: the scoring service and the daily risk list.

Both are built from the entry point's ``churnml.settings.Settings`` (home, tracking URI,
model URI and list store are read there, once) plus the variables of their own concern.
Nothing is read at import time: the service builds ``ServingSettings`` when it starts.

The service (``ServingSettings``):

| setting | environment variable | default |
|---|---|---|
| model_uri | ``CHURNML_MODEL_URI`` | ``models:/churn-risk@champion`` |
| api_keys | ``CHURNML_API_KEYS`` (comma-separated) and ``CHURNML_API_KEYS_FILE`` | none |
| admin_keys | ``CHURNML_ADMIN_KEYS`` and ``CHURNML_ADMIN_KEYS_FILE`` | none |
| auth | ``CHURNML_AUTH`` (``on`` / ``off``) | ``on``: with no key the service will not start |
| max_body_bytes | ``CHURNML_MAX_BODY_BYTES`` | 33554432 (32 MiB) |
| workers | ``CHURNML_SERVE_WORKERS`` (``churnml serve --workers``) | 1 |
| host, port | ``churnml serve --host``, ``--port`` | 127.0.0.1, 3000 |
| tracking URI | ``MLFLOW_TRACKING_URI`` | SQLite under ``CHURNML_HOME`` (``churnml.settings``) |
| risk_store | ``CHURNML_RISK_STORE`` | SQLite ``CHURNML_HOME/risk-lists.db`` (``serving.store``) |
| currency | ``CHURNML_CURRENCY`` (``/risk-list.csv``'s currency column) | ``EUR`` |

A keys file holds one key per line; blank lines and lines starting with ``#`` are skipped.
Admin keys may also score.

The list (``RiskListSettings``): ``CHURNML_CAPACITY``, ``CHURNML_RANK_BY``,
``CHURNML_MIN_CALL_EFFECT``, ``CHURNML_CONTROL_SHARE``,
``CHURNML_REVENUE_MONTHS``, ``CHURNML_SUPPRESS_DAYS``, ``CHURNML_PSI_WARNING``,
``CHURNML_BAND_SHIFT_WARNING``, ``CHURNML_FRESHNESS_GRACE_DAYS``, ``CHURNML_CURRENCY`` (the
currency code of ``monthly_revenue``, named in the exports' ``currency`` column; default
``EUR``); flags override them. The service reads ``CHURNML_CURRENCY`` for
``/risk-list.csv``, and ``CHURNML_FRESHNESS_GRACE_DAYS`` too: the page warns when a list's data
ends more than that many days before the list's day.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from churnml.errors import ConfigError
from churnml.settings import Settings, read_env
from model.loading import DEFAULT_MODEL_URI

SERVICE_NAME = "churnml"  # the BentoML service's name (serving.service)
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
RANK_BY = ("saved-revenue", "revenue", "probability")
RANK_BY_SAVED_REVENUE = "saved-revenue"  # model.artifact.RANK_BY_SAVED_REVENUE's word
# The default ranking: saved revenue when the model's call-effect head passed its own gate,
# else revenue (``serving.risklist.choose_ranking``).
RANK_BY_DEFAULT_WORDS = (
    "saved-revenue when the model's call-effect head passed its gate, else revenue"
)
MAX_CONTROL_SHARE = 0.5
# A list's day may be at most this many days after the last contact day of its data.
FRESHNESS_GRACE_DAYS = 2
# The currency of monthly_revenue, named in the exports' currency column.
DEFAULT_CURRENCY = "EUR"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def read_currency(env: Mapping[str, str]) -> str | None:
    """``CHURNML_CURRENCY``: an ISO 4217 code (three capital letters); None when unset."""
    value = env.get("CHURNML_CURRENCY")
    if value is None or not value.strip():
        return None
    code = value.strip()
    if not _CURRENCY.match(code):
        raise ConfigError(
            f"CHURNML_CURRENCY={value!r}: expected a three-letter currency code such as EUR, "
            "USD or GBP"
        )
    return code


@dataclass(frozen=True)
class ServingSettings:
    """The scoring service's settings: the shared ones (``core``) and the service's own."""

    core: Settings = field(default_factory=Settings)
    model_uri: str = DEFAULT_MODEL_URI
    api_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    auth: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    workers: int = 1
    host: str = "127.0.0.1"  # churnml serve --host: the address BentoML binds
    port: int = 3000  # churnml serve --port
    # A list whose data ends more days than this before its day is shown as stale.
    freshness_grace_days: int = FRESHNESS_GRACE_DAYS
    currency: str = DEFAULT_CURRENCY  # the currency column of /risk-list.csv

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServingSettings:
        """The service's settings from the environment, then ``overrides`` (``churnml serve``'s
        ``model_uri``, ``workers``, ``host`` and ``port``; None is ignored)."""
        env = os.environ if env is None else env
        return cls.from_settings(Settings.from_env(env), env, **overrides)

    @classmethod
    def from_settings(
        cls, core: Settings, env: Mapping[str, str], **overrides: Any
    ) -> ServingSettings:
        auth_word = env.get("CHURNML_AUTH", "on").strip().lower()
        if auth_word not in ("on", "off"):
            raise ConfigError(f"CHURNML_AUTH={auth_word!r}: expected on or off")
        api_keys = _keys(env, "CHURNML_API_KEYS")
        admin_keys = _keys(env, "CHURNML_ADMIN_KEYS")
        if auth_word == "on" and not api_keys and not admin_keys:
            raise ConfigError(
                "no API keys configured: set CHURNML_API_KEYS and CHURNML_ADMIN_KEYS "
                "(comma-separated) or CHURNML_API_KEYS_FILE, or CHURNML_AUTH=off to serve "
                "without authentication"
            )
        max_body = read_env(env, "CHURNML_MAX_BODY_BYTES", int, "bytes, a whole number")
        if max_body is not None and max_body < 1024:
            raise ConfigError(f"CHURNML_MAX_BODY_BYTES={max_body}: expected at least 1024")
        workers = read_env(env, "CHURNML_SERVE_WORKERS", int, "a whole number")
        grace = read_env(env, "CHURNML_FRESHNESS_GRACE_DAYS", int, "a whole number of days")
        if grace is not None and grace < 0:
            raise ConfigError(f"CHURNML_FRESHNESS_GRACE_DAYS={grace}: expected 0 or more")
        values = {
            "model_uri": core.model_uri,
            "max_body_bytes": max_body,
            "workers": workers,
            "freshness_grace_days": grace,
            "currency": read_currency(env),
            **{k: v for k, v in overrides.items() if v is not None},  # a flag not given
        }
        settings = replace(
            cls(core=core, api_keys=api_keys, admin_keys=admin_keys, auth=auth_word == "on"),
            **{k: v for k, v in values.items() if v is not None},
        )
        if settings.workers < 1:
            raise ConfigError(f"CHURNML_SERVE_WORKERS={settings.workers}: expected at least 1")
        return settings

    def process_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The environment of the ``bentoml serve`` process: ``env`` with the model URI and
        worker count these settings chose (flags included). BentoML fixes a service's
        workers when it imports it; the count reaches it as its own configuration override
        (``BENTOML_CONFIG_OVERRIDES``), so the service module reads nothing at import."""
        process = dict(env)
        process["CHURNML_MODEL_URI"] = self.model_uri
        process["CHURNML_SERVE_WORKERS"] = str(self.workers)
        if self.workers != 1:
            try:
                overrides = json.loads(process.get("BENTOML_CONFIG_OVERRIDES") or "{}")
            except ValueError:
                raise ConfigError(
                    f"BENTOML_CONFIG_OVERRIDES={process['BENTOML_CONFIG_OVERRIDES']!r}: "
                    "expected JSON"
                ) from None
            service = overrides.setdefault("services", {}).setdefault(SERVICE_NAME, {})
            service["workers"] = self.workers
            process["BENTOML_CONFIG_OVERRIDES"] = json.dumps(overrides)
        return process

    @property
    def home(self) -> Path:
        return self.core.home

    @property
    def tracking_uri(self) -> str:
        return self.core.effective_tracking_uri

    @property
    def risk_store(self) -> str | None:
        return self.core.risk_store


@dataclass(frozen=True)
class RiskListSettings:
    """How the list is cut and checked. Environment: ``CHURNML_CAPACITY``,
    ``CHURNML_RANK_BY``, ``CHURNML_MIN_CALL_EFFECT``, ``CHURNML_CONTROL_SHARE``,
    ``CHURNML_REVENUE_MONTHS``, ``CHURNML_SUPPRESS_DAYS``, ``CHURNML_PSI_WARNING``,
    ``CHURNML_BAND_SHIFT_WARNING``, ``CHURNML_FRESHNESS_GRACE_DAYS``, ``CHURNML_CURRENCY``;
    flags override them."""

    capacity: int = 100  # as training's precision at K (TrainingSettings.capacity)
    rank_by: str | None = None  # None: from the model (RANK_BY_DEFAULT_WORDS)
    revenue_months: float = 12.0
    suppress_days: int = 14
    change_tolerance: float = 0.01
    psi_warning: float = 0.25
    band_shift_warning: float = 0.10
    band_history: int = 7
    freshness_grace_days: int = FRESHNESS_GRACE_DAYS
    currency: str = DEFAULT_CURRENCY  # the currency column of --out
    export_scope: str = "all"  # --out holds everyone scored (--out-scope list: the list)
    # Ranking by saved revenue: a customer whose call effect is below this is not picked.
    min_call_effect: float = 0.0
    # The share of the day's picks held out as a random control group (not to be called).
    control_share: float = 0.10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> RiskListSettings:
        """The list's settings from the environment, then ``overrides`` (flags; None ignored).

        A bad value names its variable; one that breaks a rule names the variable when it
        came from the environment, the setting otherwise."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, key, kind, expected in _LIST_VARIABLES:
            value = read_env(env, key, kind, expected)
            if value is not None:
                values[name], sources[name] = value, key
        currency = read_currency(env)
        if currency is not None:
            values["currency"], sources["currency"] = currency, "CHURNML_CURRENCY"
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
                sources.pop(name, None)
        settings = replace(cls(), **values)
        settings.check(sources)
        return settings

    def check(self, sources: Mapping[str, str] | None = None) -> None:
        """ConfigError on the first broken rule; ``sources`` maps a setting to the variable
        it was read from, which the message then names."""
        ranks = ", ".join(RANK_BY)
        rules = (
            ("capacity", "capacity", self.capacity >= 1, "expected at least 1 customer a day"),
            (
                "rank_by",
                "rank by",
                self.rank_by is None or self.rank_by in RANK_BY,
                f"expected one of {ranks}",
            ),
            (
                "control_share",
                "control share",
                0.0 <= self.control_share <= MAX_CONTROL_SHARE,
                f"expected a share from 0 to {MAX_CONTROL_SHARE}",
            ),
            (
                "min_call_effect",
                "min call effect",
                -1.0 <= self.min_call_effect <= 1.0,
                "expected a probability difference from -1 to 1",
            ),
            ("revenue_months", "revenue months", self.revenue_months > 0, "expected more than 0"),
            ("suppress_days", "suppress days", self.suppress_days >= 0, "expected 0 or more"),
            (
                "freshness_grace_days",
                "grace days",
                self.freshness_grace_days >= 0,
                "expected 0 or more",
            ),
        )
        for name, label, holds, expected in rules:
            if not holds:
                value = getattr(self, name)
                shown = repr(value) if isinstance(value, str) else str(value)
                where = f"{sources[name]}={shown}" if sources and name in sources else None
                raise ConfigError(f"{where or f'{label} {shown}'}: {expected}")


_LIST_VARIABLES = (
    ("capacity", "CHURNML_CAPACITY", int, "a whole number"),
    ("rank_by", "CHURNML_RANK_BY", str, "saved-revenue, revenue or probability"),
    ("min_call_effect", "CHURNML_MIN_CALL_EFFECT", float, "a number"),
    ("control_share", "CHURNML_CONTROL_SHARE", float, "a number"),
    ("revenue_months", "CHURNML_REVENUE_MONTHS", float, "a number"),
    ("suppress_days", "CHURNML_SUPPRESS_DAYS", int, "a whole number"),
    ("psi_warning", "CHURNML_PSI_WARNING", float, "a number"),
    ("band_shift_warning", "CHURNML_BAND_SHIFT_WARNING", float, "a number"),
    ("freshness_grace_days", "CHURNML_FRESHNESS_GRACE_DAYS", int, "a whole number of days"),
)


def _keys(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    keys = [k.strip() for k in env.get(name, "").split(",")]
    path = env.get(name + "_FILE")
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ConfigError(f"{name}_FILE={path}: cannot read it ({error.strerror})") from None
        keys += [line.strip() for line in lines if not line.strip().startswith("#")]
    keys = [k for k in keys if k]
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ConfigError(
            f"{name}: {len(short)} key(s) shorter than 16 characters; use long random keys "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return tuple(dict.fromkeys(keys))
