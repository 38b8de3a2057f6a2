"""Progress shown on standard error: a spinner per step, a bar where the work is counted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


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
        started = time.perf_counter()
        with self.console.status(f"{text}..."):
            yield
        self.console.print(
            f"[green]✓[/green] {text} [dim]({time.perf_counter() - started:.1f}s)[/dim]"
        )

    @contextmanager
    def bar(self, text: str, total: int) -> Iterator[Callable[[int], None]]:
        """A counted bar; yields ``advance(n)``."""
        started = time.perf_counter()
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(text, total=total)
            yield lambda n=1: progress.advance(task, n)
        self.console.print(
            f"[green]✓[/green] {text} [dim]({time.perf_counter() - started:.1f}s)[/dim]"
        )
