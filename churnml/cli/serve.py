"""``churnml serve``: the scoring service (``serving.service``) under ``bentoml serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from churnml.cli.common import ModelUri
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


def _banner(settings: ServingSettings, version: str) -> str:
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    port = settings.port
    return (
        f"serving {settings.model_uri} (version {version}) on http://{shown}:{port} with "
        f"{settings.workers} worker(s); auth {'on' if settings.auth else 'OFF'}. Try:\n"
        f"  curl -s http://{shown}:{port}/score -H 'Authorization: Bearer $KEY' "
        '-H \'Content-Type: application/json\' -d \'{"customers": [{"customer_id": "C1", '
        '"signup_date": "2024-01-15", "plan": "standard", "interactions": [{"interaction_id": '
        '"I1", "started_at": "2026-05-30T10:00:00Z", "channel": "phone", "wait_seconds": 840, '
        '"status": "unresolved"}]}], "as_of": "2026-06-01"}\''
    )
