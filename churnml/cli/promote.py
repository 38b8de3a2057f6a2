"""``churnml promote`` and ``churnml rollback``: a person's decision on the champion alias."""

from __future__ import annotations

from typing import Annotated

import typer

from churnml.cli.common import command_settings

Reason = Annotated[str, typer.Option("--reason", help="Why, for the history.")]


def promote(
    version: Annotated[str, typer.Argument(help="The churn-risk version to make champion.")],
    reason: Reason = "",
) -> None:
    """Make a registered model version the champion, as a person's decision."""
    import training

    event = training.promote(version, command_settings().training, reason=reason)
    _say(event)


def rollback(reason: Reason = "") -> None:
    """Give the champion alias back to the previous champion."""
    import training

    event = training.rollback(command_settings().training, reason=reason)
    _say(event)


def _say(event: dict) -> None:
    typer.echo(f"champion: v{event['version']} (was v{event['previous']}), by {event['by']}")
