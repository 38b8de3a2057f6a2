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
    if table is not None:
        with reporter.step(f"scoring {table}"):
            scores, lacking = training.score_table_lacking(
                table, settings.training, id_column=id_column, model_uri=settings.model_uri
            )
    else:
        day = parse_date(as_of, "--as-of")
        if day is None:
            raise ConfigError("score needs --as-of YYYY-MM-DD (or --table FILE)")
        scores, lacking = _score_day(settings, day, reporter)
    write_table(scores, out)
    typer.echo(f"{counted(len(scores), 'customer')} scored -> {out}")
    line = lacking_line(lacking, len(scores))
    if line is not None:
        typer.echo(line)


def _score_day(
    settings: CommandSettings, day: dt.date, reporter: Reporter
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The model's scores of the customers active on ``day``, on the command's engine, and
    how many of them lacked each field the model was trained on almost always having."""
    from churnml.engines.scoring import day_scores
    from model.loading import load_model
    from model.predictor import Predictor

    loaded = load_model(settings.model_uri, settings.training.resolved_tracking_uri())
    with opened(settings.core, reporter) as chosen:
        with reporter.step(f"scoring the customers active on {day}{on_cluster(chosen)}"):
            scored = day_scores(chosen, Predictor(loaded.model), day)
    scored.frame["model_version"] = loaded.version or loaded.uri
    return scored.frame, scored.lacking
