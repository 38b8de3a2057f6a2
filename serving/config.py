"""Settings of the scoring service, built from the environment when the service starts.

| setting | environment variable | default |
|---|---|---|
| model_uri | ``CHURNML_MODEL_URI`` | ``models:/churn-risk@champion`` |
| api_keys | ``CHURNML_API_KEYS`` (comma-separated) and ``CHURNML_API_KEYS_FILE`` | none |
| admin_keys | ``CHURNML_ADMIN_KEYS`` and ``CHURNML_ADMIN_KEYS_FILE`` | none |
| auth | ``CHURNML_AUTH`` (``on`` / ``off``) | ``on``: with no key the service will not start |
| max_body_bytes | ``CHURNML_MAX_BODY_BYTES`` | 33554432 (32 MiB) |
| tracking URI | ``MLFLOW_TRACKING_URI`` | SQLite under ``CHURNML_HOME`` (``churnml.settings``) |
| risk_store | ``CHURNML_RISK_STORE`` | SQLite ``CHURNML_HOME/risk-lists.db`` (``serving.store``) |

A keys file holds one key per line; blank lines and lines starting with ``#`` are skipped.
Admin keys may also score. Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from churnml.errors import ConfigError
from churnml.settings import Settings
from model.loading import DEFAULT_MODEL_URI, resolve_model_uri

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ServingSettings:
    model_uri: str = DEFAULT_MODEL_URI
    api_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    auth: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    tracking_uri: str = ""
    home: Path = Path(".churnml")
    risk_store: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        env = os.environ if env is None else env
        core = Settings.from_env(env)
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
        try:
            max_body = int(env.get("CHURNML_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        except ValueError:
            raise ConfigError(
                f"CHURNML_MAX_BODY_BYTES={env['CHURNML_MAX_BODY_BYTES']!r}: expected bytes, "
                "a whole number"
            ) from None
        if max_body < 1024:
            raise ConfigError(f"CHURNML_MAX_BODY_BYTES={max_body}: expected at least 1024")
        return cls(
            model_uri=resolve_model_uri(None, env),
            api_keys=api_keys,
            admin_keys=admin_keys,
            auth=auth_word == "on",
            max_body_bytes=max_body,
            tracking_uri=core.effective_tracking_uri,
            home=core.home,
            risk_store=env.get("CHURNML_RISK_STORE") or None,
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
