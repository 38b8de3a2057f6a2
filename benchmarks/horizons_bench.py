"""Churn within 7, 30 and 90 days from one hazard model, on simulated worlds of different
churn speed, against the simulator's oracle, lifelines' Cox model and scikit-survival's
gradient-boosted survival model.

PYTHONPATH=. .venv/bin/python benchmarks/horizons_bench.py --sizes 10000 --replicates 40 \
    --survival-rows 20000 --gbsa-rows 5000 --jobs 3

Options: [--sizes 3000,10000] [--large] (also 10^5 customers: slow, hours on 2 cores)
[--days 540] [--replicates 40] [--survival-rows 20000] [--gbsa-rows N] [--worlds a,b]
[--jobs N] (worlds in parallel processes) [--direct] (ablation: one binary LightGBM per
horizon beside the hazard model; the world ``default-no-hidden`` of ``ABLATIONS`` is the
other ablation: ``--worlds default,default-no-hidden``).

For each world and size: the world is simulated once to day D + 92 (D: the as-of day) with
the multi-horizon oracle (``SimulationParams.oracle_horizons``): one Monte Carlo run from D
out to 90 days gives the true P(churn in (D, D + H]) of every customer active on D for
H = 7, 30 and 90 (``true_probability_<H>d``, and the realised ``label_<H>d``). Everything after D is
then hidden from training (churned_at after D emptied, contacts after D dropped): the
hazard model trains on the weekly snapshots up to D - 7, censored at D
(``training.horizons.backtest_horizons``, one backtest fold, then the refit), and scores
the customers active on D. Printed per horizon: the ROC-AUC on D of the model and of the
oracle (labels: the world's churn in (D, D + H]); per world: the integrated Brier score
over the horizons (scikit-survival, censoring weights from the training rows) of the model,
the oracle, ``lifelines.CoxPHFitter`` and ``sksurv.ensemble.GradientBoostingSurvivalAnalysis``
(Cox fitted on a uniform sample of at most ``--survival-rows`` of the same training rows,
one row per snapshot with time to churn or to D; GBSA on the first ``--gbsa-rows`` of that
sample, default all of it), Uno's concordance, and the seconds of each fit. The load
average is printed with the table (the machine is shared).

The worlds (``WORLDS``: ``SimulationParams`` fields changed from the sample world's) differ
in how fast customers leave after bad service. The parameters of churn speed:
``at_once_share`` (customers who leave at once after one very bad contact),
``at_once_leave_probability`` (their chance of acting on one), ``severe_badness`` (what
counts as very bad), against the erosion path: ``frustration_hazard_coef`` (how much
accumulated frustration raises the daily hazard), ``frustration_half_life_days`` (how long
it lasts) and ``base_monthly_churn`` (churn without service effects).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnml.simulator import SimulationParams, generate_world
from churnml.validation import load_tables
from training import horizons as hz
from training.settings import TrainingSettings
from training.snapshots import build_snapshot_frame, default_builder, snapshot_dates

HORIZONS = (7, 30, 90)
START = date(2025, 1, 1)
FOLLOW_UP = 92  # days simulated after D: the longest horizon and two more (sksurv's range)

WORLDS = {
    # the sample world's dynamics: erosion plus some leaving at once (at_once_share 0.44,
    # at_once_leave_probability 0.3, severe_badness 2.6, frustration_hazard_coef 1.25,
    # frustration_half_life_days 45, base_monthly_churn 0.008)
    "default": {},
    # sudden: many leave at once after one bad experience
    "at-once": {
        "at_once_share": 0.9,
        "at_once_leave_probability": 0.6,
        "severe_badness": 2.0,
        "frustration_hazard_coef": 0.6,
    },
    # erosion: nobody leaves at once; frustration wears on for months
    "slow-erosion": {
        "at_once_share": 0.0,
        "frustration_half_life_days": 120.0,
        "frustration_hazard_coef": 0.9,
        "base_monthly_churn": 0.012,
    },
}


# ablation worlds (not run by default; --worlds names them): the default world without a
# hidden trait the oracle sees and no feature can (lost causes leave for outside reasons
# at ten times the base hazard, the frailty spread)
ABLATIONS = {
    "default-no-hidden": {"lost_cause_share": 0.0, "frailty_sigma": 0.0},
}


def simulate(
    name: str, customers: int, days: int, replicates: int, folder: Path
) -> tuple[Path, date, dict[int, pd.DataFrame]]:
    """The world's folder, its as-of day D and the oracle per horizon (customer_id ->
    true_probability, label), all horizons from one simulation and one oracle run."""
    params = replace(
        SimulationParams(oracle_replicates=replicates, oracle_horizons=HORIZONS),
        **{**WORLDS, **ABLATIONS}[name],
    )
    as_of = START + timedelta(days=days - 1 - FOLLOW_UP)
    world = folder / f"{name}-{customers}"
    generate_world(customers, days, 7, world, params=params, oracle_as_of=[as_of])
    oracle = pd.read_csv(world / "oracle.csv", dtype={"customer_id": str}).set_index("customer_id")
    oracles = {
        horizon: oracle[[f"true_probability_{horizon}d", f"label_{horizon}d"]].set_axis(
            ["true_probability", "label"], axis=1
        )
        for horizon in HORIZONS
    }
    return world, as_of, oracles


def survival_matrix(features: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Numbers for the Cox and GBSA models: medians for missing values, one-hot categories,
    constant columns dropped, standardised (statistics from ``reference``, default itself)."""
    reference = features if reference is None else reference
    numeric = [
        c for c in reference.columns if not isinstance(reference[c].dtype, pd.CategoricalDtype)
    ]
    categorical = [c for c in reference.columns if c not in numeric]
    ref = reference[numeric].astype("float64")
    medians, spread = ref.median(), ref.std().replace(0, np.nan)
    out = ((features[numeric].astype("float64").fillna(medians) - ref.mean()) / spread).fillna(0.0)
    for column in categorical:
        for value in reference[column].cat.categories[:8]:
            out[f"{column}={value}"] = (features[column].astype("object") == value).astype(float)
    keep = [c for c in out.columns if out[c].std() > 0]
    return out[keep]


def direct_scores(
    rows: hz.HorizonRows, on_day: pd.DataFrame, as_of: pd.Timestamp, settings: TrainingSettings
) -> dict[int, np.ndarray]:
    """The ablation: per horizon H one binary LightGBM (the churn model's parameters and
    known directions) on the snapshot rows whose H-day label is known by D, early-stopped
    on the latest four such snapshot days (trained on the days whose label ends before
    them); its scores of the customers active on D."""
    from training import learners

    out = {}
    for horizon in HORIZONS:
        y, known = rows.labels_at(horizon, as_of)
        days = np.unique(rows.dates[known])
        valid_days = days[-4:]
        last_train = valid_days[0] - np.timedelta64(horizon, "D")
        valid = known & np.isin(rows.dates, valid_days)
        train = known & (rows.dates <= last_train)
        params = learners.lightgbm_params(
            int(train.sum()), int(y[train].sum()), settings.seed, settings.threads
        )
        booster = learners.fit_booster(
            rows.features[train], y[train], rows.features[valid], y[valid], params
        )
        out[horizon] = booster.predict(on_day[rows.features.columns])
    return out


def run_world(name: str, customers: int, args: argparse.Namespace, folder: Path) -> list[dict]:
    world, as_of_date, oracles = simulate(name, customers, args.days, args.replicates, folder)
    as_of = pd.Timestamp(as_of_date)
    tables = load_tables(world / "customers.csv", world / "interactions.csv")
    full_customers, interactions = tables.customers, tables.interactions
    # what the data show on D
    customers_d = full_customers.assign(
        churned_at=full_customers["churned_at"].where(full_customers["churned_at"] <= as_of)
    )
    interactions_d = interactions[interactions["started_at"] < as_of + pd.Timedelta(days=1)]

    settings = TrainingSettings(backtest_folds=1, lookback_days=365, threads=1)
    dates = snapshot_dates(
        interactions_d["started_at"].min(), as_of, settings.with_changes(horizon_days=HORIZONS[0])
    )
    builder = default_builder()
    clock = time.perf_counter()
    snapshots, _ = build_snapshot_frame(customers_d, interactions_d, dates, builder, settings)
    rows = hz.horizon_rows(snapshots, customers_d)
    seconds_features = time.perf_counter() - clock
    clock = time.perf_counter()
    backtest = hz.backtest_horizons(rows, HORIZONS, settings, as_of=as_of)
    seconds_model = time.perf_counter() - clock

    # the customers active on D, with the world's outcomes after D
    on_day = builder(customers_d, interactions_d, [as_of])[as_of]
    clock = time.perf_counter()
    curve = backtest.model.curve(on_day)
    seconds_score = time.perf_counter() - clock
    # ablations of the ROC-AUC gap: the curve before calibration (isotonic steps tie
    # customers), and with --direct one binary LightGBM per horizon
    raw_curve = backtest.model.raw_curve(backtest.model.matrix(on_day))
    direct = direct_scores(rows, on_day, as_of, settings) if args.direct else {}
    test = hz.horizon_rows(
        on_day.reset_index().assign(snapshot_date=as_of.as_unit("ns")), full_customers
    )
    oracle_curve = np.column_stack(
        [oracles[h]["true_probability"].reindex(on_day.index).to_numpy() for h in HORIZONS]
    )
    end = as_of + pd.Timedelta(days=FOLLOW_UP)
    result = []
    for k, horizon in enumerate(HORIZONS):
        y, known = test.labels_at(horizon, end)
        oracle_label = oracles[horizon]["label"].reindex(on_day.index).to_numpy()
        agree = float(np.mean(oracle_label == y))
        result.append(
            {
                "world": name,
                "customers": customers,
                "horizon": horizon,
                "churn_rate": float(y[known].mean()),
                "roc_model": roc_auc_score(y[known], curve[known, k]),
                "roc_oracle": roc_auc_score(y[known], oracle_curve[known, k]),
                "roc_raw": roc_auc_score(y[known], raw_curve[known, k]),
                "roc_direct": roc_auc_score(y[known], direct[horizon][known])
                if direct
                else float("nan"),
                "label_agree": agree,
                "fold_roc": backtest.metrics[0][horizon]["model"]["roc_auc"],
                "fold_logistic": backtest.metrics[0][horizon]
                .get("logistic", {})
                .get("roc_auc", float("nan")),
                "fold_ece": backtest.metrics[0][horizon]["model"]["ece"],
            }
        )

    # the curve against Cox and GBSA, on the same training rows (censored at D)
    train_y = rows.survival(as_of)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(rows), min(len(rows), args.survival_rows), replace=False))
    train_x = survival_matrix(rows.features.iloc[sample])
    test_x = survival_matrix(on_day, rows.features.iloc[sample])[train_x.columns]
    survival = {
        "model": 1.0 - curve,
        "oracle": 1.0 - oracle_curve,
    }
    fit_seconds = {"model": seconds_model}
    from lifelines import CoxPHFitter

    clock = time.perf_counter()
    cox = CoxPHFitter(penalizer=0.1)
    cox.fit(
        train_x.assign(T=train_y["time"][sample], E=train_y["event"][sample]),
        duration_col="T",
        event_col="E",
    )
    fit_seconds["cox"] = time.perf_counter() - clock
    survival["cox"] = cox.predict_survival_function(test_x, times=list(HORIZONS)).to_numpy().T

    from sksurv.ensemble import GradientBoostingSurvivalAnalysis

    gbsa_rows = min(len(sample), args.gbsa_rows or len(sample))
    gbsa_pick = np.sort(rng.choice(len(sample), gbsa_rows, replace=False))
    clock = time.perf_counter()
    gbsa = GradientBoostingSurvivalAnalysis(
        n_estimators=100, max_depth=3, learning_rate=0.1, subsample=0.8, random_state=0
    )
    gbsa.fit(train_x.to_numpy()[gbsa_pick], train_y[sample][gbsa_pick])
    fit_seconds["gbsa"] = time.perf_counter() - clock
    functions = gbsa.predict_survival_function(test_x.to_numpy())
    survival["gbsa"] = np.array([fn(np.asarray(HORIZONS, dtype=float)) for fn in functions])

    curve_metrics = {
        who: hz.survival_metrics(s, HORIZONS, rows, test, train_cutoff=as_of, test_cutoff=end)
        for who, s in survival.items()
    }
    for row in result:
        row.update(
            {
                f"ibs_{who}": curve_metrics[who]["integrated_brier"]
                for who in ("model", "oracle", "cox", "gbsa")
            }
        )
        row.update({f"uno_{who}": curve_metrics[who]["uno_c"] for who in ("model", "cox", "gbsa")})
        row.update(
            {
                "s_features": seconds_features,
                "s_model": fit_seconds["model"],
                "s_cox": fit_seconds["cox"],
                "s_gbsa": fit_seconds["gbsa"],
                "s_score": seconds_score,
                "train_rows": len(rows),
                "cox_rows": len(sample),
                "gbsa_rows": gbsa_rows,
                "scored": len(on_day),
                "gate": backtest.gate.passed,
            }
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="customers per world, comma-separated")
    parser.add_argument("--large", action="store_true", help="also 100000 customers")
    parser.add_argument("--days", type=int, default=540, help="simulated days")
    parser.add_argument("--replicates", type=int, default=40, help="oracle Monte Carlo runs")
    parser.add_argument("--survival-rows", type=int, default=20_000, help="Cox/GBSA rows")
    parser.add_argument(
        "--gbsa-rows", type=int, default=0, help="GBSA rows (of the Cox sample; 0: all)"
    )
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument("--jobs", type=int, default=1, help="worlds run in parallel")
    parser.add_argument(
        "--direct", action="store_true", help="ablation: also one binary LightGBM per horizon"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([100_000] if args.large else [])
    runs = [(name, size) for size in sizes for name in args.worlds.split(",")]
    with tempfile.TemporaryDirectory(prefix="churnml-horizons-") as tmp:
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            names, counts = zip(*runs, strict=True)
            results = pool.map(run_world, names, counts, repeat(args), repeat(Path(tmp)))
            rows = [row for result in results for row in result]
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    per_horizon = table[
        [
            "world",
            "customers",
            "horizon",
            "churn_rate",
            "roc_model",
            "roc_oracle",
            "roc_raw",
            "roc_direct",
            "fold_roc",
            "fold_logistic",
            "fold_ece",
            "label_agree",
        ]
    ].assign(gap=lambda t: t["roc_oracle"] - t["roc_model"])
    print(per_horizon.round(4).to_string(index=False))
    per_world = table.drop_duplicates(["world", "customers"])[
        [
            "world",
            "customers",
            "train_rows",
            "cox_rows",
            "gbsa_rows",
            "scored",
            "ibs_model",
            "ibs_oracle",
            "ibs_cox",
            "ibs_gbsa",
            "uno_model",
            "uno_cox",
            "uno_gbsa",
            "s_features",
            "s_model",
            "s_cox",
            "s_gbsa",
            "s_score",
            "gate",
        ]
    ]
    print()
    print(per_world.round(4).to_string(index=False))
    print(
        f"\nload average (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"{os.cpu_count()} cores; Cox on at most {args.survival_rows} training rows, GBSA "
        f"on {args.gbsa_rows or args.survival_rows} of them"
    )


if __name__ == "__main__":
    main()
