"""The day's scores (``churnml score``), written once over ``Engine.map``.

Both engines run the same function on their partitions (the local engine has one, the
whole tables), so the scores are the same whichever engine computed them. The day's risk
list is written the same way, in ``serving.risklist.make_risk_list_on``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import DataError

if TYPE_CHECKING:
    from churnml.engines import Engine

ORDER = "__churnml_order__"  # a scored customer's place in the customers table


def score_partition(
    model: Any, features: pd.DataFrame, customers: pd.DataFrame, interactions: pd.DataFrame
) -> pd.DataFrame:
    """``ChurnModel.score_frame`` of one partition's features, with each customer's place
    in the customers table (the customers' index) to put the partitions back in order."""
    if features.empty:  # a partition (or a day) with nobody active
        return pd.DataFrame()
    scores = model.score_frame(features, features.index)
    place = customers.index.to_numpy()[pd.Index(customers[CUSTOMER_ID]).get_indexer(features.index)]
    scores[ORDER] = place
    return scores


def score_day(engine: Engine, model: Any, day: dt.date) -> pd.DataFrame:
    """``churnml score``'s frame of every customer active on ``day``, in the customers
    table's order: customer_id, churn_probability, risk_band, reasons, reason_codes, as_of
    (the caller adds the model's version). DataError when nobody is active on ``day``."""
    parts = [part for part in engine.map(score_partition, model, day, what="scoring") if len(part)]
    if not parts:
        raise DataError(f"no customer is active on {day:%Y-%m-%d}; pick a later --as-of")
    scores = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    order = np.argsort(scores[ORDER].to_numpy(), kind="stable")
    scores = scores.take(order).drop(columns=[ORDER]).reset_index(drop=True)
    scores["as_of"] = f"{day:%Y-%m-%d}"
    return scores
