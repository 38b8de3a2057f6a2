"""The ``churnml`` command line (contract v1, ``shared/contract.md``).

Every command builds one ``Settings`` from its flags and the environment and
passes it down. A user's mistake ends in one line on standard error and a
non-zero exit code (see ``churnml.errors``); never in a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from churnml.errors import ChurnmlError, ConfigError, DataError
from churnml.progress import Reporter
from churnml.settings import Settings

app = typer.Typer(
    name="churnml",
    help="Churn risk from customer-service interaction logs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CustomersFile = Annotated[
    Path | None,
    typer.Option(
        "--customers",
        help="Customers table (.csv, .parquet or folder). Default: the configured source "
        "(CHURNML_CUSTOMERS, else the sample world).",
    ),
]
InteractionsFile = Annotated[
    Path | None,
    typer.Option(
        "--interactions",
        help="Interactions table (.csv, .parquet or folder). Default: the configured source "
        "(CHURNML_INTERACTIONS, else the sample world).",
    ),
]
StrictFlag = Annotated[
    bool,
    typer.Option("--strict", help="Stop at the first broken rule instead of setting rows aside."),
]
IdColumn = Annotated[
    str | None, typer.Option("--id", help="The key column of --table (default: row number).")
]
QuietFlag = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]


class Engine(enum.StrEnum):
    local = "local"
    dask = "dask"


EngineFlag = Annotated[
    Engine | None,
    typer.Option(
        "--engine",
        help="local (one process, default) or dask (CHURNML_ENGINE): read, check, build "
        "features and score on a Dask cluster.",
    ),
]
SchedulerFlag = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="With --engine dask: the address of an existing Dask scheduler "
        "(tcp://HOST:8786; CHURNML_SCHEDULER). Default: a LocalCluster on this machine.",
    ),
]
ModelUri = Annotated[
    str | None,
    typer.Option("--model", help="Model URI (default: models:/churn-risk@champion)."),
]


class FileFormat(enum.StrEnum):
    csv = "csv"
    parquet = "parquet"


def parse_date(value: str | None, flag: str) -> dt.date | None:
    """A YYYY-MM-DD flag value; ConfigError naming the flag otherwise."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: expected a date as YYYY-MM-DD") from None


def _settings(**overrides: object) -> Settings:
    return Settings.from_env(**overrides)


def _engine_settings(
    customers: Path | None,
    interactions: Path | None,
    strict: bool,
    engine: Engine | None,
    scheduler: str | None,
) -> Settings:
    """The settings of a command that reads the tables and runs on an engine."""
    return _settings(
        customers=customers,
        interactions=interactions,
        strict=strict or None,
        engine=engine.value if engine else None,
        scheduler=scheduler,
    )


def _training_settings(settings: Settings, **overrides: object):
    """training.TrainingSettings sharing the core settings' state folder and tracking URI."""
    import training

    return training.TrainingSettings.from_settings(settings, **overrides)


@app.command()
def validate(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    quiet: QuietFlag = False,
) -> None:
    """Check both tables against every rule of the contract; report each broken rule once.

    Exit 0 when clean, 1 when it found problems, 2 when a file could not be read.
    """
    from churnml.validation import read_and_check

    settings = _settings(customers=customers, interactions=interactions)
    reporter = Reporter(quiet=quiet)
    with reporter.step("reading and checking"):
        result = read_and_check(settings.customers, settings.interactions)
    out = typer.echo
    out(
        f"{settings.customers}: {len(result.customers):,} rows; "
        f"{settings.interactions}: {len(result.interactions):,} rows"
    )
    if result.ok:
        out("ok: every rule of contract v1 holds")
        return
    for breach in result.breaches:
        policy = "stops every command" if breach.policy == "stop" else "rows are set aside"
        out(f"{breach.message()} [{policy}]")
    out(f"{len(result.breaches)} broken rule{'s' if len(result.breaches) > 1 else ''}")
    raise typer.Exit(1)


@app.command()
def features(
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of", help="The day D (YYYY-MM-DD): features see contacts up to the end of D, UTC."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file, .csv or .parquet.")],
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    engine: EngineFlag = None,
    scheduler: SchedulerFlag = None,
    strict: StrictFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Write one row per customer active on --as-of: customer_id and the feature columns."""
    from churnml.io import check_output_path, write_table

    settings = _engine_settings(customers, interactions, strict, engine, scheduler)
    day = parse_date(as_of, "--as-of")
    check_output_path(out)
    reporter = Reporter(quiet=quiet)
    if settings.engine == "dask":
        from churnml import dask_engine

        with _dask(settings, reporter) as tables:
            with reporter.step(f"building features as of {day} on the cluster"):
                frame = dask_engine.build_features_dask(tables, day)
        _require_active(frame, day)
    else:
        tables = _load(settings, reporter)
        frame = _build_features(tables, day, reporter)
    with reporter.step(f"writing {out}"):
        write_table(frame.reset_index(), out)
    reporter.info(f"{len(frame):,} customers active on {day}, {frame.shape[1]} features -> {out}")


@app.command()
def generate(
    customers: Annotated[
        int,
        typer.Option(
            "--customers",
            min=1,
            help="Customers at the start of the simulation (more sign up as it runs).",
        ),
    ] = 3000,
    days: Annotated[int, typer.Option("--days", min=1, help="Days to simulate.")] = 540,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same files.")
    ] = 42,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for customers, interactions and oracle tables.")
    ] = Path("world"),
    start_date: Annotated[
        str, typer.Option("--start-date", help="First simulated day, YYYY-MM-DD.")
    ] = "2025-01-01",
    oracle_as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--oracle-as-of",
            help="Day(s) for the oracle's true probabilities (repeatable). "
            "Default: the last day minus the horizon.",
        ),
    ] = None,
    no_oracle: Annotated[
        bool, typer.Option("--no-oracle", help="Write no oracle table (faster for big worlds).")
    ] = False,
    horizon: Annotated[
        int,
        typer.Option(
            "--horizon", min=1, help="Horizon in days of the oracle's probabilities and labels."
        ),
    ] = 30,
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="File format of the tables.")
    ] = FileFormat.csv,
    quiet: QuietFlag = False,
) -> None:
    """Simulate a world of customers, their service contacts and their churn."""
    from churnml.simulator import generate_world

    start = parse_date(start_date, "--start-date")
    oracle_days = [parse_date(value, "--oracle-as-of") for value in oracle_as_of or []]
    reporter = Reporter(quiet=quiet)
    with reporter.stages() as update:
        summary = generate_world(
            n_customers=customers,
            days=days,
            seed=seed,
            out_dir=out,
            start_date=start,
            oracle_as_of=[] if no_oracle else (oracle_days or None),
            horizon_days=horizon,
            file_format=file_format.value,
            progress=update,
        )
    auc = ", ".join(f"{day}: {value:.3f}" for day, value in summary.oracle_roc_auc.items())
    typer.echo(
        f"{summary.customers:,} customers ({summary.arrivals:,} signed up during the run), "
        f"{summary.interactions:,} contacts, {summary.churned:,} left; "
        f"churn {summary.churn_rate_30d:.1%} per 30 days -> {out}"
    )
    if auc:
        typer.echo(f"oracle ROC-AUC (the best any model can do) on {auc}")


@app.command()
def train(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Train on snapshots whose labels are complete by D (YYYY-MM-DD). "
            "Default: the latest contact day.",
        ),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon",
            min=1,
            help="Label horizon H in days (default: "
            "TrainingSettings.horizon_days, see docs/training.md).",
        ),
    ] = None,
    backtest: Annotated[
        int | None,
        typer.Option(
            "--backtest",
            min=1,
            help="Rolling backtest folds K (default: TrainingSettings.backtest_folds).",
        ),
    ] = None,
    capacity: Annotated[
        int | None,
        typer.Option(
            "--capacity",
            min=1,
            help="Daily retention capacity K for precision/recall "
            "at K (default: TrainingSettings.capacity).",
        ),
    ] = None,
    tuning_budget: Annotated[
        float | None,
        typer.Option(
            "--tuning-budget",
            min=0,
            help="Seconds for the optional parameter search (default: none).",
        ),
    ] = None,
    blend: Annotated[
        str | None,
        typer.Option(
            "--blend",
            help="stack: the logistic regression joins the trees in log-odds with a weight "
            "chosen on validation (default); none: the trees alone.",
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            help="A labelled customer table (one row per customer) instead of interaction logs.",
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="The label column of --table.")
    ] = None,
    id_column: IdColumn = None,
    engine: EngineFlag = None,
    scheduler: SchedulerFlag = None,
    strict: StrictFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Train on time snapshots (or a labelled table), log to MLflow, register the model.

    With --engine dask the snapshots are built on a Dask cluster and LightGBM trains there
    on every training row (lightgbm.dask); see docs/training.md.
    """
    import training

    settings = _engine_settings(customers, interactions, strict, engine, scheduler)
    training_settings = _training_settings(
        settings,
        horizon_days=horizon,
        backtest_folds=backtest,
        capacity=capacity,
        blend=blend,
        tuning_budget_seconds=tuning_budget,
    )
    reporter = Reporter(quiet=quiet)
    if table is not None:
        if label is None:
            raise ConfigError("--table needs --label COLUMN, the column that says who churned")
        if engine is Engine.dask:
            raise ConfigError(
                "--table trains on the local engine (one labelled row per customer fits one "
                "machine); drop --engine dask"
            )
        if settings.engine == "dask":
            reporter.info("CHURNML_ENGINE=dask: --table trains on the local engine")
        result = training.train_from_table(
            table, label, training_settings, id_column=id_column, report=reporter.info
        )
    else:
        if label is not None or id_column is not None:
            raise ConfigError("--label and --id go with --table; drop them or pass --table FILE")
        day = parse_date(as_of, "--as-of")
        if settings.engine == "dask":
            from training.dask_train import train_dask

            with _dask(settings, reporter) as dask_tables:
                result = train_dask(dask_tables, training_settings, as_of=day, report=reporter.info)
        else:
            tables = _load(settings, reporter)
            result = training.train_from_tables(
                tables.customers,
                tables.interactions,
                training_settings,
                as_of=day,
                report=reporter.info,
            )
    typer.echo(result.summary())


@app.command()
def score(
    out: Annotated[Path, typer.Option("--out", help="Output file, .csv or .parquet.")],
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Score the customers active on D (YYYY-MM-DD).")
    ] = None,
    model: ModelUri = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="A customer table to score row by row.")
    ] = None,
    id_column: IdColumn = None,
    engine: EngineFlag = None,
    scheduler: SchedulerFlag = None,
    strict: StrictFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Score every customer active on a day (or a labelled table) with a registered model."""
    import training
    from churnml.io import check_output_path, write_table

    settings = _engine_settings(customers, interactions, strict, engine, scheduler)
    training_settings = _training_settings(settings)
    check_output_path(out)
    reporter = Reporter(quiet=quiet)
    if table is not None:
        with reporter.step(f"scoring {table}"):
            scores = training.score_table(
                table, training_settings, id_column=id_column, model_uri=model
            )
    else:
        day = parse_date(as_of, "--as-of")
        if day is None:
            raise ConfigError("score needs --as-of YYYY-MM-DD (or --table FILE)")
        if settings.engine == "dask":
            scores = _score_on_dask(settings, training_settings, day, model, reporter)
        else:
            tables = _load(settings, reporter)
            with reporter.step(f"scoring the customers active on {day}"):
                scores = training.score_tables(
                    tables.customers, tables.interactions, day, training_settings, model_uri=model
                )
    write_table(scores, out)
    typer.echo(f"{len(scores):,} customers scored -> {out}")


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The churn-risk version to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the history.")] = "",
) -> None:
    """Make a registered model version the champion, as a person's decision."""
    import training

    settings = _settings()
    event = training.promote(
        version,
        _training_settings(settings),
        reason=reason,
    )
    typer.echo(f"champion: v{event['version']} (was v{event['previous']}), by {event['by']}")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why, for the history.")] = "",
) -> None:
    """Give the champion alias back to the previous champion."""
    import training

    settings = _settings()
    event = training.rollback(
        _training_settings(settings),
        reason=reason,
    )
    typer.echo(f"champion: v{event['version']} (was v{event['previous']}), by {event['by']}")


class RankBy(enum.StrEnum):
    revenue = "revenue"
    probability = "probability"


@app.command("risk-list")
def risk_list(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Score the customers active on D (YYYY-MM-DD). Default: the latest contact "
            "day in the data.",
        ),
    ] = None,
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also export the list (.csv or .parquet).")
    ] = None,
    capacity: Annotated[
        int | None,
        typer.Option(
            "--capacity",
            min=1,
            help="Customers the team can call a day (default 100; CHURNML_CAPACITY).",
        ),
    ] = None,
    rank_by: Annotated[
        RankBy | None,
        typer.Option(
            "--rank-by",
            help="revenue (expected revenue at risk, default) or probability (CHURNML_RANK_BY).",
        ),
    ] = None,
    months: Annotated[
        float | None,
        typer.Option(
            "--months",
            min=0.01,
            help="Months of revenue at risk: probability x monthly "
            "revenue x months (default 12; CHURNML_REVENUE_MONTHS).",
        ),
    ] = None,
    suppress: Annotated[
        Path | None,
        typer.Option(
            "--suppress",
            help="Contacts made by the retention team: a table with customer_id and "
            "contacted_at. Customers contacted in the last --suppress-days days are marked.",
        ),
    ] = None,
    suppress_days: Annotated[
        int | None,
        typer.Option(
            "--suppress-days",
            min=0,
            help="Days a contact suppresses a customer (default 14; CHURNML_SUPPRESS_DAYS).",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="SQLAlchemy URL of the list store (CHURNML_RISK_STORE; default SQLite "
            "CHURNML_HOME/risk-lists.db).",
        ),
    ] = None,
    model: ModelUri = None,
    engine: EngineFlag = None,
    scheduler: SchedulerFlag = None,
    strict: StrictFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Write the day's list of customers to call, with reasons, actions and changes."""
    settings = _engine_settings(customers, interactions, strict, engine, scheduler)
    result = _risk_list(
        settings,
        parse_date(as_of, "--as-of"),
        out=out,
        store=store,
        model=model,
        suppress=suppress,
        quiet=quiet,
        capacity=capacity,
        rank_by=rank_by.value if rank_by else None,
        revenue_months=months,
        suppress_days=suppress_days,
    )
    typer.echo(result.summary())


def _risk_list(
    settings: Settings,
    day: dt.date | None,
    *,
    out: Path | None = None,
    store: str | None = None,
    model: str | None = None,
    suppress: Path | None = None,
    quiet: bool = False,
    tables=None,
    report=None,
    **overrides: object,
):
    import functools

    from churnml.io import check_output_path, read_table, write_table
    from serving.loading import load_served_model
    from serving.risklist import (
        export_frame,
        make_risk_list,
        make_risk_list_dask,
        read_suppression,
    )
    from serving.settings import DEFAULT_MODEL_URI, RiskListSettings
    from serving.store import RiskListStore, store_url

    list_settings = RiskListSettings.from_env(**overrides)
    if out is not None:
        check_output_path(out)
    reporter = Reporter(quiet=quiet)
    suppression = None
    if suppress is not None:  # checked before any work
        suppression = read_suppression(read_table(suppress, "suppression"), str(suppress))
    uri = model or settings.model_uri or DEFAULT_MODEL_URI
    with reporter.step(f"loading {uri}"):
        served = load_served_model(uri, settings.effective_tracking_uri)
    target = RiskListStore(store_url(settings.home, store or settings.risk_store))
    on_dask = tables is None and settings.engine == "dask"  # given tables are local ones
    with contextlib.ExitStack() as cluster:
        if on_dask:
            from churnml import dask_engine

            tables = cluster.enter_context(_dask(settings, reporter))
            make = functools.partial(make_risk_list_dask, tables)
        else:
            tables = tables if tables is not None else _load(settings, reporter)
            make = functools.partial(make_risk_list, tables.customers, tables.interactions)
        if day is None:
            if on_dask:
                day = dask_engine.latest_contact_day(tables)
            elif not tables.interactions.empty:
                day = tables.interactions["started_at"].max().date()
            if day is None:
                raise DataError(f"{settings.interactions}: no contacts; pass --as-of YYYY-MM-DD")
        with reporter.step(f"making the risk list of {day}" + (" on the cluster" * on_dask)):
            result = make(
                day,
                served,
                target,
                list_settings,
                suppression=suppression,
                suppression_name=str(suppress),
                report=report,
            )
    if out is not None:
        write_table(export_frame(result), out)
        result.notes.append(f"exported to {out}")
    return result


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 3000,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; 0.0.0.0 to accept other hosts.")
    ] = "127.0.0.1",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model URI (models:/NAME@ALIAS or models:/NAME/VERSION). Default: "
            "CHURNML_MODEL_URI, else models:/churn-risk@champion.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (one model each).")
    ] = 1,
) -> None:
    """Start the scoring service for CRM systems (BentoML; see docs/serving.md).

    Needs API keys (CHURNML_API_KEYS / CHURNML_ADMIN_KEYS or *_FILE) unless CHURNML_AUTH=off,
    and a champion model in the MLflow registry.
    """
    import os
    import subprocess

    from serving.loading import check_registered
    from serving.settings import ServingSettings

    settings = ServingSettings.from_env(model_uri=model, workers=workers)
    env = settings.process_environment(os.environ)
    version = check_registered(settings.model_uri, settings.tracking_uri)
    root = Path(__file__).resolve().parent.parent
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    command = [
        str(bentoml_cli) if bentoml_cli.exists() else "bentoml",
        "serve",
        "serving.service:ChurnService",
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(root),
    ]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(
        f"serving {settings.model_uri} (version {version}) on http://{shown}:{port} with "
        f"{workers} worker(s); auth {'on' if settings.auth else 'OFF'}. Try:\n"
        f"  curl -s http://{shown}:{port}/score -H 'Authorization: Bearer $KEY' "
        '-H \'Content-Type: application/json\' -d \'{"customers": [{"customer_id": "C1", '
        '"signup_date": "2024-01-15", "plan": "standard", "interactions": [{"interaction_id": '
        '"I1", "started_at": "2026-05-30T10:00:00Z", "channel": "phone", "wait_seconds": 840, '
        '"status": "unresolved"}]}], "as_of": "2026-06-01"}\''
    )
    try:
        completed = subprocess.run(command, env=env, check=False)
    except KeyboardInterrupt:
        return
    if completed.returncode not in (0, -2, 130):
        raise typer.Exit(completed.returncode)


@app.command()
def run(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    serve_after: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="Start the scoring service on the champion at the end."
        ),
    ] = True,
    port: Annotated[int, typer.Option("--port", "-p", help="Port of the service.")] = 3000,
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
    import training
    from churnml.io import write_table

    settings = _settings(customers=customers, interactions=interactions)
    reporter = Reporter(quiet=quiet)
    tables = _load(settings, reporter)
    if tables.interactions.empty:
        raise DataError(f"{settings.interactions}: no contacts to build features from")
    as_of = tables.interactions["started_at"].max().date()
    frame = _build_features(tables, as_of, reporter)
    out = settings.home / "features" / f"features-{as_of}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    with reporter.step(f"writing {out}"):
        write_table(frame.reset_index(), out)
    typer.echo(
        f"{len(tables.customers):,} customers, {len(tables.interactions):,} contacts; "
        f"{len(frame):,} customers active on {as_of} with {frame.shape[1]} features -> {out}"
    )

    training_settings = _training_settings(settings)
    result = training.train_from_tables(
        tables.customers, tables.interactions, training_settings, report=reporter.info
    )
    typer.echo(result.summary())
    if result.champion_version is None:
        event = training.promote(
            result.model_version,
            training_settings,
            reason="quickstart: churnml run found no champion and accepted the new model; "
            "the gate's reasons are on the run",
        )
        typer.echo(
            f"quickstart: no champion existed, so version {event['version']} was promoted "
            "explicitly (decision 'quickstart'); the gate's reasons above still stand"
        )
    result = _risk_list(settings, as_of, tables=tables, quiet=quiet)
    typer.echo(result.summary())
    if serve_after:
        _local_api_key(settings)
        typer.echo(
            f"the retention team's page: http://127.0.0.1:{port}/ (it asks for the key); "
            f"the list as JSON: GET /risk-list, as CSV: GET /risk-list.csv"
        )
        serve(port=port, host="127.0.0.1", model=None, workers=1)


def _local_api_key(settings: Settings) -> None:
    """Without configured keys, a key for this machine in CHURNML_HOME/api-key (mode 600)."""
    import os
    import secrets

    names = (
        "CHURNML_API_KEYS",
        "CHURNML_API_KEYS_FILE",
        "CHURNML_ADMIN_KEYS",
        "CHURNML_ADMIN_KEYS_FILE",
    )
    if any(os.environ.get(name) for name in names) or os.environ.get("CHURNML_AUTH") == "off":
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
        f"(KEY=$(cat {path}) and send 'Authorization: Bearer $KEY')"
    )


def _load(settings: Settings, reporter: Reporter):
    from churnml.validation import load_tables

    with reporter.step(f"reading {settings.customers.name} and {settings.interactions.name}"):
        tables = load_tables(
            settings.customers,
            settings.interactions,
            quarantine_dir=settings.quarantine_dir,
            strict=settings.strict,
            report=reporter.warn,
        )
    return tables


@contextlib.contextmanager
def _dask(settings: Settings, reporter: Reporter):
    """The validated tables on a Dask cluster (an existing scheduler or a LocalCluster)."""
    from churnml import dask_engine

    where = settings.scheduler or f"a LocalCluster of {settings.dask_workers} workers"
    with contextlib.ExitStack() as stack:
        with reporter.step(f"connecting to {where}"):
            client = stack.enter_context(
                dask_engine.client(settings.scheduler, settings.dask_workers)
            )
        with reporter.step(
            f"reading {settings.customers.name} and {settings.interactions.name} on the cluster"
        ):
            tables = dask_engine.load_tables_dask(
                settings.customers,
                settings.interactions,
                client=client,
                quarantine_dir=settings.quarantine_dir,
                strict=settings.strict,
                report=reporter.warn,
            )
        yield tables


def _score_on_dask(settings: Settings, training_settings, day: dt.date, model, reporter):
    import training.scoring
    from churnml import dask_engine

    uri = model or f"models:/{training_settings.model_name}@champion"
    chosen = training.scoring.load_model(training_settings, uri)
    with _dask(settings, reporter) as tables:
        with reporter.step(f"scoring the customers active on {day} on the cluster"):
            scores = dask_engine.score_dask(chosen, tables, day)
    frame = dask_engine.score_file_frame(scores, day)
    frame["model_version"] = training.scoring.version_of(uri, training_settings)
    return frame


def _require_active(frame, as_of: dt.date) -> None:
    if frame.empty:
        raise DataError(
            f"no customer is active on {as_of} (signed up on or before it and not yet left); "
            "choose another --as-of"
        )


def _build_features(tables, as_of: dt.date, reporter: Reporter):
    from features import build_features

    with reporter.step(f"building features as of {as_of}"):
        frame = build_features(tables.customers, tables.interactions, as_of)
    _require_active(frame, as_of)
    return frame


def _quiet_libraries() -> None:
    """MLflow's and alembic's INFO lines ("Creating initial MLflow database tables...") and
    MLflow's hint about type hints on the pyfunc say nothing a churnml user can act on."""
    import logging
    import warnings

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: one line and an exit code for a user's mistake.

    Usage errors (unknown flags, bad values) are reported by the CLI framework itself,
    with exit code 2; churnml's own errors are caught here.
    """
    _quiet_libraries()
    try:
        app(args=argv, prog_name="churnml")
    except ChurnmlError as error:
        typer.echo(f"churnml: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.echo("churnml: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
