"""``churnml score``: the scores of a day (``churnml.engines.scoring``) or of a table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnml.cli.common import (
    CommandSettings,
    CustomersFile,
    EngineFlag,
    IdColumn,
    InteractionsFile,
    ModelUri,
    QuietFlag,
    SchedulerFlag,
    StrictFlag,
    command_settings,
    on_cluster,
    opened,
    parse_date,
)
from churnml.errors import ConfigError
from churnml.progress import Reporter, counted

if TYPE_CHECKING:
    import pandas as pd


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
    horizons: Annotated[
        str | None,
        typer.Option(
            "--horizons",
            help="Columns churn_probability_<H>d for these of the model's horizons (e.g. "
            "7,90); default: every horizon the model was trained with (--horizons at train).",
        ),
    ] = None,
    engine: EngineFlag = None,
    scheduler: SchedulerFlag = None,
    strict: StrictFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Score every customer active on a day (or a labelled table) with a registered model."""
    import training
    from churnml.io import check_output_path, write_table
    from model.schema import lacking_line

    settings = command_settings(
        customers=customers,
        interactions=interactions,
        engine=engine,
        scheduler=scheduler,
        strict=strict,
        model_uri=model,
    )
    check_output_path(out)
    reporter = Reporter(quiet=quiet)
    chosen_horizons = _parse_horizons(horizons)
    if table is not None:
        if chosen_horizons is not None:
            raise ConfigError(
                "--horizons: a model trained on a customer table has no horizons; drop "
                "--horizons or score interaction logs with a model trained with --horizons"
            )
        with reporter.step(f"scoring {table}"):
            scores, lacking = training.score_table_lacking(
                table, settings.training, id_column=id_column, model_uri=settings.model_uri
            )
    else:
        day = parse_date(as_of, "--as-of")
        if day is None:
            raise ConfigError("score needs --as-of YYYY-MM-DD (or --table FILE)")
        scores, lacking = _score_day(settings, day, reporter, chosen_horizons)
    write_table(scores, out)
    typer.echo(f"{counted(len(scores), 'customer')} scored -> {out}")
    line = lacking_line(lacking, len(scores))
    if line is not None:
        typer.echo(line)


def _parse_horizons(value: str | None) -> tuple[int, ...] | None:
    """``--horizons`` as whole days (which of them the model has: ``Predictor``)."""
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ConfigError(
            f"--horizons {value!r}: expected whole days >= 1 separated by commas, e.g. "
            "--horizons 7,90"
        )
    return tuple(int(part) for part in parts)


def _score_day(
    settings: CommandSettings,
    day: dt.date,
    reporter: Reporter,
    horizons: tuple[int, ...] | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The model's scores of the customers active on ``day``, on the command's engine, and
    how many of them lacked each field the model was trained on almost always having."""
    from churnml.engines.scoring import day_scores
    from model.loading import load_model
    from model.predictor import Predictor

    loaded = load_model(settings.model_uri, settings.training.resolved_tracking_uri())
    predictor = Predictor(loaded.model, horizons=horizons)  # before the tables are read
    with opened(settings.core, reporter) as chosen:
        with reporter.step(f"scoring the customers active on {day}{on_cluster(chosen)}"):
            scored = day_scores(chosen, predictor, day)
    scored.frame["model_version"] = loaded.version or loaded.uri
    return scored.frame, scored.lacking
