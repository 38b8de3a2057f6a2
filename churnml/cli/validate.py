"""``churnml validate``: every rule of the contract checked, each broken rule reported once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnml.cli.common import CustomersFile, InteractionsFile, QuietFlag, command_settings
from churnml.contract import DEFAULT_HORIZON_DAYS
from churnml.progress import Reporter, counted

RetentionContactsFile = Annotated[
    Path | None,
    typer.Option(
        "--retention-contacts",
        help="The retention team's table (customer_id, contacted_at, group, outcome, "
        "channel), checked against its rules and the customers.",
    ),
]

Horizon = Annotated[
    int,
    typer.Option(
        "--horizon",
        min=1,
        help="Days a control row promises that nobody on the team contacted the customer.",
    ),
]


def validate(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    retention_contacts: RetentionContactsFile = None,
    horizon: Horizon = DEFAULT_HORIZON_DAYS,
    quiet: QuietFlag = False,
) -> None:
    """Check the tables against every rule of the contract; report each broken rule once.

    Exit 0 when clean, 1 when it found problems, 2 when a file could not be read.
    """
    from churnml.validation import read_and_check

    settings = command_settings(customers=customers, interactions=interactions, tracking=False).core
    with Reporter(quiet=quiet).step("reading and checking"):
        result = read_and_check(
            settings.customers, settings.interactions, retention_contacts, horizon_days=horizon
        )
    counts = (
        f"{settings.customers}: {counted(len(result.customers), 'row')}; "
        f"{settings.interactions}: {counted(len(result.interactions), 'row')}"
    )
    if result.retention_contacts is not None:
        counts += f"; {retention_contacts}: {counted(len(result.retention_contacts), 'row')}"
    typer.echo(counts)
    if result.ok:
        typer.echo("ok: every rule of contract v1 holds")
        return
    for breach in result.breaches:
        policy = "stops every command" if breach.policy == "stop" else "rows are set aside"
        typer.echo(f"{breach.message()} [{policy}]")
    typer.echo(f"{len(result.breaches)} broken rule{'s' if len(result.breaches) > 1 else ''}")
    raise typer.Exit(1)
