"""How well a call-effect score finds the customers a call keeps.

Every function takes the rows of a randomised comparison: the retention team's picks,
``t = 1`` treated (called) and ``t = 0`` control (picked, not called), with ``y`` their
churn label; never customers the team did not pick, whose lack of a call was not random.
Rows are ranked by ``score`` (highest first: the predicted call effect, or any other
ranking such as the churn risk). Churn is the bad outcome, so a gain is control churn
minus treated churn.

* ``qini_curve`` / ``qini_coefficient``: Radcliffe's Qini curve ``Q(k) = Yc(k) Nt(k) /
  Nc(k) - Yt(k)`` (churners a call kept among the treated of the top ``k``; ``Yc``, ``Yt``
  churners, ``Nc``, ``Nt`` rows of each group in the top ``k``), both axes as shares of the
  rows; the coefficient is the area between it and the straight line of random targeting.
* ``uplift_curve`` / ``auuc``: ``U(k) = (Yc(k)/Nc(k) - Yt(k)/Nt(k)) k / N``, the churn rate
  a call lowers in the top ``k`` times their share; AUUC is the area under it (random
  targeting's is about half the average effect).
* ``uplift_at_k``: control churn rate minus treated churn rate among the top ``k`` (the
  team's capacity): what calling them bought.
* ``bootstrap_interval``: a percentile interval of any of them, resampling each group.
* With a known true effect (the simulator's oracle): ``true_effect_kept_at_k`` (the true
  effect the top ``k`` hold over the most any ``k`` rows hold), ``true_auuc`` and
  ``effect_correlation``.

The curves are evaluated where the score changes (rows with tied scores enter together,
as ROC curves treat ties); ``uplift_at_k`` takes the first ``k`` in the ranking, ties in
their row order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import pearsonr, spearmanr

from churnml.errors import DataError

BOOTSTRAP_SAMPLES = 200
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A metric on the rows and its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float


# -- curves ------------------------------------------------------------------------------
def _counts(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Shares k/N and cumulative Nt, Nc, Yt, Yc at 0 and at the end of each tie group."""
    score, treated, churned = _arrays(score, t, y)
    order = np.argsort(-score, kind="stable")
    treated, churned, ranked = treated[order], churned[order], score[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]

    def cumulative(values: np.ndarray) -> np.ndarray:
        return np.r_[0.0, np.cumsum(values)[ends]]

    n_t = cumulative(treated)
    n_c = cumulative(~treated)
    y_t = cumulative(treated & churned)
    y_c = cumulative(~treated & churned)
    share = np.r_[0.0, (ends + 1) / len(ranked)]
    return share, n_t, n_c, y_t, y_c


def qini_curve(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of rows targeted, Qini value as a share of the rows); see the module."""
    share, n_t, n_c, y_t, y_c = _counts(score, t, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(n_c > 0, y_c * n_t / n_c, 0.0) - y_t
    return share, qini / len(np.asarray(score))


def qini_coefficient(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> float:
    """Area between the Qini curve and random targeting's straight line to its end."""
    share, qini = qini_curve(score, t, y)
    return float(np.trapezoid(qini, share) - qini[-1] / 2)


def uplift_curve(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of rows targeted, churn-rate gain in the top share x the share)."""
    share, n_t, n_c, y_t, y_c = _counts(score, t, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where((n_c > 0) & (n_t > 0), y_c / n_c - y_t / n_t, 0.0)
    return share, gain * share


def auuc(score: np.ndarray, t: np.ndarray, y: np.ndarray) -> float:
    """Area under the uplift curve."""
    share, gain = uplift_curve(score, t, y)
    return float(np.trapezoid(gain, share))


def uplift_at_k(score: np.ndarray, t: np.ndarray, y: np.ndarray, k: int) -> float:
    """Control churn rate minus treated churn rate among the top ``k`` (NaN when the top
    ``k`` hold no row of one group)."""
    score, treated, churned = _arrays(score, t, y)
    if not 1 <= k <= len(score):
        raise DataError(f"uplift at K: K = {k}, expected 1 to {len(score)} (the rows ranked)")
    top = np.argsort(-score, kind="stable")[:k]
    treated, churned = treated[top], churned[top]
    if treated.all() or not treated.any():
        return float("nan")
    return float(churned[~treated].mean() - churned[treated].mean())


# -- a confidence interval ---------------------------------------------------------------
def bootstrap_interval(
    metric: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
    score: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """``metric(score, t, y)`` and its percentile interval over ``samples`` resamples, each
    drawing the treated and the control rows with replacement within their group (so every
    resample keeps both groups at their sizes). Resamples where the metric is NaN are left
    out of the interval."""
    score, treated, churned = _arrays(score, t, y)
    estimate = metric(score, treated.astype("int8"), churned.astype("int8"))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(treated), np.flatnonzero(~treated)]
    values = np.empty(samples)
    for i in range(samples):
        rows = np.concatenate([rng.choice(group, size=len(group)) for group in groups])
        rows = rng.permutation(rows)  # tied scores must not meet in group order
        values[i] = metric(score[rows], treated[rows].astype("int8"), churned[rows].astype("int8"))
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return Interval(float(estimate), float("nan"), float("nan"))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


# -- against the true effect (simulated data) --------------------------------------------
def true_effect_kept_at_k(score: np.ndarray, true_effect: np.ndarray, k: int) -> float:
    """The true effect summed over the top ``k`` by ``score``, over the largest sum any
    ``k`` rows have (the oracle's top ``k``): 1 is the oracle, 0 no effect kept, below 0
    harm done."""
    score = np.asarray(score, dtype="float64")
    true_effect = np.asarray(true_effect, dtype="float64")
    if len(score) != len(true_effect) or not 1 <= k <= len(score):
        raise DataError(
            f"true effect kept at K: {len(score)} scores, {len(true_effect)} true effects, "
            f"K = {k}; expected as many of each and 1 <= K <= their number"
        )
    chosen = true_effect[np.argsort(-score, kind="stable")[:k]].sum()
    best = np.sort(true_effect)[::-1][:k].sum()
    return float(chosen / best) if best > 0 else float("nan")


def true_auuc(score: np.ndarray, true_effect: np.ndarray) -> float:
    """Area under the curve of the mean true effect of the top share, times the share
    (the AUUC with the true effect in place of the control-treated gap)."""
    score = np.asarray(score, dtype="float64")
    ranked = np.asarray(true_effect, dtype="float64")[np.argsort(-score, kind="stable")]
    share = np.arange(len(ranked) + 1) / len(ranked)
    gain = np.r_[0.0, np.cumsum(ranked)] / len(ranked)
    return float(np.trapezoid(gain, share))


def effect_correlation(score: np.ndarray, true_effect: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of the score with the true effect."""
    score = np.asarray(score, dtype="float64")
    true_effect = np.asarray(true_effect, dtype="float64")
    if np.ptp(score) == 0 or np.ptp(true_effect) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {
        "pearson": float(pearsonr(score, true_effect).statistic),
        "spearman": float(spearmanr(score, true_effect).statistic),
    }


# -- all of them -------------------------------------------------------------------------
def evaluate_uplift(
    score: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    *,
    capacity: int,
    true_effect: np.ndarray | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Qini, AUUC and uplift at ``capacity`` with their intervals (``<name>_low`` and
    ``<name>_high``), and with ``true_effect`` the true-effect measures, as flat metrics
    for MLflow."""
    metrics: dict[str, float] = {}
    for name, metric in (
        ("qini", qini_coefficient),
        ("auuc", auuc),
        (f"uplift_at_{capacity}", lambda s, a, b: uplift_at_k(s, a, b, capacity)),
    ):
        interval = bootstrap_interval(metric, score, t, y, samples=samples, seed=seed)
        metrics[name] = interval.estimate
        metrics[f"{name}_low"] = interval.low
        metrics[f"{name}_high"] = interval.high
    if true_effect is not None:
        metrics[f"true_effect_kept_at_{capacity}"] = true_effect_kept_at_k(
            score, true_effect, capacity
        )
        metrics["true_auuc"] = true_auuc(score, true_effect)
        for name, value in effect_correlation(score, true_effect).items():
            metrics[f"true_effect_{name}"] = value
    return metrics


def _arrays(
    score: np.ndarray, t: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    score = np.asarray(score, dtype="float64")
    t, y = np.asarray(t), np.asarray(y)
    if not len(score) == len(t) == len(y) or len(score) == 0:
        raise DataError(
            f"uplift metrics: {len(score)} scores, {len(t)} treatment flags, {len(y)} labels; "
            "expected as many of each, at least one"
        )
    if np.isnan(score).any():
        raise DataError(
            f"uplift metrics: {int(np.isnan(score).sum())} score(s) are missing; score every row"
        )
    return score, t.astype(bool), y.astype(bool)
