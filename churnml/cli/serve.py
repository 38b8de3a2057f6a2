"""``churnml serve``: the scoring service (``serving.service``) under ``bentoml serve``."""

from __future__ import annotations

import errno
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from churnml.cli.common import ModelUri
from churnml.errors import ConfigError
from serving.settings import ServingSettings

ROOT = Path(__file__).resolve().parents[2]  # BentoML's working dir: where serving/ lives


def serve(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = (
        ServingSettings.port
    ),
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; 0.0.0.0 to accept other hosts.")
    ] = ServingSettings.host,
    model: ModelUri = None,
    # None: CHURNML_SERVE_WORKERS, else the settings' default (a flag default would hide both).
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes, one model each "
            f"(default: {ServingSettings.workers}; CHURNML_SERVE_WORKERS).",
        ),
    ] = None,
) -> None:
    """Start the scoring service for CRM systems (BentoML; see docs/serving.md).

    Needs API keys (CHURNML_API_KEYS / CHURNML_ADMIN_KEYS or *_FILE) unless CHURNML_AUTH=off,
    and a champion model in the MLflow registry.
    """
    from churnml.tracking import check_reachable
    from serving.loading import check_registered

    settings = ServingSettings.from_env(model_uri=model, workers=workers, host=host, port=port)
    check_port_free(settings.host, settings.port)
    check_reachable(settings.tracking_uri)
    version = check_registered(settings.model_uri, settings.tracking_uri)
    typer.echo(_banner(settings, version))
    try:
        completed = subprocess.run(
            _bentoml_serve(settings), env=settings.process_environment(os.environ), check=False
        )
    except KeyboardInterrupt:
        return
    if completed.returncode not in (0, -2, 130):
        raise typer.Exit(completed.returncode)


def check_port_free(host: str, port: int) -> None:
    """ConfigError (one line, exit 2) when ``host:port`` cannot be bound: another process
    listens there, or the address is not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the server will bind (SO_REUSEADDR): a port left in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another churnml serve?): stop "
                    "that process or pick another --port"
                ) from None
            raise ConfigError(
                f"--host {host} --port {port}: cannot listen there ({error.strerror}); "
                "use an address of this machine, e.g. 127.0.0.1"
            ) from None


def _bentoml_serve(settings: ServingSettings) -> list[str]:
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    return [
        str(bentoml_cli) if bentoml_cli.exists() else "bentoml",
        "serve",
        "serving.service:ChurnService",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--working-dir",
        str(ROOT),
    ]


def _banner(settings: ServingSettings, version: str, env: Mapping[str, str] | None = None) -> str:
    """What the service is and an example request that works when pasted into a shell."""
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    port = settings.port
    key, header = _key_line(settings, os.environ if env is None else env), ""
    if settings.auth:
        header = '-H "Authorization: Bearer $KEY" '
    return (
        f"serving {settings.model_uri} (version {version}) on http://{shown}:{port} with "
        f"{_workers(settings.workers)}; auth {'on' if settings.auth else 'OFF'}. Try:\n"
        + (f"  {key}\n" if key else "")
        + f"  curl -s http://{shown}:{port}/score {header}"
        '-H \'Content-Type: application/json\' -d \'{"customers": [{"customer_id": "C1", '
        '"signup_date": "2024-01-15", "plan": "standard", "interactions": [{"interaction_id": '
        '"I1", "started_at": "2026-05-30T10:00:00Z", "channel": "phone", "wait_seconds": 840, '
        '"status": "unresolved"}]}], "as_of": "2026-06-01"}\''
    )


def _workers(count: int) -> str:
    return "1 worker" if count == 1 else f"{count} workers"


def _key_line(settings: ServingSettings, env: Mapping[str, str]) -> str | None:
    """The shell line that sets KEY to a key the service accepts, from where it is
    configured (never the key itself: the banner may be logged)."""
    if not settings.auth:
        return None
    for name in ("CHURNML_API_KEYS", "CHURNML_ADMIN_KEYS"):
        if env.get(name, "").strip(","):
            return f'KEY="${{{name}%%,*}}"'
        path = env.get(name + "_FILE")
        if path:
            return f"KEY=$(grep -m 1 -v '^#' {shlex.quote(str(Path(path).resolve()))})"
    return None
