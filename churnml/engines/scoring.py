"""The day's scores (``churnml score``), written once over ``Engine.map``.

Both engines run the same function on their partitions (the local engine has one, the
whole tables), so the scores are the same whichever engine computed them. The day's risk
list is written the same way, in ``serving.risklist.make_risk_list_on``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import DataError

if TYPE_CHECKING:
    from churnml.engines import Engine
    from model.predictor import Predictor

ORDER = "__churnml_order__"  # a scored customer's place in the customers table


def place_in_table(features: pd.DataFrame, customers: pd.DataFrame) -> np.ndarray:
    """Where each customer of ``features`` stands in the customers table (``Engine.map``
    gives the partition's customers indexed so)."""
    return customers.index.to_numpy()[pd.Index(customers[CUSTOMER_ID]).get_indexer(features.index)]


def in_table_order(parts: list[pd.DataFrame], day: dt.date) -> pd.DataFrame:
    """The partitions' frames (each with ``ORDER``) as one, in the customers table's order;
    DataError when nobody is active on ``day``."""
    parts = [part for part in parts if len(part)]
    if not parts:
        raise DataError(f"no customer is active on {day:%Y-%m-%d}; pick a later --as-of")
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    order = np.argsort(frame[ORDER].to_numpy(), kind="stable")
    return frame.take(order).drop(columns=[ORDER]).reset_index(drop=True)


@dataclass(frozen=True)
class DayScores:
    """The day's scores, and how many of the scored customers lacked each profile field the
    model was trained on almost always having (``Predictor.rows_lacking``)."""

    frame: pd.DataFrame
    lacking: dict[str, int]


def score_partition(
    predictor: Predictor,
    features: pd.DataFrame,
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    day: dt.date | None = None,
    retention_contacts: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``Predictor.score_frame`` of one partition's features (with the call effect when the
    model has a head), with each customer's place in the customers table; and the
    partition's counts of rows lacking a warned field."""
    if features.empty:  # a partition (or a day) with nobody active
        return pd.DataFrame(), {}
    scores = predictor.score_frame(features, features.index)
    if day is not None:
        predictor.add_call_effect(
            scores, features, customers, retention_contacts, pd.Timestamp(day)
        )
    scores[ORDER] = place_in_table(features, customers)
    return scores, predictor.rows_lacking(customers, features.index)


def day_scores(engine: Engine, predictor: Predictor, day: dt.date) -> DayScores:
    """``churnml score``'s frame of every customer active on ``day``, in the customers
    table's order: customer_id, churn_probability, risk_band, reasons, reason_codes, as_of
    (the caller adds the model's version); and the rows lacking each warned field. DataError
    when nobody is active on ``day``."""
    contacts = getattr(engine.tables(), "retention_contacts", None)
    parts = engine.map(score_partition, predictor, day, day, contacts, what="scoring")
    scores = in_table_order([frame for frame, _ in parts], day)
    scores["as_of"] = f"{day:%Y-%m-%d}"
    lacking: Counter[str] = Counter()
    for _, counts in parts:
        lacking.update(counts)
    return DayScores(scores, dict(lacking))


def score_day(engine: Engine, predictor: Predictor, day: dt.date) -> pd.DataFrame:
    """``day_scores``' frame alone."""
    return day_scores(engine, predictor, day).frame
