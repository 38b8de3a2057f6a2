"""PNG plots for the MLflow run. matplotlib is imported only when plotting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve


def matplotlib_missing() -> str | None:
    """None when plots can be drawn, else why not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed"
    return None


def write_plots(
    folder: Path,
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    probability: np.ndarray,
    importance: pd.Series,
    contributions: np.ndarray,
    feature_values: pd.DataFrame,
) -> list[Path]:
    """ROC, PR, calibration, lift/gain, gain importance and SHAP summary PNGs in ``folder``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    drawings = [
        ("roc.png", lambda: _roc(plt, y, scores)),
        ("pr.png", lambda: _precision_recall(plt, y, scores)),
        ("calibration.png", lambda: _calibration(plt, y, probability)),
        ("lift_gain.png", lambda: _lift_gain(plt, y, scores)),
        ("importance_gain.png", lambda: _importance(plt, importance)),
        ("shap_summary.png", lambda: _shap_summary(plt, contributions, feature_values)),
    ]
    written = []
    for name, draw in drawings:
        fig = draw()
        path = folder / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _roc(plt: Any, y: np.ndarray, scores: dict[str, np.ndarray]) -> Any:
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, score in scores.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test fold")
    ax.legend()
    return fig


def _precision_recall(plt: Any, y: np.ndarray, scores: dict[str, np.ndarray]) -> Any:
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, score)
        ax.plot(recall, precision, label=label)
    ax.axhline(y.mean(), color="grey", linestyle=":")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test fold")
    ax.legend()
    return fig


def _calibration(plt: Any, y: np.ndarray, probability: np.ndarray) -> Any:
    fig, ax = plt.subplots(figsize=(5, 5))
    order = np.argsort(probability)
    bins = np.array_split(order, 10)
    ax.plot([probability[b].mean() for b in bins], [y[b].mean() for b in bins], marker="o")
    top = max(probability.max(), y.mean() * 2)
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed churn rate",
        title="Calibration, test fold (10 equal-count bins)",
    )
    return fig


def _lift_gain(plt: Any, y: np.ndarray, scores: dict[str, np.ndarray]) -> Any:
    fig, (lift_ax, gain_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    for label, score in scores.items():
        ranked = y[np.argsort(-score, kind="stable")]
        share = np.arange(1, len(ranked) + 1) / len(ranked)
        gain = np.cumsum(ranked) / max(ranked.sum(), 1)
        gain_ax.plot(share, gain, label=label)
        deciles = np.array_split(ranked, 10)
        lift_ax.plot(
            range(1, 11),
            [d.mean() / max(y.mean(), 1e-12) for d in deciles],
            marker="o",
            label=label,
        )
    gain_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    gain_ax.set(
        xlabel="share of customers contacted",
        ylabel="share of churners reached",
        title="Cumulative gain",
    )
    lift_ax.set(xlabel="decile (1 = highest risk)", ylabel="lift", title="Lift by decile")
    lift_ax.legend()
    return fig


def _importance(plt: Any, importance: pd.Series) -> Any:
    top_features = importance.sort_values().tail(20)
    fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(top_features))))
    ax.barh(top_features.index, top_features.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance (gain)")
    return fig


def _shap_summary(plt: Any, contributions: np.ndarray, feature_values: pd.DataFrame) -> Any:
    mean_abs = np.abs(contributions).mean(axis=0)
    shown = np.argsort(mean_abs)[-15:]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.35 * len(shown))))
    rng = np.random.default_rng(0)
    for row, j in enumerate(shown):
        values = pd.to_numeric(feature_values.iloc[:, j], errors="coerce").to_numpy(dtype="float64")
        finite = np.isfinite(values)
        colour = np.full(len(values), 0.5)
        if finite.any() and np.nanmax(values) > np.nanmin(values):
            low, high = np.nanpercentile(values, [5, 95])
            colour[finite] = np.clip((values[finite] - low) / max(high - low, 1e-12), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, len(values))
        ax.scatter(contributions[:, j], row + jitter, c=colour, cmap="coolwarm", s=4, alpha=0.6)
    ax.set_yticks(range(len(shown)), [feature_values.columns[j] for j in shown])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(
        xlabel="contribution to log-odds (TreeSHAP, pred_contrib)",
        title="SHAP summary (colour: feature value, blue low, red high)",
    )
    return fig


def horizon_curve(
    folder: Path,
    curve_check: dict[int, dict[str, float]],
    metrics: dict[int, dict[str, dict[str, float]]],
) -> Path:
    """``horizons.png``: the mean predicted churn probability within each horizon beside
    the observed churn rate of the same test rows (left), and each horizon's test ROC-AUC
    against the baselines' (right)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    horizons = sorted(curve_check)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(horizons, [curve_check[h]["predicted"] for h in horizons], "o-", label="predicted")
    left.plot(horizons, [curve_check[h]["observed"] for h in horizons], "s--", label="observed")
    left.set_xlabel("horizon (days)")
    left.set_ylabel("P(churn within horizon), mean of test rows")
    left.legend()
    for who, style in (("model", "o-"), ("logistic", "s--"), ("rule", "^:")):
        values = [metrics[h][who]["roc_auc"] if who in metrics[h] else np.nan for h in horizons]
        right.plot(horizons, values, style, label=who)
    right.set_xlabel("horizon (days)")
    right.set_ylabel("test ROC-AUC")
    right.legend()
    fig.tight_layout()
    path = folder / "horizons.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
