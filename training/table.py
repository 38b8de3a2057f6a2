"""The customer-table path: one labelled row per customer, every other column a feature.

Columns are typed once, at training, into a schema stored with the model: a column is
numeric when every non-blank value parses as a number (IBM's ``TotalCharges`` with its
blank cells is numeric with missing values), otherwise categorical. Text columns with a
distinct value on every row are identifiers, not features, and are left out, and so is
a running row number (1, 2, 3, ... as R's ``rownames``): it only encodes the file's order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churnml.errors import DataError
from model.artifact import table_text

LABEL_WORDS = {
    "yes": 1,
    "no": 0,
    "true": 1,
    "false": 0,
    "1": 1,
    "0": 0,
    "1.0": 1,
    "0.0": 0,
    "y": 1,
    "n": 0,
    "churned": 1,
    "stayed": 0,
}
# Column names that count service contacts: the rule baseline ranks by the first found.
CONTACT_COLUMN_HINTS = ("customer_service_calls", "service_calls", "service_contacts", "contacts")


def map_labels(values: pd.Series, column: str) -> np.ndarray:
    """yes/no, Yes/No, true/false, 1/0 (any case) to 1/0; DataError on anything else."""
    text = values.astype("object").map(lambda v: None if pd.isna(v) else str(v).strip().lower())
    blank = text.isna() | (text == "")
    if blank.any():
        first = int(np.flatnonzero(blank.to_numpy())[0])
        raise DataError(
            f"label column {column!r}: {int(blank.sum())} rows are blank (first: row {first + 2}); "
            "fill or drop them"
        )
    unknown = sorted(set(text) - set(LABEL_WORDS))
    if unknown:
        raise DataError(
            f"label column {column!r}: value {unknown[0]!r} is not a label; "
            "expected yes/no, true/false or 1/0"
        )
    labels = text.map(LABEL_WORDS).to_numpy(dtype="int8")
    if labels.min() == labels.max():
        raise DataError(
            f"label column {column!r}: every row has the value {values.iloc[0]!r}; "
            "pick a column with both churned and retained customers"
        )
    return labels


def infer_schema(table: pd.DataFrame, label: str, id_column: str | None) -> dict[str, Any]:
    """Which columns are numeric, which categorical (with their categories), which dropped."""
    for name, value in (("--label", label), ("--id", id_column)):
        if value is not None and value not in table.columns:
            raise DataError(
                f"{name} {value!r} is not a column of the table; columns: "
                f"{', '.join(map(str, table.columns[:12]))}"
            )
    numeric, categorical, dropped = [], {}, []
    for column in table.columns:
        if column in (label, id_column):
            continue
        values = table_text(table[column])
        given = values.notna()
        numbers = pd.to_numeric(values, errors="coerce")
        if given.any() and numbers.notna().sum() == given.sum():
            if _is_row_number(numbers):
                dropped.append(column)
            else:
                numeric.append(column)
        elif values.nunique() >= max(len(table) - 1, 2) or not given.any():
            dropped.append(column)
        else:
            categorical[column] = sorted(values.dropna().unique().tolist())
    if not numeric and not categorical:
        raise DataError(
            f"the table has no feature column beside {label!r}; it needs at least one more column"
        )
    return {
        "label_column": label,
        "id_column": id_column,
        "numeric": numeric,
        "categorical": categorical,
        "dropped": dropped,
        "rule_column": _contact_column(numeric),
    }


def _is_row_number(numbers: pd.Series) -> bool:
    """A running count such as R's ``rownames``: distinct integers, each one more than the last."""
    values = numbers.to_numpy(dtype="float64")
    if len(values) < 3 or np.isnan(values).any():
        return False
    steps = np.diff(values)
    return bool(np.all(steps == 1.0) and np.all(values == np.round(values)))


def _contact_column(numeric: list[str]) -> str | None:
    for hint in CONTACT_COLUMN_HINTS:
        for column in numeric:
            if hint in column.lower():
                return column
    return None


def check_folds(labels: np.ndarray, folds: int) -> None:
    """DataError unless each value of the label has enough rows for ``folds`` stratified
    folds (at least 2 a fold, 10 in all)."""
    rarer = int(min(np.bincount(labels, minlength=2)))
    if rarer < max(10, 2 * folds):
        raise DataError(
            f"the label has only {rarer} rows of its rarer value; stratified {folds}-fold "
            f"cross-validation needs at least {max(10, 2 * folds)}"
        )
