"""A small parameter search within a time budget, for any fit that can score a candidate.

``search(evaluate, first=..., space=..., budget_seconds=..., seed=...)`` tries ``first``
(the current defaults) and then seeded random draws over ``space``, each merged into
``first``, until the budget is spent; the candidate with the lowest validation log loss
wins, ties keeping the earlier one (the defaults when nothing beats them).
``evaluate(params) -> (validation_log_loss, best_rounds)`` is the caller's: the
interaction path fits on a fold's training rows with early stopping on its validation
snapshots (``training.fit``); a table path can average k folds.

A trial that cannot finish inside the budget is never started: before each draw the
search estimates its duration as the longest trial so far, and stops when the time
left is shorter. The defaults always run, whatever the budget (they are the fit)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Evaluate = Callable[[dict[str, Any]], tuple[float, int]]
Draw = Sequence[Any] | Callable[[np.random.Generator], Any]
"""One parameter's candidates: values to choose from uniformly, or ``draw(rng) -> value``."""

MAX_DRAW_ATTEMPTS = 50  # draws that repeat an earlier candidate before the search gives up


@dataclass(frozen=True)
class Trial:
    """One candidate: its number (0: ``first``), the parameters it changed against
    ``first`` (all of ``space``'s names), its validation log loss, the rounds early
    stopping chose and how long it took."""

    number: int
    params: dict[str, Any]
    validation_log_loss: float
    best_rounds: int
    seconds: float

    def record(self) -> dict[str, Any]:
        """The trial as one row of the run's trials table."""
        row = asdict(self)
        return {**{k: v for k, v in row.items() if k != "params"}, **self.params}


@dataclass(frozen=True)
class Search:
    """Every trial in order, the winner's number and its full parameters."""

    trials: tuple[Trial, ...]
    best_number: int
    best_params: dict[str, Any]
    budget_seconds: float

    @property
    def best(self) -> Trial:
        return self.trials[self.best_number]

    @property
    def searched(self) -> bool:
        """Whether any candidate besides ``first`` was tried."""
        return len(self.trials) > 1


def search(
    evaluate: Evaluate,
    *,
    first: Mapping[str, Any],
    space: Mapping[str, Draw],
    budget_seconds: float,
    seed: int,
    max_trials: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Search:
    """Try ``first``, then random draws over ``space`` while ``budget_seconds`` allow.

    ``first``: the full parameters of the first candidate (the defaults); each draw
    replaces the names of ``space`` in it. ``max_trials`` (None: no limit) counts
    ``first`` too. ``clock``: seconds, monotonic (a test passes its own)."""
    if budget_seconds < 0:
        raise ValueError(f"budget_seconds = {budget_seconds}: expected >= 0")
    unknown = sorted(set(space) - set(first))
    if unknown:
        raise ValueError(f"space names {unknown} that the first candidate does not set")
    rng = np.random.default_rng(seed)
    start = clock()
    first = dict(first)
    trials = [_run(evaluate, first, 0, list(space), clock)]
    best_number, best_params = 0, first
    seen = {_key(first, space)}
    while max_trials is None or len(trials) < max_trials:
        left = budget_seconds - (clock() - start)
        if left < max(t.seconds for t in trials):
            break
        candidate = _draw(first, space, rng, seen)
        if candidate is None:
            break
        trial = _run(evaluate, candidate, len(trials), list(space), clock)
        trials.append(trial)
        if trial.validation_log_loss < trials[best_number].validation_log_loss:
            best_number, best_params = trial.number, candidate
    return Search(tuple(trials), best_number, best_params, float(budget_seconds))


def _run(
    evaluate: Evaluate,
    params: dict[str, Any],
    number: int,
    names: list[str],
    clock: Callable[[], float],
) -> Trial:
    began = clock()
    loss, rounds = evaluate(dict(params))
    return Trial(
        number=number,
        params={name: params[name] for name in names},
        validation_log_loss=float(loss),
        best_rounds=int(rounds),
        seconds=float(clock() - began),
    )


def _draw(
    first: dict[str, Any],
    space: Mapping[str, Draw],
    rng: np.random.Generator,
    seen: set[tuple[Any, ...]],
) -> dict[str, Any] | None:
    """A candidate not tried yet, or None when the space seems exhausted."""
    for _ in range(MAX_DRAW_ATTEMPTS):
        candidate = dict(first)
        for name, draw in space.items():
            candidate[name] = _value(draw, rng)
        key = _key(candidate, space)
        if key not in seen:
            seen.add(key)
            return candidate
    return None


def _value(draw: Draw, rng: np.random.Generator) -> Any:
    if callable(draw):
        return draw(rng)
    value = draw[int(rng.integers(len(draw)))]
    return value.item() if isinstance(value, np.generic) else value


def _key(params: Mapping[str, Any], space: Mapping[str, Draw]) -> tuple[Any, ...]:
    return tuple(params[name] for name in space)
