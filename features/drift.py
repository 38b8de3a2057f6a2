"""Feature drift: how far today's features have moved from the training rows (PSI).

At training time ``distribution(frame)`` records, for every feature, the shares of the
training rows in a few bins: for a number, the bins between its deciles plus a bin for
"missing"; for a category, each category plus "missing" and "other". The model keeps it.
On a later day ``psi(distribution, frame)`` puts that day's rows in the same bins and
returns the population stability index of each feature:

    PSI = sum over bins of (today - training) * ln(today / training)

with shares floored at ``FLOOR`` so that an empty bin does not make it infinite. The usual
reading (Siddiqi, *Credit Risk Scorecards*, 2006): under 0.1 no real change, 0.1 to 0.25
a moderate shift, over 0.25 a shift worth acting on.

``psi`` is ``psi_of_counts`` of ``bin_counts``: the rows in each bin, whole numbers that add
up over parts of the rows (``add_counts``), so the Dask engine counts each partition on
its worker and one process gives the same PSI from the same counts, by the same code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

BINS = 10
FLOOR = 1e-4
MAX_ROWS = 200_000  # a seeded sample of this many rows is plenty for decile edges
MISSING = "missing"
OTHER = "other"


def distribution(frame: pd.DataFrame, *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The training rows' share in each bin of every feature (JSON-serialisable)."""
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=seed)
    result: dict[str, dict[str, Any]] = {}
    for column in frame.columns:
        values = frame[column]
        if _is_numeric(values):
            array = values.to_numpy(dtype="float64", na_value=np.nan)
            finite = array[np.isfinite(array)]
            edges = (
                np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
                if len(finite)
                else np.array([])
            )
            result[column] = {
                "kind": "number",
                "edges": edges.tolist(),
                "shares": _numeric_shares(array, edges).tolist(),
            }
        else:
            text = _text(values)
            counts = text.value_counts(normalize=True, dropna=True)
            result[column] = {
                "kind": "category",
                "categories": counts.index.tolist(),
                "shares": counts.tolist(),
                "missing": float(text.isna().mean()),
            }
    return result


def psi(reference: dict[str, dict[str, Any]], frame: pd.DataFrame) -> dict[str, float]:
    """PSI of each feature of ``reference`` that ``frame`` has, today's rows against training."""
    return psi_of_counts(reference, bin_counts(reference, frame))


def bin_counts(reference: dict[str, dict[str, Any]], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """How many rows of ``frame`` fall in each bin of each feature of ``reference`` that it
    has: for a number the bins between the training deciles, then missing; for a category
    each training category, then missing, then other. Counts of parts of the rows add up
    (``add_counts``) to the counts of the whole, so a cluster can bin each partition and
    send back a few numbers per feature instead of the rows."""
    result: dict[str, np.ndarray] = {}
    if frame.empty:
        return result
    for column, spec in reference.items():
        if column not in frame.columns:
            continue
        values = frame[column]
        if spec["kind"] == "number":
            if not _is_numeric(values):
                values = pd.to_numeric(values, errors="coerce")
            array = values.to_numpy(dtype="float64", na_value=np.nan)
            result[column] = _numeric_counts(array, np.asarray(spec["edges"], dtype="float64"))
        else:
            text = _text(values)
            counts = text.value_counts(dropna=True)
            seen = np.array([counts.get(c, 0) for c in spec["categories"]], dtype=np.int64)
            other = int(counts.sum()) - int(seen.sum())
            result[column] = np.array([*seen, int(text.isna().sum()), other], dtype=np.int64)
    return result


def add_counts(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The bin counts of all the rows of ``parts`` (``bin_counts`` of each)."""
    total: dict[str, np.ndarray] = {}
    for part in parts:
        for column, counts in part.items():
            total[column] = total[column] + counts if column in total else counts.copy()
    return total


def psi_of_counts(
    reference: dict[str, dict[str, Any]], counts: dict[str, np.ndarray]
) -> dict[str, float]:
    """PSI of each feature counted in ``counts`` (``bin_counts``) against ``reference``."""
    result: dict[str, float] = {}
    for column, spec in reference.items():
        if column not in counts or not counts[column].sum():
            continue
        if spec["kind"] == "number":
            expected = np.asarray(spec["shares"], dtype="float64")
        else:
            expected = np.array([*spec["shares"], spec["missing"], 0.0])
        actual = counts[column] / counts[column].sum()
        result[column] = _index(expected, actual)
    return result


def _index(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, FLOOR)
    a = np.maximum(actual, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_shares(array: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``array`` in the bins of ``_numeric_counts``."""
    return _numeric_counts(array, edges) / max(len(array), 1)


def _numeric_counts(array: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``array`` in the bins (-inf, e1], (e1, e2], ... (ek, inf), then missing."""
    finite = np.isfinite(array)
    counts = np.bincount(
        np.searchsorted(edges, array[finite], side="left"), minlength=len(edges) + 1
    )
    return np.append(counts, (~finite).sum()).astype(np.int64)


def _is_numeric(values: pd.Series) -> bool:
    return not isinstance(values.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(
        values.dtype
    )


def _text(values: pd.Series) -> pd.Series:
    """Values as text, missing ones missing (as Predictor.prepare reads categories)."""
    return values.astype("string").astype("object").where(values.notna(), None)
