"""The one writer of a risk list's export: ``churnml risk-list --out FILE`` and
``GET /risk-list.csv`` write the same columns in the same order, rounded the same way.

* Columns: ``EXPORT_COLUMNS`` in that order (the contract's ``customer_id,
  churn_probability, risk_band, rank, reason_1`` among them); ``group`` (the day's
  ``treated`` or ``control`` pick) and, when the list's model has a call-effect head,
  ``call_effect``, ``saved_revenue`` and ``not_listed_because`` (``OPTIONAL_COLUMNS``)
  follow ``revenue_at_risk``; a list of a model trained with --horizons has
  ``likely_within_days`` and ``churn_probability_<H>d`` per horizon right after
  ``risk_band``.
* Probabilities (``churn_probability``, ``previous_probability``, ``call_effect``) are
  rounded to 4 significant digits, money (``monthly_revenue``, ``revenue_at_risk``,
  ``saved_revenue``) to 2 decimals, in the currency the ``currency`` column names
  (``CHURNML_CURRENCY``, default ``EUR``).
* Booleans are ``true`` / ``false`` in CSV (native booleans in Parquet); empty cells are
  empty. Every CSV goes through ``churnml.io.csv_safe`` (no cell a spreadsheet would run).
* Scope: ``all`` (everyone scored that day; ``--out``'s default) or ``list`` (the
  customers on the list; ``/risk-list.csv``'s default): ``--out-scope`` and ``?scope=``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from churnml.io import csv_safe, write_table
from features.reasons import REASONS_PER_CUSTOMER

SCOPES = ("all", "list")
REASON_COLUMNS = [f"reason_{i + 1}" for i in range(REASONS_PER_CUSTOMER)]
EXPORT_COLUMNS = [
    "list_date",
    "customer_id",
    "rank",
    "segment",
    "plan",
    "currency",
    "monthly_revenue",
    "churn_probability",
    "risk_band",
    "thin_history",
    "revenue_at_risk",
    *REASON_COLUMNS,
    "reason_codes",
    "action",
    "on_list",
    "change",
    "previous_rank",
    "previous_probability",
    "suppressed",
    "last_contacted",
    "model_version",
]
# The call effect's columns, when the list's model has a call-effect head (any call_effect).
CALL_EFFECT_COLUMNS = ["call_effect", "saved_revenue", "not_listed_because"]
OPTIONAL_COLUMNS = ["call_effect", "saved_revenue", "group", "not_listed_because"]
# With a model trained with --horizons (after risk_band): when the churn is placed
# (model.horizons.likely_within) and P(churn within H) per horizon.
HORIZON_COLUMNS = ["likely_within_days"]
PROBABILITY_COLUMNS = ("churn_probability", "previous_probability", "call_effect")
MONEY_COLUMNS = ("monthly_revenue", "revenue_at_risk", "saved_revenue")
BOOLEAN_COLUMNS = ("thin_history", "on_list", "suppressed")
INTEGER_COLUMNS = ("rank", "previous_rank", "likely_within_days")
SIGNIFICANT_DIGITS = 4
MONEY_DECIMALS = 2


def export_table(
    rows: pd.DataFrame,
    list_date: str,
    model_version: str,
    currency: str,
    *,
    scope: str = "all",
) -> pd.DataFrame:
    """The export of a list's rows (the stored rows or a run's frame, in rank order, with
    their ``reasons`` as lists of {code, text, ...}): ``EXPORT_COLUMNS``, rounded."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
    if scope == "list":
        rows = rows[rows["on_list"].astype(bool)]
    reasons = rows["reasons"].tolist()
    table = pd.DataFrame(index=range(len(rows)))
    with_effect = "call_effect" in rows.columns and rows["call_effect"].notna().any()
    optional = [
        c
        for c in OPTIONAL_COLUMNS
        if c in rows.columns and (with_effect or c not in CALL_EFFECT_COLUMNS)
    ]
    at = EXPORT_COLUMNS.index("revenue_at_risk") + 1
    band = EXPORT_COLUMNS.index("risk_band") + 1
    curves = _curves(rows)
    names = [
        *EXPORT_COLUMNS[:band],
        *(HORIZON_COLUMNS if curves is not None else []),
        *([] if curves is None else list(curves)),
        *EXPORT_COLUMNS[band:at],
        *optional,
        *EXPORT_COLUMNS[at:],
    ]
    for name in names:
        if name == "list_date":
            values = pd.Series([list_date] * len(rows), dtype="object")
        elif name == "model_version":
            values = pd.Series([model_version] * len(rows), dtype="object")
        elif name == "currency":
            values = pd.Series([currency] * len(rows), dtype="object")
        elif name in REASON_COLUMNS:
            i = REASON_COLUMNS.index(name)
            values = pd.Series([r[i]["text"] if len(r) > i else "" for r in reasons])
        elif name == "reason_codes":
            values = pd.Series([",".join(r["code"] for r in rs) for rs in reasons])
        elif curves is not None and name in curves:
            values = curves[name]
        else:
            values = pd.Series(rows[name].to_numpy(), dtype=rows[name].dtype)
        table[name] = _shaped(name, values)
    return table


def _curves(rows: pd.DataFrame) -> dict[str, pd.Series] | None:
    """``{churn_probability_<H>d: values}`` of rows whose ``horizons`` hold curves (a model
    trained with --horizons), None when none does."""
    if "horizons" not in rows.columns or rows["horizons"].isna().all():
        return None
    curves = rows["horizons"].tolist()
    days = sorted({int(h) for c in curves if c for h in c})
    return {
        f"churn_probability_{h}d": pd.Series(
            [np.nan if not c or str(h) not in c else c[str(h)] for c in curves], dtype="float64"
        )
        for h in days
    }


def _shaped(name: str, values: pd.Series) -> pd.Series:
    if name in PROBABILITY_COLUMNS or name.startswith("churn_probability_"):
        return pd.Series(significant(_floats(values), SIGNIFICANT_DIGITS))
    if name in MONEY_COLUMNS:
        return pd.Series(np.round(_floats(values), MONEY_DECIMALS))
    if name in BOOLEAN_COLUMNS:
        return values.fillna(False).astype(bool)
    if name in INTEGER_COLUMNS:
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    return values.astype("object").where(values.notna(), None)


def _floats(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (0 and NaN as they are)."""
    out = np.array(values, dtype="float64")
    finite = np.isfinite(out) & (out != 0)
    magnitude = np.floor(np.log10(np.abs(out[finite])))
    scale = 10.0 ** (digits - 1 - magnitude)
    out[finite] = np.round(out[finite] * scale) / scale
    return out


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as CSV cells: booleans as true/false, then ``csv_safe``."""
    cells = table.copy()
    for name in BOOLEAN_COLUMNS:
        if name in cells.columns:
            cells[name] = np.where(cells[name].to_numpy(dtype=bool), "true", "false")
    return csv_safe(cells)


def csv_text(table: pd.DataFrame) -> str:
    """The export as CSV text (``GET /risk-list.csv``)."""
    buffer = io.StringIO()
    csv_frame(table).to_csv(buffer, index=False)
    return buffer.getvalue()


def write_export(table: pd.DataFrame, path: Path) -> Path:
    """The export to a file (``--out``): the same CSV text as ``csv_text``, or Parquet."""
    if path.suffix.lower() == ".csv":
        return write_table(csv_frame(table), path)
    return write_table(table, path)
