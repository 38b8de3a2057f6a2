"""Evaluation metrics: ranking, calibration and the retention team's top-K view."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6
ECE_BINS = 10
MIN_SEGMENT_ROWS = 50


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by bin size.

    Equal-count bins, because churn probabilities crowd near zero and equal-width bins
    would put almost every customer into the first one.
    """
    y, p = np.asarray(y, dtype="float64"), np.asarray(p, dtype="float64")
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(y))):
        total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(total / len(y))


def top_fraction_lift(y: np.ndarray, p: np.ndarray, fraction: float = 0.1) -> float:
    """Churn rate among the top ``fraction`` by score, over the overall churn rate."""
    y = np.asarray(y, dtype="float64")
    n = max(1, int(round(len(y) * fraction)))
    top = np.argsort(-np.asarray(p), kind="stable")[:n]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


def precision_recall_at_k(
    y: np.ndarray, p: np.ndarray, k: int, dates: np.ndarray | None = None
) -> tuple[float, float]:
    """Precision and recall of the top ``k`` per day (the daily capacity), averaged over days."""
    y, p = np.asarray(y, dtype="float64"), np.asarray(p, dtype="float64")
    dates = np.zeros(len(y)) if dates is None else np.asarray(dates)
    precisions, recalls = [], []
    for day in pd.unique(dates):
        rows = np.flatnonzero(dates == day)
        top = rows[np.argsort(-p[rows], kind="stable")[:k]]
        hits = y[top].sum()
        precisions.append(hits / len(top))
        positives = y[rows].sum()
        recalls.append(hits / positives if positives > 0 else np.nan)
    recall = float(np.nanmean(recalls)) if np.any(~np.isnan(recalls)) else float("nan")
    return float(np.mean(precisions)), recall


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    *,
    capacity: int,
    dates: np.ndarray | None = None,
    probabilities: bool = True,
) -> dict[str, float]:
    """Every metric of the issue for one set of scores; NaN where undefined.

    With ``probabilities=False`` (a ranking score such as the rule's contact count) the
    calibration metrics (Brier, log loss, ECE) are NaN and only the ranking ones are given.
    """
    y = np.asarray(y, dtype="int64")
    p = np.asarray(p, dtype="float64")
    both = 0 < y.sum() < len(y)
    precision, recall = precision_recall_at_k(y, p, capacity, dates)
    result = {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float("nan"),
        "log_loss": float("nan"),
        "ece": float("nan"),
        "lift_top_decile": top_fraction_lift(y, p, 0.1),
        "precision_at_k": precision,
        "recall_at_k": recall,
        "churn_rate": float(y.mean()),
        "rows": float(len(y)),
    }
    if probabilities:
        clipped = np.clip(p, EPS, 1 - EPS)
        result["brier"] = float(brier_score_loss(y, clipped))
        result["log_loss"] = float(log_loss(y, clipped, labels=[0, 1]))
        result["ece"] = expected_calibration_error(y, clipped)
    return result


def evaluate_by_segment(
    y: np.ndarray,
    p: np.ndarray,
    segments: np.ndarray,
    *,
    capacity: int,
    dates: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """``evaluate`` per segment, for segments with enough rows and both classes."""
    segments = np.asarray(pd.Series(segments).astype("object").fillna("(missing)"))
    results = {}
    for segment in sorted(pd.unique(segments), key=str):
        rows = segments == segment
        if rows.sum() < MIN_SEGMENT_ROWS or not 0 < y[rows].sum() < rows.sum():
            continue
        results[str(segment)] = evaluate(
            y[rows], p[rows], capacity=capacity, dates=None if dates is None else dates[rows]
        )
    return results
