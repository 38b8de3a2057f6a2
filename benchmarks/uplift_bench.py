"""The call-effect learners against causalml's and against ranking by risk, on synthetic
worlds with a known effect, side by side in one run.

PYTHONPATH=. python benchmarks/uplift_bench.py [--quick] [--threads N]

Each world draws customers of four kinds (their shares differ by world): persuadables
(an open case; a call helps, consumers more than business customers), lost causes (a
reason a call cannot touch: high risk, about zero effect), sleeping dogs (content, no
case: a call raises their risk) and the rest (a small effect). The kind is hidden; the
features it shows through (price pressure, open cases, wait, satisfaction, segment) and
three noise columns are what the learners see. The true effect is exact (it is computed,
not simulated), so the oracle's top K is not flattered by noise. The same learners on the
simulator's own worlds (its retention team, its oracle's Monte Carlo streams):
``benchmarks/uplift_sim_bench.py``.

Every learner fits on the world's training picks (``t = 1`` treated with the world's
treated share, known to all learners as the propensity) and is judged on 20 000 fresh
picks: Qini and uplift at K (K = 10% of the rows) from their treated and control labels
with a 95% bootstrap interval, the true effect the top K hold against the oracle's top K,
and the Spearman correlation with the true effect. "risk" ranks by the true churn risk
without a call, the best a risk model could do. causalml (BaseTClassifier,
BaseXClassifier, BaseDRLearner, LightGBM base models with the same tree settings) runs
where it is installed; it is not a dependency of churnml (README, Benchmarks: how to
run it in a private venv).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training import uplift
from training.uplift_metrics import (
    bootstrap_interval,
    effect_correlation,
    qini_coefficient,
    true_effect_kept_at_k,
    uplift_at_k,
)

TEST_ROWS = 20_000
CAPACITY_SHARE = 0.10
KINDS = ("persuadable", "lost_cause", "sleeping_dog", "other")


@dataclass(frozen=True)
class World:
    name: str
    rows: int
    control_share: float
    shares: dict[str, float]  # of KINDS


WORLDS = (
    World("mixed", 8000, 0.20, {"persuadable": 0.3, "lost_cause": 0.15, "sleeping_dog": 0.15}),
    World("many dogs", 16000, 0.10, {"persuadable": 0.25, "lost_cause": 0.1, "sleeping_dog": 0.35}),
    World("many lost", 3000, 0.30, {"persuadable": 0.25, "lost_cause": 0.35, "sleeping_dog": 0.05}),
)


def draw(world: World, rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, ...]:
    """Features, treatment, label, true effect and true risk of ``rows`` picks."""
    shares = [world.shares.get(kind, 0.0) for kind in KINDS[:-1]]
    kind = rng.choice(len(KINDS), size=rows, p=[*shares, 1 - sum(shares)])
    beta = {  # (price pressure a, b), open-case rate, satisfaction (a, b) by kind
        0: ((2, 4), 1.5, (2, 3)),
        1: ((6, 1.5), 0.5, (2, 2)),
        2: ((1, 6), 0.0, (6, 1.5)),
        3: ((2, 4), 0.3, (3, 2)),
    }
    price = np.empty(rows)
    cases = np.empty(rows)
    satisfaction = np.empty(rows)
    for k, ((pa, pb), case_rate, (sa, sb)) in beta.items():
        rows_k = kind == k
        n = int(rows_k.sum())
        price[rows_k] = rng.beta(pa, pb, n)
        cases[rows_k] = rng.poisson(case_rate, n) + (k == 0)
        satisfaction[rows_k] = rng.beta(sa, sb, n)
    consumer = rng.random(rows) < 0.7
    wait = rng.lognormal(4.5 + 0.3 * (cases > 0), 0.8)
    risk = 1 / (
        1
        + np.exp(
            -(
                -2.6
                + 3.2 * price
                + 0.45 * cases
                + 0.25 * (np.log(wait) - 4.5)
                - 1.6 * satisfaction
                + 0.3 * consumer
            )
        )
    )
    helps = (cases > 0) * np.where(consumer, 1.0, 0.4) * (1 - price) ** 2 * (0.15 + 0.5 * risk)
    harms = 0.08 * ((satisfaction > 0.7) & (cases == 0) & (price < 0.35))
    effect = np.clip(helps - harms + 0.01, risk - 1, risk)
    treated = (rng.random(rows) >= world.control_share).astype("int8")
    churned = (rng.random(rows) < risk - treated * effect).astype("int8")
    features = pd.DataFrame(
        {
            "price_pressure": price,
            "open_cases": cases,
            "wait_seconds": wait,
            "satisfaction": satisfaction,
            "segment": np.where(consumer, "consumer", "business"),
            **{f"noise_{i}": rng.normal(size=rows) for i in range(3)},
        }
    )
    return features, treated, churned, effect, risk


# -- the contenders ----------------------------------------------------------------------
def ours(learner: str, threads: int) -> Callable[..., np.ndarray]:
    def run(X, t, y, e, X_test, seed):  # noqa: ANN001, ANN202
        model = uplift.fit(X, t, y, propensity=e, learner=learner, seed=seed, threads=threads)
        return model.predict(X_test)

    return run


def causalml_learners(threads: int) -> dict[str, Callable[..., np.ndarray]]:
    """causalml's T-, X- and DR-learner with LightGBM, or {} when it is not installed."""
    try:
        from causalml.inference.meta import BaseDRLearner, BaseTClassifier, BaseXClassifier
        from lightgbm import LGBMClassifier, LGBMRegressor
    except ImportError:
        return {}

    # The trees of training.uplift.base_params; a fixed number of rounds, as causalml's
    # learners have no early stopping.
    def settings(seed: int) -> dict:
        return {
            "n_estimators": 100,
            "learning_rate": 0.05,
            "num_leaves": 7,
            "min_child_samples": 40,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "reg_lambda": 10.0,
            "random_state": seed,
            "n_jobs": threads,
            "verbose": -1,
        }

    def matrix(X: pd.DataFrame) -> np.ndarray:
        if "segment" in X.columns and not pd.api.types.is_numeric_dtype(X["segment"]):
            X = X.assign(segment=(X["segment"] == "consumer").astype(float))
        return X.to_numpy("float64")

    # causalml's effect is P(y | treated) - P(y | control); with y = churn the call effect
    # of the contract is its negative.
    def t_learner(X, t, y, e, X_test, seed):  # noqa: ANN001, ANN202
        model = BaseTClassifier(learner=LGBMClassifier(**settings(seed)))
        model.fit(matrix(X), treatment=t, y=y)
        return -np.ravel(model.predict(matrix(X_test)))

    def x_learner(X, t, y, e, X_test, seed):  # noqa: ANN001, ANN202
        model = BaseXClassifier(
            outcome_learner=LGBMClassifier(**settings(seed)),
            effect_learner=LGBMRegressor(**settings(seed)),
        )
        model.fit(matrix(X), treatment=t, y=y, p=np.full(len(t), e))
        return -np.ravel(model.predict(matrix(X_test), p=np.full(len(X_test), e)))

    def dr_learner(X, t, y, e, X_test, seed):  # noqa: ANN001, ANN202
        # BaseDRLearner with regressors: its fit takes the outcome models' predict(), which
        # for a classifier (BaseDRClassifier) is the 0/1 class, not the probability.
        model = BaseDRLearner(learner=LGBMRegressor(**settings(seed)))
        model.fit(matrix(X), treatment=t, y=y, p=np.full(len(t), e), seed=seed)
        return -np.ravel(model.predict(matrix(X_test)))

    return {"causalml T": t_learner, "causalml X": x_learner, "causalml DR": dr_learner}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one world, fewer resamples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", type=int, default=1, help="draws of every world; >1 adds a summary table"
    )
    parser.add_argument("--samples", type=int, default=200, help="bootstrap resamples")
    args = parser.parse_args()
    contenders = {f"churnml {name.upper()}": ours(name, args.threads) for name in uplift.LEARNERS}
    reference = causalml_learners(args.threads)
    if not reference:
        print("causalml is not installed: its rows are left out (README, Benchmarks: its venv)")
    contenders.update(reference)
    worlds = WORLDS[:1] if args.quick else WORLDS
    samples = 50 if args.quick else args.samples
    lines, summary = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        for number, world in enumerate(worlds):
            for line in run_world(world, number, seed, contenders, samples):
                summary.append(line.pop("_numbers"))
                if seed == args.seed:
                    lines.append(line)
    print(markdown(lines))
    if args.seeds > 1:
        frame = pd.DataFrame(summary)
        means = frame.groupby(["method", "world"], sort=False)["kept"].mean().unstack()
        means["all worlds"] = frame.groupby("method", sort=False)["kept"].mean()
        means["spearman"] = frame.groupby("method", sort=False)["spearman"].mean()
        means["fit s"] = frame.groupby("method", sort=False)["seconds"].mean()
        print(f"\ntrue effect kept@K / oracle, mean over {args.seeds} draws of each world")
        table = [
            {"method": str(method), **{str(c): f"{v:.2f}" for c, v in row.items()}}
            for method, row in means.iterrows()
        ]
        print(markdown(table))


def run_world(
    world: World,
    number: int,
    seed: int,
    contenders: dict[str, Callable[..., np.ndarray]],
    samples: int,
) -> list[dict]:
    """One table line per contender on one draw of ``world``."""
    rng = np.random.default_rng([seed, number])
    X, t, y, _, _ = draw(world, world.rows, rng)
    X_test, t_test, y_test, effect, risk = draw(world, TEST_ROWS, rng)
    e = 1 - world.control_share
    k = int(CAPACITY_SHARE * TEST_ROWS)
    scores = {"risk (true)": (risk, 0.0), "oracle (true effect)": (effect, 0.0)}
    for name, run in contenders.items():
        started = time.perf_counter()
        score = run(X, t, y, e, X_test, seed)
        scores[name] = (score, time.perf_counter() - started)
    lines = []
    for name, (score, seconds) in scores.items():
        qini = bootstrap_interval(
            qini_coefficient, score, t_test, y_test, samples=samples, seed=seed
        )
        gain = bootstrap_interval(
            lambda s, a, b: uplift_at_k(s, a, b, k),
            score,
            t_test,
            y_test,
            samples=samples,
            seed=seed,
        )
        kept = true_effect_kept_at_k(score, effect, k)
        spearman = effect_correlation(score, effect)["spearman"]
        lines.append(
            {
                "world": f"{world.name} (n={world.rows}, control {world.control_share:.0%})",
                "method": name,
                "qini [95% CI]": f"{qini.estimate:.4f} [{qini.low:.4f}, {qini.high:.4f}]",
                f"uplift@{k} [95% CI]": f"{gain.estimate:.3f} [{gain.low:.3f}, {gain.high:.3f}]",
                "true effect kept@K / oracle": f"{kept:.2f}",
                "spearman": f"{spearman:.2f}",
                "fit s": f"{seconds:.1f}",
                "_numbers": {
                    "world": world.name,
                    "method": name,
                    "kept": kept,
                    "spearman": spearman,
                    "seconds": seconds,
                },
            }
        )
    share = {kind: world.shares.get(kind, 0.0) for kind in KINDS[:-1]}
    print(
        f"{world.name} (seed {seed}): kinds {share}, mean true effect {effect.mean():.3f}, "
        f"share harmed {(effect < 0).mean():.2f}",
        flush=True,
    )
    return lines


def markdown(lines: list[dict[str, str]]) -> str:
    """The rows as a markdown table (pandas' needs tabulate, not a dependency)."""
    columns = list(lines[0])
    widths = [max(len(c), *(len(line[c]) for line in lines)) for c in columns]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        out.append(
            "| " + " | ".join(line[c].ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
