"""The customer-table path against a default LightGBM, out of fold, on every table at once.

python benchmarks/table_bench.py [--tuning-budget SECONDS] [--worlds N] [--customers N]

Trains ``churnml train --table`` (``training.train_from_table``, each table in its own
temporary MLflow store) on

- both real tables in ``shared/data/real`` (``tests.conftest.REAL_TABLES``), and
- customer tables made from simulated worlds (``churnml.simulator.generate_world``): one
  row per customer active on a day, its profile and the aggregated contact columns of
  ``features.build_features`` on that day, labelled ``yes`` when the customer leaves
  within ``LABEL_DAYS`` days after it (``world_table``),

and prints, per table, the out-of-fold ROC-AUC and PR-AUC of churnml's model and of
``lightgbm.LGBMClassifier()`` with default parameters fitted on the same training rows of
every split (and of the logistic regression), what the parameter choice picked, and the
load average before and after (the machine is shared: the seconds are inflated when it
is busy). The worlds are kept small (default 3 worlds of 3,000 customers, 400 days).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from churnml.simulator import SimulationParams, generate_world
from churnml.validation import load_tables
from features import build_features
from model.loading import load_model
from tests.conftest import REAL_TABLES
from training import TrainingSettings, train_from_table

LABEL_DAYS = 90  # a quarter: enough churners in a small world for 5 stratified folds
WORLD_DAYS = 400
REAL = (("telecom_mlc_churn.csv", "churn", None), ("ibm_telco_churn.csv", "Churn", "customerID"))
# Worlds that differ in seed, business share, contact rate and whether case_id exists.
WORLDS = (
    ("seed7", 7, SimulationParams()),
    ("seed13-busy", 13, replace(SimulationParams(), issue_rate_per_day=0.03)),
    ("seed17-business", 17, replace(SimulationParams(), business_share=0.5)),
    ("seed23-quiet", 23, replace(SimulationParams(), issue_rate_per_day=0.01)),
)


def world_table(folder: Path, *, drop_case_id: bool = False) -> pd.DataFrame:
    """One labelled row per customer of the world in ``folder``: ``build_features`` on the
    day ``LABEL_DAYS`` before the last contact, and ``churned`` = yes/no within that time."""
    interactions_file = folder / "interactions.csv"
    if drop_case_id:  # a CRM without case ids: the file as it would be exported
        pd.read_csv(interactions_file, dtype=str).drop(columns="case_id", errors="ignore").to_csv(
            folder / "interactions_no_case.csv", index=False
        )
        interactions_file = folder / "interactions_no_case.csv"
    tables = load_tables(folder / "customers.csv", interactions_file)
    customers, interactions = tables.customers, tables.interactions
    day = pd.Timestamp(interactions["started_at"].max()).tz_localize(None).normalize()
    day = day - pd.Timedelta(days=LABEL_DAYS)
    features = build_features(customers, interactions, day)
    churned_at = customers.set_index("customer_id")["churned_at"].reindex(features.index)
    churned_at = pd.to_datetime(churned_at)
    leaves = (churned_at > day) & (churned_at <= day + pd.Timedelta(days=LABEL_DAYS))
    table = features.reset_index()
    table["churned"] = leaves.map({True: "yes", False: "no"}).to_numpy()
    return table


def run_table(
    name: str, path: Path, label: str, id_column: str | None, budget: float
) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="churnml-table-bench-"))
    settings = TrainingSettings(home=home, tuning_budget_seconds=budget)
    start = time.perf_counter()
    result = train_from_table(path, label, settings, id_column=id_column)
    seconds = time.perf_counter() - start
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    outcome = result.folds[0]
    test = result.test
    best = model.metadata["chosen"]
    return {
        "table": name,
        "rows": int(test["model"]["rows"]),
        "churn": test["model"]["churn_rate"],
        "model_roc": test["model"]["roc_auc"],
        "lgbm_roc": test["lightgbm"]["roc_auc"],
        "model_pr": test["model"]["pr_auc"],
        "lgbm_pr": test["lightgbm"]["pr_auc"],
        "logistic_roc": test["logistic"]["roc_auc"],
        "ece": test["model"]["ece"],
        "chosen": f"{best['candidate']} (leaves {best['num_leaves']}, min leaf "
        f"{best['min_data_in_leaf']}, rate {best['learning_rate']}, ff "
        f"{best['feature_fraction']}, L2 {best['lambda_l2']})",
        "trials": model.metadata["trials"],
        "rounds": f"{outcome.best_iteration} -> {model.metadata['refit_rounds']}",
        "blend_w": outcome.blend.get("linear_weight", 0.0),
        "calibration": outcome.calibration,
        "gate": result.gate.verdict,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning-budget", type=float, default=None)
    parser.add_argument("--worlds", type=int, default=3, help="how many of WORLDS (max 4)")
    parser.add_argument("--customers", type=int, default=3000)
    args = parser.parse_args()
    budget = (
        TrainingSettings().tuning_budget_seconds
        if args.tuning_budget is None
        else args.tuning_budget
    )
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    tables: list[tuple[str, Path, str, str | None]] = [
        (file, REAL_TABLES / file, label, id_column) for file, label, id_column in REAL
    ]
    work = Path(tempfile.mkdtemp(prefix="churnml-table-bench-worlds-"))
    for index, (name, seed, params) in enumerate(WORLDS[: args.worlds]):
        folder = work / name
        generate_world(args.customers, WORLD_DAYS, seed, folder, params=params)
        no_case = index % 2 == 1  # every other world without case_id
        table = world_table(folder, drop_case_id=no_case)
        path = folder / "customer_table.csv"
        table.to_csv(path, index=False)
        tables.append(
            (f"world {name}{' no case_id' if no_case else ''}", path, "churned", "customer_id")
        )
    rows = []
    for name, path, label, id_column in tables:
        rows.append(run_table(name, path, label, id_column, budget))
        print(f"done {name}: {rows[-1]['seconds']:.0f} s", flush=True)
    print(
        f"\ntuning budget {budget:g} s; out-of-fold, stratified 5-fold CV (repeated below "
        "2,000 rows), seed 42\n"
    )
    header = (
        "table",
        "rows",
        "churn",
        "model ROC",
        "LGBM() ROC",
        "model PR",
        "LGBM() PR",
        "logistic ROC",
        "ECE",
        "ahead",
        "chosen",
        "trials",
        "rounds cv->refit",
        "w",
        "calibration",
        "gate",
        "s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        ahead = r["model_roc"] > r["lgbm_roc"] and r["model_pr"] > r["lgbm_pr"]
        print(
            f"| {r['table']} | {r['rows']} | {r['churn']:.3f} | {r['model_roc']:.4f} | "
            f"{r['lgbm_roc']:.4f} | {r['model_pr']:.4f} | {r['lgbm_pr']:.4f} | "
            f"{r['logistic_roc']:.4f} | {r['ece']:.4f} | {'yes' if ahead else 'NO'} | "
            f"{r['chosen']} | {r['trials']} | {r['rounds']} | {r['blend_w']} | "
            f"{r['calibration']} | {r['gate']} | {r['seconds']:.0f} |"
        )
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
