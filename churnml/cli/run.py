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

DEFAULT_HISTORY_WEEKS = 8
HistoryWeeks = Annotated[
    int,
    typer.Option(
        "--history-weeks",
        min=0,
        help="Also write the weekly lists of the N weeks before the latest contact day "
        "(oldest first, a few seconds each on the sample), so the report has past lists "
        "to show; 0: only the day's list.",
    ),
]
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
    history_weeks: HistoryWeeks = DEFAULT_HISTORY_WEEKS,
    quiet: QuietFlag = False,
) -> None:
    """The main job on the configured data (default: the sample world).

    Checks the tables, builds features as of the latest contact day, trains on weekly
    snapshots, logs the run to MLflow and registers the model behind the promotion gate.
    When the registry has no champion yet and the gate keeps the new model as
    challenger, the quickstart promotes it explicitly (recorded as the decision
    "quickstart") and says why the gate held it. With the champion it writes the weekly
    lists of the --history-weeks weeks before the latest contact day, oldest first, then
    the list of that day (the store under CHURNML_HOME), imports the retention team's
    contacts when the data has them (CHURNML_RETENTION_CONTACTS, the sample's on the
    sample) and prints how the stored lists did (``churnml report``). Then it starts the
    service on 127.0.0.1; without configured API keys it makes one for this machine and
    saves it in CHURNML_HOME/api-key.
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
        _past_lists(job, engine, as_of, history_weeks, reporter)
        typer.echo(job.make(engine, as_of, reporter).summary())
    _retention_contacts(settings)
    _report(settings.core)
    if serve_after:
        _local_api_key(settings.core)
        typer.echo(
            f"the retention team's page: http://127.0.0.1:{port}/ (it asks for the key); "
            f"the list as JSON: GET /risk-list, as CSV: GET /risk-list.csv; how our lists "
            'did: GET /report and the page\'s "How our lists did"'
        )
        serve(port=port, host="127.0.0.1", model=None, workers=1)


def _past_lists(
    job: ListJob, engine: Engine, as_of: dt.date, weeks: int, reporter: Reporter
) -> None:
    """The lists of the ``weeks`` weeks before ``as_of``, oldest first (each compares
    with the one before), by the champion, as ``churnml risk-list --as-of`` makes them;
    days before the first contact are left out, and said so."""
    import time

    if weeks == 0:
        return
    first = engine.tables().interactions["started_at"].min().date()
    wanted = [as_of - dt.timedelta(weeks=k) for k in range(weeks, 0, -1)]
    days = [day for day in wanted if day > first]
    if len(days) < len(wanted):
        typer.echo(
            f"past lists: {len(wanted) - len(days)} of the {weeks} weeks asked fall on or "
            f"before the first contact day {first}: left out"
        )
    if not days:
        return
    started = time.monotonic()
    for day in days:
        result = job.make(engine, day, reporter)
        typer.echo(result.summary().splitlines()[0])
    typer.echo(
        f"past lists: {counted(len(days), 'weekly list')} from {days[0]} to {days[-1]} "
        f"stored in {time.monotonic() - started:.0f} s (--history-weeks {weeks}; 0 skips "
        "them), so the report below can show how lists did; today's model scored them and "
        "was fitted on the outcomes of the weeks past their horizon, so their realised "
        "numbers show the report at work, not how a model does on weeks it has not seen"
    )


def _retention_contacts(settings: CommandSettings) -> None:
    """The retention team's contacts into the list store, as ``churnml
    retention-contacts --import`` stores them, when the data has them."""
    from churnml.cli.outcomes import import_contacts

    source = settings.core.retention_contacts
    if source is None:
        typer.echo(
            "no retention contacts configured (CHURNML_RETENTION_CONTACTS): the report "
            "below has no treated or control picks; import them with `churnml "
            "retention-contacts --import FILE`"
        )
        return
    typer.echo(import_contacts(settings.core, source, settings.training.horizon_days))


def _report(settings: Settings) -> None:
    """How the stored lists did, as ``churnml report`` prints it."""
    from churnml.cli.outcomes import report_of
    from serving.report import report_lines

    for line in report_lines(report_of(settings)):
        typer.echo(line)


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
