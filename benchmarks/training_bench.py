"""Training quality and cost on simulated worlds.

python benchmarks/training_bench.py quality WORLD_DIR [WORLD_DIR ...]
    trains on each world (its own tracking store in a temporary folder) and prints
    the test ROC-AUC of the model, the baselines and the world's oracle on the
    oracle's customers and day, plus the training time.
python benchmarks/training_bench.py worlds
    generates several worlds (other seeds, sizes, churn rates) and runs quality on each.
python benchmarks/training_bench.py scale N [N ...]
    training time and peak memory for N customers (e.g. 100000 1000000).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from churnml.validation import load_tables
from training import TrainingSettings, train_from_tables
from training.model import ChurnModel
from training.scoring import load_model
from training.snapshots import contacts_in_window


def oracle_comparison(world: Path, settings: TrainingSettings, result_version: str) -> dict:
    """ROC-AUC of the model, the rule and the oracle on the oracle's (customer, day) rows."""
    tables = load_tables(world / "customers.csv", world / "interactions.csv")
    oracle = pd.read_csv(world / "oracle.csv", dtype={"customer_id": str})
    model: ChurnModel = load_model(settings, f"models:/{settings.model_name}/{result_version}")
    rows = []
    for day, part in oracle.groupby("as_of"):
        scores = model.score_tables(tables.customers, tables.interactions, day, with_reasons=False)
        merged = part.merge(scores, on="customer_id")
        merged["rule"] = (
            contacts_in_window(tables.interactions, pd.Timestamp(day))
            .reindex(merged["customer_id"])
            .fillna(0)
            .to_numpy()
        )
        rows.append(merged)
    merged = pd.concat(rows)
    return {
        "oracle_rows": len(merged),
        "model_roc_auc": roc_auc_score(merged["label"], merged["churn_probability"]),
        "oracle_roc_auc": roc_auc_score(merged["label"], merged["true_probability"]),
        "rule_roc_auc": roc_auc_score(merged["label"], merged["rule"]),
    }


def quality(world: Path, settings: TrainingSettings | None = None) -> dict:
    home = Path(tempfile.mkdtemp(prefix="churnml-bench-"))
    settings = replace(settings or TrainingSettings(), home=home, tracking_uri=None)
    tables = load_tables(world / "customers.csv", world / "interactions.csv")
    started = time.perf_counter()
    result = train_from_tables(tables.customers, tables.interactions, settings)
    seconds = time.perf_counter() - started
    test = result.test
    summary = {
        "world": str(world),
        "test_roc_auc": test["model"]["roc_auc"],
        "test_logistic_roc_auc": test["logistic"]["roc_auc"],
        "test_rule_roc_auc": test["rule"]["roc_auc"],
        "test_ece": test["model"]["ece"],
        "backtest_roc_auc": [o.metrics["model"]["roc_auc"] for o in result.folds],
        "backtest_logistic_roc_auc": [o.metrics["logistic"]["roc_auc"] for o in result.folds],
        "gate": result.gate.promote,
        "train_seconds": round(seconds, 1),
        "stage_seconds": result.seconds,
    }
    if (world / "oracle.csv").exists():
        summary.update(oracle_comparison(world, settings, result.model_version))
    return summary


def worlds() -> list[dict]:
    from churnml.simulator import SimulationParams, generate_world

    cases = [
        ("seed7-5k", 5_000, 7, SimulationParams()),
        ("seed11-20k", 20_000, 11, SimulationParams()),
        ("seed13-10k-busy", 10_000, 13, replace(SimulationParams(), issue_rate_per_day=0.03)),
        (
            "seed17-10k-few-arrivals",
            10_000,
            17,
            replace(SimulationParams(), arrivals_per_customer_day=0.0003),
        ),
    ]
    out = []
    for name, n, seed, params in cases:
        folder = Path(tempfile.mkdtemp(prefix=f"churnml-world-{name}-"))
        generate_world(n, 540, seed, folder, params=params)
        summary = quality(folder)
        summary["world"] = name
        print(json.dumps(summary, default=float), flush=True)
        out.append(summary)
    return out


def scale(n: int) -> dict:
    from churnml.simulator import generate_world

    folder = Path(tempfile.mkdtemp(prefix=f"churnml-scale-{n}-"))
    generate_world(n, 540, 1, folder, file_format="parquet")
    tables = load_tables(folder / "customers.parquet", folder / "interactions.parquet")
    home = Path(tempfile.mkdtemp(prefix="churnml-bench-"))
    started = time.perf_counter()
    result = train_from_tables(tables.customers, tables.interactions, TrainingSettings(home=home))
    return {
        "customers": n,
        "seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": result.seconds,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "test_roc_auc": result.test["model"]["roc_auc"],
    }


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"quality", "worlds", "scale"}:
        print(__doc__)
        return
    if argv[0] == "quality":
        for world in argv[1:]:
            print(json.dumps(quality(Path(world)), default=float), flush=True)
    elif argv[0] == "worlds":
        worlds()
    else:
        for n in argv[1:]:
            print(json.dumps(scale(int(n)), default=float), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
