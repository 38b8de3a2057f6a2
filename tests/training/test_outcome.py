"""What ``churnml train`` says it did to the registry: one line, said once."""

from __future__ import annotations

import pytest

from training.pipeline import TrainResult
from training.promotion import GateDecision

METRICS = {"roc_auc": 0.8, "pr_auc": 0.3, "brier": 0.05, "ece": 0.01, "lift_top_decile": 3.0}


def result(version: str, champion: str | None) -> TrainResult:
    return TrainResult(
        run_id="r1",
        model_version=version,
        model_uri=f"models:/churn-risk/{version}",
        kind="interactions",
        test={"model": METRICS},
        folds=(),
        gate=GateDecision(promote=champion == version, reasons=("a reason",)),
        champion_version=champion,
        as_of=None,
    )


@pytest.mark.parametrize(
    ("version", "champion", "line"),
    [
        ("1", "1", "registered as version 1, now the champion (alias champion)"),
        (
            "2",
            "1",
            "registered as version 2 (alias challenger); the champion stays version 1",
        ),
        (
            "1",
            None,
            "registered as version 1 (alias challenger); no champion yet: "
            "`churnml promote 1` makes it one",
        ),
    ],
)
def test_the_summary_ends_with_one_outcome_line(version, champion, line) -> None:
    summary = result(version, champion).summary().splitlines()
    assert summary[-1] == line
    assert sum("registered as" in s for s in summary) == 1
    assert not any(s.startswith("champion: v") for s in summary)
