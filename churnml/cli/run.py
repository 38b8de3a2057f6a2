"""``churnml run``: the quickstart, from the tables to a champion, its list and the service."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import TYPE_CHECKING, Annotated

import typer

from churnml.cli.common import (
    CommandSettings,
    CustomersFile,
    InteractionsFile,
    QuietFlag,
    command_settings,
    features_of,
    latest_day,
    opened,
)
from churnml.cli.risk_list import ListJob
from churnml.cli.serve import serve
from churnml.cli.train import Horizons, horizons_flag
from churnml.progress import Reporter, counted
from churnml.settings import Settings
from serving.settings import ServingSettings
from training.settings import TrainingSettings

if TYPE_CHECKING:
    from churnml.engines import Engine

KEY_VARIABLES = (
    "CHURNML_API_KEYS",
    "CHURNML_API_KEYS_FILE",
    "CHURNML_ADMIN_KEYS",
    "CHURNML_ADMIN_KEYS_FILE",
)


def run(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    serve_after: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="Start the scoring service on the champion at the end."
        ),
    ] = True,
    port: Annotated[int, typer.Option("--port", "-p", help="Port of the service.")] = (
        ServingSettings.port
    ),
    horizons: Horizons = None,
    quiet: QuietFlag = False,
) -> None:
    """The main job on the configured data (default: the sample world).

    Checks the tables, builds features as of the latest contact day, trains on weekly
    snapshots, logs the run to MLflow and registers the model behind the promotion gate.
    When the registry has no champion yet and the gate keeps the new model as
    challenger, the quickstart promotes it explicitly (recorded as the decision
    "quickstart") and says why the gate held it. It writes the risk list of the latest
    contact day with the champion (the store under CHURNML_HOME), then starts the service on
    127.0.0.1; without configured API keys it makes one for this machine and saves it in
    CHURNML_HOME/api-key.
    """
    settings = command_settings(
        customers=customers,
        interactions=interactions,
        lists={},
        training={"horizons": horizons_flag(horizons, TrainingSettings.horizon_days)},
    )
    local = dataclasses.replace(settings.core, engine="local")  # the quickstart runs here
    reporter = Reporter(quiet=quiet)
    with opened(local, reporter) as engine:
        missing = f"{local.interactions}: no contacts to build features from"
        as_of = latest_day(engine, missing)
        _write_features(engine, local, as_of, reporter)
        _train_and_promote(engine, settings, reporter)
        job = ListJob.prepare(settings, reporter)
        typer.echo(job.make(engine, as_of, reporter).summary())
    if serve_after:
        _local_api_key(settings.core)
        typer.echo(
            f"the retention team's page: http://127.0.0.1:{port}/ (it asks for the key); "
            f"the list as JSON: GET /risk-list, as CSV: GET /risk-list.csv"
        )
        serve(port=port, host="127.0.0.1", model=None, workers=1)


def _write_features(engine: Engine, settings: Settings, as_of: dt.date, reporter: Reporter) -> None:
    from churnml.io import write_table

    frame = features_of(engine, as_of, reporter)
    out = settings.home / "features" / f"features-{as_of}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    with reporter.step(f"writing {out}"):
        write_table(frame.reset_index(), out)
    tables = engine.tables()
    typer.echo(
        f"{counted(len(tables.customers), 'customer')}, "
        f"{counted(len(tables.interactions), 'contact')}; "
        f"{counted(len(frame), 'customer')} active on {as_of} with "
        f"{counted(frame.shape[1], 'feature')} -> {out}"
    )


def _train_and_promote(engine: Engine, settings: CommandSettings, reporter: Reporter) -> None:
    """Train; with no champion yet, promote the new model as the quickstart's decision."""
    import training

    result = engine.train(settings.training, as_of=None, report=reporter.info)
    typer.echo(result.summary())
    if result.champion_version is None:
        event = training.promote(
            result.model_version,
            settings.training,
            reason="quickstart: churnml run found no champion and accepted the new model; "
            "the gate's reasons are on the run",
        )
        typer.echo(
            f"quickstart: no champion existed, so version {event['version']} was promoted "
            "explicitly (decision 'quickstart'); the gate's reasons above still stand"
        )


def _local_api_key(settings: Settings) -> None:
    """Without configured keys, a key for this machine in CHURNML_HOME/api-key (mode 600)."""
    import secrets

    if (
        any(os.environ.get(name) for name in KEY_VARIABLES)
        or os.environ.get("CHURNML_AUTH") == "off"
    ):
        return
    path = settings.home / "api-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    os.environ["CHURNML_API_KEYS_FILE"] = str(path.resolve())
    typer.echo(
        f"no API keys configured: this local service accepts the key in {path} "
        '(send it as "Authorization: Bearer $KEY"; the example below sets KEY)'
    )
