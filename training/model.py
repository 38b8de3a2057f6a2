"""MLflow's face of the churn model: a pyfunc whose files are a ``ChurnModel`` folder.

churnml itself never runs this class: ``model.loading`` opens the folder directly. It is
for ``mlflow models serve`` and ``mlflow.pyfunc.load_model``.

``predict`` takes contract tables::

    {"customers": DataFrame, "interactions": DataFrame, "as_of": "YYYY-MM-DD"}

Over HTTP (``mlflow models serve``), send ``{"inputs": {"customers": [{...}, ...],
"interactions": [{...}, ...], "as_of": "YYYY-MM-DD"}}``: MLflow hands the record lists
over as arrays of dicts, which are checked and typed by ``churnml.validation.check_tables``.
Or, for a model trained on a customer table, that table as a DataFrame; it returns one
row per customer with ``customer_id, churn_probability, risk_band, reasons``.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from churnml.errors import DataError
from model.artifact import ChurnModel
from model.predictor import Predictor

with warnings.catch_warnings():
    # MLflow warns at class creation about predict's missing type hints; the input is a dict
    # of tables or a table, which its schema validation cannot describe.
    warnings.simplefilter("ignore", category=UserWarning)

    class ChurnRiskPyfunc(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc face of ``ChurnModel``; its files are the ``model`` artifact folder."""

        def load_context(self, context: Any) -> None:
            self.predictor = Predictor(ChurnModel.load(context.artifacts["model"]))

        # The hint is what MLflow reads: a DataFrame hint turns off its schema inference and
        # its warning about a missing hint (printed with colour codes, past any filter);
        # a dict of tables is taken too, which no MLflow schema describes.
        def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                if isinstance(model_input, dict):
                    try:
                        customers = model_input["customers"]
                        interactions = model_input["interactions"]
                    except KeyError as missing:
                        raise DataError(
                            f"model input lacks {missing}; pass customers, interactions and as_of"
                        ) from None
                    as_of = model_input.get("as_of") or (params or {}).get("as_of")
                    if as_of is None:
                        raise DataError(
                            "model input lacks 'as_of'; pass the day to score as YYYY-MM-DD"
                        )
                    if not isinstance(customers, pd.DataFrame) or not isinstance(
                        interactions, pd.DataFrame
                    ):
                        customers, interactions = _checked_json_tables(customers, interactions)
                    if isinstance(as_of, np.ndarray):
                        as_of = as_of.item() if as_of.ndim == 0 else as_of.ravel()[0]
                    return self.predictor.score_tables(customers, interactions, str(as_of))
                if isinstance(model_input, pd.DataFrame):
                    return self.predictor.score_table(model_input)
                raise DataError(
                    "model input must be {'customers', 'interactions', 'as_of'} or a customer table"
                )


def _records(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, dict):  # columns -> values
        return pd.DataFrame(value).to_dict("records")
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        return value
    raise DataError("customers and interactions must be tables or lists of records")


def _checked_json_tables(customers: Any, interactions: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Record lists (as ``mlflow models serve`` passes JSON) as typed, checked contract tables."""
    from churnml.validation import check_tables

    checked = check_tables(pd.DataFrame(_records(customers)), pd.DataFrame(_records(interactions)))
    if not checked.ok:
        first = checked.breaches[0]
        raise DataError(f"model input breaks the data contract: {first}")
    return checked.customers, checked.interactions
