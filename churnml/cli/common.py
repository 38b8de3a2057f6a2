"""What every command shares: the app, its options, the one settings object a command
builds, the engine steps it reports, and ``main``'s error handling.

A user's mistake ends in one line on standard error and a non-zero exit code (see
``churnml.errors``); never in a traceback. Help shows every default from the settings
objects (``Settings``, ``TrainingSettings``, ``RiskListSettings``, ``ServingSettings``,
``WorldSettings``), never a second copy of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from churnml.errors import ChurnmlError, ConfigError, DataError
from churnml.progress import Reporter
from churnml.settings import ENGINES, Settings, state_umask
from model.loading import DEFAULT_MODEL_URI, resolve_model_uri
from serving.settings import RiskListSettings
from training.settings import TrainingSettings

if TYPE_CHECKING:
    import pandas as pd

    from churnml.engines import Engine


class Command(TyperCommand):
    """A command whose help shows no type for a switch (``--strict``, not
    ``--strict <bool>``): a switch takes no value."""

    def get_params(self, ctx: Any) -> list[Any]:  # typer's own click types
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.display_type_rich = _no_type  # type: ignore[method-assign]
        return params


def _no_type(ctx: Any) -> None:
    return None


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
RetentionContactsSource = Annotated[
    Path | None,
    typer.Option(
        "--retention-contacts",
        help="The retention team's picks and outcomes (customer_id, contacted_at, group, "
        "outcome, channel): train fits the call-effect model from its treated and control "
        "picks and leaves the calls out of the churn target. Default: the configured source "
        "(CHURNML_RETENTION_CONTACTS, else the sample world's when both tables are the "
        "sample's).",
    ),
]
StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="SQLAlchemy URL of the list store (CHURNML_RISK_STORE; default SQLite "
        "CHURNML_HOME/risk-lists.db).",
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

EngineName = enum.StrEnum("EngineName", {name: name for name in ENGINES})
EngineFlag = Annotated[
    EngineName | None,
    typer.Option(
        "--engine",
        help="local (one process) or dask: read, check, build features and score on a Dask "
        f"cluster (default: {Settings.engine}; CHURNML_ENGINE).",
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
    typer.Option(
        "--model",
        help="Model URI, models:/NAME@ALIAS or models:/NAME/VERSION "
        f"(default: {DEFAULT_MODEL_URI}; CHURNML_MODEL_URI).",
    ),
]


@dataclass(frozen=True)
class CommandSettings:
    """One command's settings, built once from its flags and ``CHURNML_*``, by concern:
    ``core`` (home, data, engine, tracking, list store), ``training``, and ``lists`` for
    the commands that make a risk list."""

    core: Settings
    training: TrainingSettings
    lists: RiskListSettings | None = None

    @property
    def model_uri(self) -> str:
        """--model, else CHURNML_MODEL_URI, else the registry's champion."""
        return resolve_model_uri(None, self.core.model_uri)


def command_settings(
    *,
    engine: enum.StrEnum | None = None,
    strict: bool = False,
    training: Mapping[str, Any] | None = None,
    lists: Mapping[str, Any] | None = None,
    tracking: bool = True,
    **core: Any,
) -> CommandSettings:
    """The command's settings from its flags (None, or False for --strict: not given, the
    environment decides) and the environment, read once here. With ``tracking`` (the
    commands that use MLflow) the tracking store is tried first: one line when it is
    unreachable, before any work."""
    from churnml.tracking import check_reachable

    env = os.environ
    base = Settings.from_env(
        env, engine=engine.value if engine else None, strict=strict or None, **core
    )
    if tracking:
        check_reachable(base.effective_tracking_uri)
    return CommandSettings(
        base,
        TrainingSettings.from_settings(base, **(training or {})),
        None if lists is None else RiskListSettings.from_env(env, **lists),
    )


def parse_date(value: str | None, flag: str) -> dt.date | None:
    """A YYYY-MM-DD flag value; ConfigError naming the flag otherwise."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: expected a date as YYYY-MM-DD") from None


@contextlib.contextmanager
def opened(settings: Settings, reporter: Reporter) -> Iterator[Engine]:
    """The engine of ``settings`` (``churnml.engines.open_engine``), its tables read and
    checked, each step reported; a cluster it started is closed on exit."""
    from churnml.engines import open_engine

    with contextlib.ExitStack() as stack:
        if settings.engine == "dask":
            where = settings.scheduler or f"a LocalCluster of {settings.dask_workers} workers"
            with reporter.step(f"connecting to {where}"):
                engine = stack.enter_context(open_engine(settings, reporter.warn))
        else:
            engine = stack.enter_context(open_engine(settings, reporter.warn))
        names = f"{settings.customers.name} and {settings.interactions.name}"
        with reporter.step(f"reading {names}{on_cluster(engine)}"):
            engine.tables()
        yield engine


def on_cluster(engine: Engine) -> str:
    """The end of a step's text: where the step runs."""
    return " on the cluster" if engine.name == "dask" else ""


def latest_day(engine: Engine, missing: str) -> dt.date:
    """The day of the latest kept contact, a command's default day; DataError ``missing``
    when the tables keep no contact."""
    day = engine.latest_day()
    if day is None:
        raise DataError(missing)
    return day


def features_of(engine: Engine, day: dt.date, reporter: Reporter) -> pd.DataFrame:
    """The features of the customers active on ``day``; DataError when nobody is."""
    with reporter.step(f"building features as of {day}{on_cluster(engine)}"):
        frame = engine.features(day)
    if frame.empty:
        raise DataError(
            f"no customer is active on {day} (signed up on or before it and not yet left); "
            "choose another --as-of"
        )
    return frame


def _quiet_libraries() -> None:
    """MLflow's and alembic's INFO lines ("Creating initial MLflow database tables...") and
    MLflow's hint about type hints on the pyfunc say nothing a churnml user can act on."""
    import logging
    import warnings

    from churnml.tracking import REQUEST_DEFAULTS

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    for name, value in REQUEST_DEFAULTS.items():  # a server gone away: fail, do not hang
        os.environ.setdefault(name, value)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: one line and an exit code for a user's mistake.

    Usage errors (unknown flags, bad values) are reported by the CLI framework itself,
    with exit code 2; churnml's own errors are caught here. The umask of churnml's state
    (``CHURNML_UMASK``, see ``churnml.settings``) is set first, for the whole process and
    the processes it starts, before anything is created.
    """
    _quiet_libraries()
    try:
        os.umask(state_umask())
        app(args=argv, prog_name="churnml")
    except ChurnmlError as error:
        typer.echo(f"churnml: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.echo("churnml: interrupted", err=True)
        sys.exit(130)
