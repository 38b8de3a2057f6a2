"""The parameter search: the defaults first, seeded draws, the lowest validation loss wins,
and a budget bounds the trials (counted on a clock the test drives, never timed)."""

from __future__ import annotations

from typing import Any

import pytest

from training.tuning import search

FIRST = {"num_leaves": 15, "learning_rate": 0.05, "objective": "binary"}
SPACE = {"num_leaves": (4, 7, 15, 31, 63), "learning_rate": (0.02, 0.05, 0.1)}


class FakeClock:
    """Seconds that pass only when a trial runs: each evaluation takes ``step`` seconds."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        return self.now


def recording(clock: FakeClock, loss: Any = None) -> tuple[list[dict[str, Any]], Any]:
    seen: list[dict[str, Any]] = []

    def evaluate(params: dict[str, Any]) -> tuple[float, int]:
        seen.append(params)
        clock.now += clock.step
        value = loss(params) if loss else 1.0 / params["num_leaves"]
        return value, 100

    return seen, evaluate


def test_the_defaults_are_the_first_candidate() -> None:
    clock = FakeClock()
    seen, evaluate = recording(clock)
    found = search(evaluate, first=FIRST, space=SPACE, budget_seconds=4, seed=0, clock=clock)
    assert seen[0] == FIRST
    assert found.trials[0].number == 0 and found.trials[0].params == {
        "num_leaves": 15,
        "learning_rate": 0.05,
    }
    assert all(p["objective"] == "binary" for p in seen)  # draws change the space only


def test_a_zero_budget_runs_the_defaults_alone() -> None:
    clock = FakeClock()
    seen, evaluate = recording(clock)
    found = search(evaluate, first=FIRST, space=SPACE, budget_seconds=0, seed=0, clock=clock)
    assert seen == [FIRST]
    assert found.best_params == FIRST and not found.searched


@pytest.mark.parametrize(("budget", "trials"), [(0.5, 1), (1.0, 1), (2.0, 2), (5.5, 5)])
def test_no_trial_starts_that_the_budget_cannot_finish(budget: float, trials: int) -> None:
    """Each trial takes 1 s on the test's clock; after the first, a trial starts only
    when at least the longest trial so far is left."""
    clock = FakeClock()
    _, evaluate = recording(clock)
    found = search(evaluate, first=FIRST, space=SPACE, budget_seconds=budget, seed=3, clock=clock)
    assert len(found.trials) == trials
    assert clock.now <= max(budget, 1.0)  # the defaults always run once


def test_max_trials_caps_the_search_and_draws_are_seeded() -> None:
    runs = []
    for _ in range(2):
        clock = FakeClock()
        seen, evaluate = recording(clock)
        search(
            evaluate,
            first=FIRST,
            space=SPACE,
            budget_seconds=1000,
            seed=7,
            max_trials=4,
            clock=clock,
        )
        runs.append(seen)
    assert len(runs[0]) == 4
    assert runs[0] == runs[1]
    keys = [(p["num_leaves"], p["learning_rate"]) for p in runs[0]]
    assert len(set(keys)) == len(keys)  # no candidate twice


def test_the_lowest_loss_wins_and_ties_keep_the_defaults() -> None:
    clock = FakeClock()
    _, evaluate = recording(clock)  # loss 1 / num_leaves: more leaves win
    found = search(evaluate, first=FIRST, space=SPACE, budget_seconds=1000, seed=1, clock=clock)
    best = min(found.trials, key=lambda t: t.validation_log_loss)
    assert found.best.validation_log_loss == best.validation_log_loss
    assert found.best_params["num_leaves"] == best.params["num_leaves"]

    clock = FakeClock()
    _, flat = recording(clock, loss=lambda params: 0.5)
    tied = search(flat, first=FIRST, space=SPACE, budget_seconds=5, seed=1, clock=clock)
    assert tied.searched and tied.best_number == 0 and tied.best_params == FIRST


def test_a_space_name_the_defaults_lack_is_refused() -> None:
    with pytest.raises(ValueError, match="does not set"):
        search(
            lambda params: (0.0, 1),
            first=FIRST,
            space={"lambda_l2": (0.0, 1.0)},
            budget_seconds=1,
            seed=0,
        )
