"""``churnml generate``: a simulated world (``churnml.simulator``) with its oracle."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from churnml.cli.common import QuietFlag, parse_date
from churnml.errors import ConfigError
from churnml.progress import Reporter
from churnml.settings import WorldSettings
from churnml.simulator.params import SimulationParams

FileFormat = enum.StrEnum("FileFormat", {name: name for name in ("csv", "parquet")})
DEFAULT_FORMAT = FileFormat(WorldSettings.file_format)
DEFAULT_START = WorldSettings.start_date.isoformat()


Customers = Annotated[
    int,
    typer.Option(
        "--customers",
        min=1,
        help="Customers at the start of the simulation (more sign up as it runs).",
    ),
]

Days = Annotated[int, typer.Option("--days", min=1, help="Days to simulate.")]

Seed = Annotated[
    int, typer.Option("--seed", help="Random seed; the same seed gives the same files.")
]

WorldFolder = Annotated[
    Path, typer.Option("--out", help="Folder for customers, interactions and oracle tables.")
]

StartDate = Annotated[str, typer.Option("--start-date", help="First simulated day, YYYY-MM-DD.")]

OracleDays = Annotated[
    list[str] | None,
    typer.Option(
        "--oracle-as-of",
        help="Day(s) for the oracle's true probabilities (repeatable). "
        "Default: the last day minus the horizon.",
    ),
]

NoOracle = Annotated[
    bool, typer.Option("--no-oracle", help="Write no oracle table (faster for big worlds).")
]

Horizon = Annotated[
    int,
    typer.Option(
        "--horizon", min=1, help="Horizon in days of the oracle's probabilities and labels."
    ),
]

Format = Annotated[FileFormat, typer.Option("--format", help="File format of the tables.")]

RetentionStart = Annotated[
    str | None,
    typer.Option(
        "--retention-start",
        help="First day the retention team picks and calls customers, YYYY-MM-DD. "
        "Default: a third of the way through the simulated days.",
    ),
]

NoRetention = Annotated[
    bool,
    typer.Option(
        "--no-retention", help="No retention team: no calls and no retention_contacts table."
    ),
]

ControlShare = Annotated[
    float,
    typer.Option(
        "--control-share",
        min=0.0,
        max=1.0,
        help="Share of the retention team's picks held out as control (not called).",
    ),
]

OracleStreams = Annotated[
    int,
    typer.Option(
        "--oracle-streams",
        min=1,
        help="Independent replicate streams of the oracle's true call effect; with 2 or "
        "more the oracle also writes true_call_effect_1, _2, ... (one per stream).",
    ),
]

OracleReplicates = Annotated[
    int,
    typer.Option("--oracle-replicates", min=1, help="Monte Carlo replicates per oracle stream."),
]


OracleHorizons = Annotated[
    str | None,
    typer.Option(
        "--oracle-horizons",
        help="Horizons in days for the oracle's true probabilities, e.g. 7,30,90: "
        "true_probability_<H>d and label_<H>d for each (and for --horizon), all from one "
        "Monte Carlo run to the longest. Without --oracle-as-of the oracle date is then "
        "the last day minus the longest.",
    ),
]


def parse_oracle_horizons(value: str) -> tuple[int, ...]:
    """``"7,30,90"`` -> (7, 30, 90); one line naming the value and the fix otherwise."""
    parts = [part.strip() for part in value.split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ConfigError(
            f"--oracle-horizons {value!r}: expected whole days >= 1 separated by commas, "
            "e.g. --oracle-horizons 7,30,90"
        )
    return tuple(sorted({int(part) for part in parts}))


def generate(
    customers: Customers = WorldSettings.customers,
    days: Days = WorldSettings.days,
    seed: Seed = WorldSettings.seed,
    out: WorldFolder = WorldSettings.out,
    start_date: StartDate = DEFAULT_START,
    oracle_as_of: OracleDays = None,
    no_oracle: NoOracle = False,
    horizon: Horizon = WorldSettings.horizon_days,
    file_format: Format = DEFAULT_FORMAT,
    retention_start: RetentionStart = None,
    no_retention: NoRetention = False,
    control_share: ControlShare = SimulationParams.retention_control_share,
    oracle_streams: OracleStreams = SimulationParams.oracle_streams,
    oracle_replicates: OracleReplicates = SimulationParams.oracle_replicates,
    oracle_horizons: OracleHorizons = None,
    quiet: QuietFlag = False,
) -> None:
    """Simulate a world of customers, their service contacts and their churn."""
    from churnml.simulator import generate_world

    world = WorldSettings(
        customers,
        days,
        seed,
        out,
        parse_date(start_date, "--start-date"),
        horizon,
        file_format.value,
    )
    oracle_days = [parse_date(value, "--oracle-as-of") for value in oracle_as_of or []]
    team_start = parse_date(retention_start, "--retention-start") if retention_start else None
    params = SimulationParams(
        retention_control_share=control_share,
        oracle_streams=oracle_streams,
        oracle_replicates=oracle_replicates,
        oracle_horizons=parse_oracle_horizons(oracle_horizons) if oracle_horizons else (),
    )
    with Reporter(quiet=quiet).stages() as update:
        summary = generate_world(
            n_customers=world.customers,
            days=world.days,
            seed=world.seed,
            out_dir=world.out,
            start_date=world.start_date,
            oracle_as_of=[] if no_oracle else (oracle_days or None),
            horizon_days=world.horizon_days,
            file_format=world.file_format,
            progress=update,
            params=params,
            retention=not no_retention,
            retention_start=team_start,
        )
    auc = ", ".join(f"{day}: {value:.3f}" for day, value in summary.oracle_roc_auc.items())
    typer.echo(
        f"{summary.customers:,} customers ({summary.arrivals:,} signed up during the run), "
        f"{summary.interactions:,} contacts, {summary.churned:,} left; "
        f"churn {summary.churn_rate_30d:.1%} per 30 days -> {out}"
    )
    if summary.retention_start is not None:
        typer.echo(
            f"retention team from {summary.retention_start}: "
            f"{summary.retention_contacts:,} picks, {summary.retention_controls:,} held out "
            "as control"
        )
    if auc:
        typer.echo(f"oracle ROC-AUC (the best any model can do) on {auc}")
    if auc and oracle_horizons:
        days_list = ", ".join(map(str, summary.oracle_horizons))
        typer.echo(f"oracle true probabilities within {days_list} days (one run to the longest)")
