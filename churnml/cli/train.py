"""``churnml train``: on time snapshots of the tables (either engine) or a labelled table."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnml.cli.common import (
    CommandSettings,
    CustomersFile,
    EngineFlag,
    IdColumn,
    InteractionsFile,
    QuietFlag,
    RetentionContactsSource,
    SchedulerFlag,
    StrictFlag,
    command_settings,
    opened,
    parse_date,
)
from churnml.errors import ConfigError
from churnml.progress import Reporter
from training.settings import REFIT_METHODS, TrainingSettings

if TYPE_CHECKING:
    from training.pipeline import TrainResult


AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Train on snapshots whose labels are complete by D (YYYY-MM-DD). "
        "Default: the latest contact day.",
    ),
]

Horizon = Annotated[
    int,
    typer.Option("--horizon", min=1, help="Label horizon H in days (see docs/training.md)."),
]

Horizons = Annotated[
    str | None,
    typer.Option(
        "--horizons",
        help="Also fit one time-to-churn model giving churn within each of these days "
        "(e.g. 7,30,90: increasing whole days, --horizon among them); see docs/training.md.",
    ),
]

Backtest = Annotated[int, typer.Option("--backtest", min=1, help="Rolling backtest folds K.")]

Capacity = Annotated[
    int,
    typer.Option("--capacity", min=1, help="Daily retention capacity K for precision/recall at K."),
]

TuningBudget = Annotated[
    float,
    typer.Option(
        "--tuning-budget",
        min=0,
        help="A ceiling in seconds for the parameter search on fold 1's validation "
        "snapshots (a trial that cannot finish in time is not started); 0: no search, the "
        "default parameters. The search's size is --tuning-trials.",
    ),
]

TuningTrials = Annotated[
    int,
    typer.Option(
        "--tuning-trials",
        min=0,
        help="How many candidates the parameter search tries, the defaults first, then "
        "seeded random draws: a count, so the same data give the same model on any "
        "machine; 0: as many as --tuning-budget allows.",
    ),
]

RefitMethod = enum.StrEnum("RefitMethod", {name: name for name in REFIT_METHODS})
DEFAULT_REFIT = RefitMethod(TrainingSettings.refit)

Refit = Annotated[
    RefitMethod,
    typer.Option(
        "--refit",
        help="crossfit: register a model refit on every labelled snapshot with fold 1's "
        "parameters and rounds, calibrated on cross-fitted out-of-fold scores; holdout: "
        "fitted up to the newest block and calibrated on it; off: register fold 1's model. "
        "The gate decides on fold 1's evaluated metrics either way.",
    ),
]

Blend = Annotated[
    str,
    typer.Option(
        "--blend",
        help="stack: the logistic regression joins the trees in log-odds with a weight "
        "chosen on validation; none: the trees alone.",
    ),
]

LabelledTable = Annotated[
    Path | None,
    typer.Option(
        "--table",
        help="A labelled customer table (one row per customer) instead of interaction logs.",
    ),
]

LabelColumn = Annotated[str | None, typer.Option("--label", help="The label column of --table.")]


def train(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    retention_contacts: RetentionContactsSource = None,
    as_of: AsOf = None,
    horizon: Horizon = TrainingSettings.horizon_days,
    horizons: Horizons = None,
    backtest: Backtest = TrainingSettings.backtest_folds,
    capacity: Capacity = TrainingSettings.capacity,
    tuning_budget: TuningBudget = TrainingSettings.tuning_budget_seconds,
    tuning_trials: TuningTrials = TrainingSettings.tuning_max_trials,
    blend: Blend = TrainingSettings.blend,
    refit: Refit = DEFAULT_REFIT,
    table: LabelledTable = None,
    label: LabelColumn = None,
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
    settings = command_settings(
        customers=customers,
        interactions=interactions,
        retention_contacts=retention_contacts,
        engine=engine,
        scheduler=scheduler,
        strict=strict,
        training={
            "horizon_days": horizon,
            "horizons": horizons_flag(horizons, horizon),
            "backtest_folds": backtest,
            "capacity": capacity,
            "blend": blend,
            "tuning_budget_seconds": tuning_budget,
            "tuning_max_trials": tuning_trials,
            "refit": refit.value,
        },
    )
    reporter = Reporter(quiet=quiet)
    if table is not None:
        if horizons is not None:
            raise ConfigError(
                "--horizons needs interaction logs (days to churn after each snapshot day); "
                "drop it with --table"
            )
        result = _train_on_table(settings, table, label, id_column, engine, reporter)
    else:
        if label is not None or id_column is not None:
            raise ConfigError("--label and --id go with --table; drop them or pass --table FILE")
        if horizons is not None and settings.core.engine == "dask":
            raise ConfigError(
                "--horizons trains on the local engine for now (the time-to-churn model's "
                "period rows are not built on the cluster); drop --engine dask or --horizons"
            )
        day = parse_date(as_of, "--as-of")
        with opened(settings.core, reporter) as chosen:
            result = chosen.train(settings.training, as_of=day, report=reporter.info)
    typer.echo(result.summary())


def horizons_flag(value: str | None, horizon: int) -> tuple[int, ...] | None:
    """``--horizons`` checked (``training.horizons.parse_horizons``: one line naming the
    value and the fix); None when not given."""
    if value is None:
        return None
    from training.horizons import parse_horizons

    return parse_horizons(value, horizon)


def _train_on_table(
    settings: CommandSettings,
    table: Path,
    label: str | None,
    id_column: str | None,
    engine: enum.StrEnum | None,
    reporter: Reporter,
) -> TrainResult:
    """--table trains on the local engine: one labelled row per customer fits one machine."""
    import training

    if label is None:
        raise ConfigError("--table needs --label COLUMN, the column that says who churned")
    if engine is not None and engine.value == "dask":
        raise ConfigError(
            "--table trains on the local engine (one labelled row per customer fits one "
            "machine); drop --engine dask"
        )
    if settings.core.engine == "dask":
        reporter.info("CHURNML_ENGINE=dask: --table trains on the local engine")
    return training.train_from_table(
        table, label, settings.training, id_column=id_column, report=reporter.info
    )
