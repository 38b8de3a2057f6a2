"""MLflow's face of the churn model: a pyfunc whose files are a ``ChurnModel`` folder.

``predict`` takes contract tables::

    {"customers": DataFrame, "interactions": DataFrame, "as_of": "YYYY-MM-DD"}

or, for a model trained on a customer table, that table as a DataFrame; it returns one
row per customer with ``customer_id, churn_probability, risk_band, reasons``.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow.pyfunc
import pandas as pd

from churnml.errors import DataError
from features.model import KIND_INTERACTIONS, KIND_TABLE, ChurnModel

__all__ = ["KIND_INTERACTIONS", "KIND_TABLE", "ChurnModel", "ChurnRiskPyfunc"]


with warnings.catch_warnings():
    # MLflow warns at class creation about predict's missing type hints; the input is a dict
    # of tables or a table, which its schema validation cannot describe.
    warnings.simplefilter("ignore", category=UserWarning)

    class ChurnRiskPyfunc(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc face of ``ChurnModel``; its files are the ``model`` artifact folder."""

        def load_context(self, context: Any) -> None:
            self.model = ChurnModel.load(context.artifacts["model"])

        def predict(self, context, model_input, params=None):  # noqa: ANN001 (MLflow reads hints)
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
                    return self.model.score_tables(customers, interactions, as_of)
                if isinstance(model_input, pd.DataFrame):
                    return self.model.score_table(model_input)
                raise DataError(
                    "model input must be {'customers', 'interactions', 'as_of'} or a customer table"
                )
