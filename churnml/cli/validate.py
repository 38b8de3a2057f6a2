"""``churnml validate``: every rule of the contract checked, each broken rule reported once."""

from __future__ import annotations

import typer

from churnml.cli.common import CustomersFile, InteractionsFile, QuietFlag, command_settings
from churnml.progress import Reporter


def validate(
    customers: CustomersFile = None,
    interactions: InteractionsFile = None,
    quiet: QuietFlag = False,
) -> None:
    """Check both tables against every rule of the contract; report each broken rule once.

    Exit 0 when clean, 1 when it found problems, 2 when a file could not be read.
    """
    from churnml.validation import read_and_check

    settings = command_settings(customers=customers, interactions=interactions, tracking=False).core
    with Reporter(quiet=quiet).step("reading and checking"):
        result = read_and_check(settings.customers, settings.interactions)
    typer.echo(
        f"{settings.customers}: {len(result.customers):,} rows; "
        f"{settings.interactions}: {len(result.interactions):,} rows"
    )
    if result.ok:
        typer.echo("ok: every rule of contract v1 holds")
        return
    for breach in result.breaches:
        policy = "stops every command" if breach.policy == "stop" else "rows are set aside"
        typer.echo(f"{breach.message()} [{policy}]")
    typer.echo(f"{len(result.breaches)} broken rule{'s' if len(result.breaches) > 1 else ''}")
    raise typer.Exit(1)
