"""The known-direction constraints (``features.columns.RISK_RISING`` / ``RISK_FALLING``)
with and without, on the committed sample world, side by side in one run.

python benchmarks/monotone_bench.py [WORLD_DIR]

Trains twice (one backtest fold, as the serving tests do; its own tracking store in a
temporary folder each time): once with the trees free, once constrained. Prints per run
the booster's validation ROC-AUC (the fold that produces the model, before the blend and
the calibrator), the served model's test ROC-AUC and PR-AUC, the blend's linear weight, and
the logistic baseline's test ROC-AUC, the linear term's coefficients against their known
direction, the (customer, feature) pairs where raising one known-direction feature lowers
the trees' raw score, and the behaviour check of ``tests/training/test_behaviour.py``: the
largest drop of the probability when one unresolved case, long wait or abandoned call is
added to each of 300 customers' histories (and a pending case with a 60 s wait, which also
shortens the mean wait).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from churnml.validation import load_tables
from training import TrainingSettings, learners, train_from_tables

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def run(folder: Path, constrained: bool) -> dict[str, float]:
    from tests.training.behaviour import (
        against_direction,
        largest_drops,
        load_trained,
        trees_falling,
    )

    tables = load_tables(folder / "customers.csv", folder / "interactions.csv")
    validation: list[float] = []
    fit, direction = learners.fit_booster, learners.risk_direction

    def recording_fit(train_x, train_y, valid_x, valid_y, params, weight=None):  # noqa: ANN001, ANN202
        booster = fit(train_x, train_y, valid_x, valid_y, params, weight)
        raw = booster.predict(valid_x, num_iteration=booster.best_iteration or None)
        validation.append(float(roc_auc_score(valid_y, raw)))
        return booster

    learners.fit_booster = recording_fit
    if not constrained:  # no known direction: neither the trees nor the regression
        learners.risk_direction = lambda column: 0
    try:
        home = Path(tempfile.mkdtemp(prefix="churnml-monotone-"))
        settings = TrainingSettings(home=home, backtest_folds=1)
        result = train_from_tables(tables.customers, tables.interactions, settings)
    finally:
        learners.fit_booster, learners.risk_direction = fit, direction
    model = load_trained(home, result.model_uri)
    drops = largest_drops(model, tables.customers, tables.interactions)
    return {
        "validation_roc_auc_trees": validation[-1],
        "test_roc_auc": result.test["model"]["roc_auc"],
        "test_pr_auc": result.test["model"]["pr_auc"],
        "logistic_test_roc_auc": result.test["logistic"]["roc_auc"],
        "linear_against_direction": float(len(against_direction(model))),
        "trees_fall_when_raised": float(
            trees_falling(model, tables.customers, tables.interactions)
        ),
        "linear_weight": model.blend.linear_weight if model.blend else 0.0,
        **{f"largest_drop_{k}": v for k, v in drops.items()},
    }


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    rows = {name: run(folder, name == "constrained") for name in ("free", "constrained")}
    keys = list(rows["free"])
    print(f"{'':32} {'free':>10} {'constrained':>12}")
    for key in keys:
        free, constrained = rows["free"][key], rows["constrained"][key]
        print(f"{key:32} {free:10.4f} {constrained:12.4f}")
    np.testing.assert_equal(len(keys), len(rows["constrained"]))


if __name__ == "__main__":
    main()
