"""``churnml features``: the feature frame of one day, on the local or the Dask engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnml.cli.common import (
    CustomersFile,
    EngineFlag,
    InteractionsFile,
    QuietFlag,
    SchedulerFlag,
    StrictFlag,
    command_settings,
    features_of,
    opened,
    parse_date,
)
from churnml.progress import Reporter, counted


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

    settings = command_settings(
        tracking=False,
        customers=customers,
        interactions=interactions,
        engine=engine,
        scheduler=scheduler,
        strict=strict,
    ).core
    day = parse_date(as_of, "--as-of")
    check_output_path(out)
    reporter = Reporter(quiet=quiet)
    with opened(settings, reporter) as chosen:
        frame = features_of(chosen, day, reporter)
    with reporter.step(f"writing {out}"):
        write_table(frame.reset_index(), out)
    reporter.info(
        f"{counted(len(frame), 'customer')} active on {day}, "
        f"{counted(frame.shape[1], 'feature')} -> {out}"
    )
