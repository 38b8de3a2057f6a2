"""Progress shown on standard error: a spinner per step, bars where the work is counted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and the noun in the number it needs: "1 row", "2,000 rows"."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


class Reporter:
    """Prints what a command does and how long each step takes, to standard error."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True, quiet=quiet, highlight=False)

    def info(self, message: str) -> None:
        self.console.print(message, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """A spinner while the step runs, then a line with its time."""
        started = time.perf_counter()
        with self.console.status(f"{text}..."):
            yield
        elapsed = time.perf_counter() - started
        self.console.print(f"[green]✓[/green] {text} [dim]({elapsed:.1f}s)[/dim]")

    @contextmanager
    def stages(self) -> Iterator[Callable[[str, int, int], None]]:
        """Counted bars, one per stage; yields ``update(stage, done, total)``."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        tasks: dict[str, int] = {}
        with Progress(*columns, console=self.console) as progress:

            def update(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total)
                progress.update(tasks[stage], completed=done, total=total)

            yield update
