"""Model quality on simulated worlds: fold 1's model, the refit model and the oracle.

    python benchmarks/model_quality_bench.py [--scale 1.0] [--variants off,crossfit,holdout]
        [--trials 4] [--out DIR]

Generates four worlds with the simulator (``churnml.simulator.generate_world``) that
differ in seed, size, business share, contact rate and whether contacts carry a
``case_id``; trains on each with ``as_of`` = the oracle's day D (labels complete up to
D - 30), once per ``--refit`` variant ("off": fold 1's model, what was registered before
the refit; "crossfit": the default; "holdout": the alternative; "same-rounds": crossfit
with fold 1's rounds unscaled), each in a tracking
store of its own; and scores the customers active on D with each registered model. It
prints one table: ROC-AUC on D's active customers against their realised labels for
each model and for the oracle (the simulator's true probability on D), the evaluated
test ROC-AUC (fold 1, what the gate reads), what the parameter search chose, the refit
window and the time, plus the load average (2 cores shared with other work).

The search is capped at ``--trials`` candidates (the defaults first) with a budget
large enough to reach the cap, so that every variant evaluates the same fold-1 fit and
the columns differ by the refit alone (``churnml train``'s own budget is in seconds, so
how many trials it runs depends on the machine). ``--backtest 1``: one fold (the one that
produces the model) keeps the run short; the backtest does not change the models.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnml.simulator import generate_world
from churnml.simulator.params import SimulationParams
from churnml.validation import load_tables
from model.loading import load_model
from model.predictor import Predictor
from training import TrainingSettings, train_from_tables


@dataclass(frozen=True)
class World:
    name: str
    customers: int
    seed: int
    business_share: float
    issue_rate_per_day: float
    case_id: bool
    days: int = 540


WORLDS = (
    World("A base", 3000, 11, 0.20, 0.018, True),
    World("B business", 2000, 12, 0.50, 0.018, True),
    World("C chatty, no case", 4000, 13, 0.20, 0.030, False),
    World("D quiet, no case", 2500, 14, 0.10, 0.010, False),
)


def make_world(world: World, folder: Path, scale: float) -> tuple[pd.DataFrame, ...]:
    """The world's validated tables and its oracle (generated once into ``folder``)."""
    if not (folder / "oracle.csv").exists():
        params = SimulationParams(
            business_share=world.business_share, issue_rate_per_day=world.issue_rate_per_day
        )
        generate_world(
            max(200, round(world.customers * scale)), world.days, world.seed, folder, params=params
        )
        if not world.case_id:  # a source system without case ids
            interactions = pd.read_csv(folder / "interactions.csv", dtype=str)
            interactions.drop(columns=["case_id"]).to_csv(folder / "interactions.csv", index=False)
    tables = load_tables(folder / "customers.csv", folder / "interactions.csv")
    oracle = pd.read_csv(folder / "oracle.csv", dtype={"customer_id": str})
    return tables.customers, tables.interactions, oracle


def train_and_score(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    oracle: pd.DataFrame,
    home: Path,
    refit: str,
    trials: int,
) -> dict:
    day = pd.Timestamp(oracle["as_of"].iloc[0])
    settings = TrainingSettings(
        home=home,
        backtest_folds=1,
        refit="crossfit" if refit == "same-rounds" else refit,
        refit_rounds="same" if refit == "same-rounds" else "scaled",
        tuning_budget_seconds=0 if trials <= 1 else 3600,
        tuning_max_trials=trials,
    )
    started = time.perf_counter()
    result = train_from_tables(customers, interactions, settings, as_of=day)
    seconds = time.perf_counter() - started
    model = load_model(result.model_uri, settings.resolved_tracking_uri()).model
    scores = Predictor(model).score_tables(customers, interactions, day, with_reasons=False)
    merged = oracle.merge(scores, on="customer_id", how="inner")
    if len(merged) != len(oracle):
        raise SystemExit(f"{len(oracle) - len(merged)} oracle customers were not scored")
    run = mlflow.MlflowClient(settings.resolved_tracking_uri()).get_run(result.run_id)
    p = run.data.params
    chosen = (
        f"leaves {p['lgbm.num_leaves']}, leaf {p['lgbm.min_data_in_leaf']}, "
        f"lr {p['lgbm.learning_rate']}, l2 {p['lgbm.lambda_l2']}, "
        f"ff {p['lgbm.feature_fraction']}, rounds {int(run.data.metrics['best_iteration'])}"
    )
    return {
        "roc_auc": roc_auc_score(merged["label"], merged["churn_probability"]),
        "oracle": roc_auc_score(merged["label"], merged["true_probability"]),
        "evaluated": result.test["model"]["roc_auc"],
        "chosen": chosen,
        "trials": int(run.data.metrics.get("tuning_trials", 1)),
        "window": p.get("refit.train_window", p.get("evaluated.train_window")),
        "rounds": p.get("refit.rounds", ""),
        "calibration": p.get("refit.calibration", p.get("calibration", "")),
        "seconds": seconds,
        "customers": len(merged),
        "churners": int(merged["label"].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="world size factor")
    parser.add_argument("--variants", default="off,crossfit,holdout")
    parser.add_argument("--trials", type=int, default=4, help="search candidates (1: none)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the worlds")
    args = parser.parse_args()
    variants = args.variants.split(",")
    root = args.out or Path(tempfile.mkdtemp(prefix="churnml-quality-"))
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    rows = []
    for world in WORLDS:
        customers, interactions, oracle = make_world(world, root / world.name[0], args.scale)
        row = {"world": world.name, "case_id": world.case_id}
        for variant in variants:
            with tempfile.TemporaryDirectory(prefix="churnml-home-") as home:
                got = train_and_score(
                    customers, interactions, oracle, Path(home), variant, args.trials
                )
            row.update(
                {
                    "customers on D": got["customers"],
                    "churners": got["churners"],
                    "oracle": got["oracle"],
                    f"{variant}": got["roc_auc"],
                    f"{variant} s": got["seconds"],
                    f"{variant} window": got["window"],
                }
            )
            if variant != "off":
                row[f"{variant} rounds/calibration"] = f"{got['rounds']} / {got['calibration']}"
            row["evaluated (fold 1 test)"] = got["evaluated"]
            row["search chose"] = f"{got['chosen']} ({got['trials']} trials)"
        rows.append(row)
        print(f"  {world.name}: done, load average {os.getloadavg()[0]:.2f}", flush=True)
    table = pd.DataFrame(rows)
    for variant in variants:
        if variant != "off" and "off" in variants:
            table[f"{variant} - off"] = table[variant] - table["off"]
        table[f"oracle - {variant}"] = table["oracle"] - table[variant]
    short = ["world", "customers on D", "churners", "evaluated (fold 1 test)", "oracle", *variants]
    short += [c for c in table.columns if " - " in c]
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table[short].round(4).to_string(index=False))
        print()
        details = ["world", *[c for c in table.columns if c.endswith((" s", "window"))]]
        details += [c for c in table.columns if "rounds/" in c] + ["search chose"]
        print(table[details].round(1).to_string(index=False))
    print(f"load average at end: {os.getloadavg()[0]:.2f}; worlds in {root}")


if __name__ == "__main__":
    main()
