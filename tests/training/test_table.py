"""The customer-table path: label words, column types, errors, and both real tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.errors import DataError
from model.artifact import table_features
from tests.conftest import REAL_TABLES
from training import TrainingSettings, score_table, train_from_table
from training.table import infer_schema, map_labels

REAL = REAL_TABLES


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["yes", "no"], [1, 0]),
        (["Yes", "No"], [1, 0]),
        (["1", "0"], [1, 0]),
        (["true", "false"], [1, 0]),
        (["True", "False"], [1, 0]),
        ([1, 0], [1, 0]),
    ],
)
def test_label_words_map_to_one_and_zero(values: list, expected: list[int]) -> None:
    assert map_labels(pd.Series(values), "churn").tolist() == expected


def test_a_single_valued_label_is_a_one_line_error() -> None:
    with pytest.raises(DataError, match="pick a column with both churned and retained") as error:
        map_labels(pd.Series(["no"] * 20), "churn")
    assert "\n" not in str(error.value)


def test_an_unknown_label_value_names_it() -> None:
    with pytest.raises(DataError, match="'maybe'"):
        map_labels(pd.Series(["yes", "maybe"]), "churn")


def test_blank_numbers_stay_numeric_and_ids_are_left_out() -> None:
    table = pd.DataFrame(
        {
            "rownames": ["1", "2", "3", "4"],
            "customerID": ["a", "b", "c", "d"],
            "TotalCharges": ["10.5", " ", "30", "4"],
            "plan": ["x", "y", "x", "y"],
            "Churn": ["Yes", "No", "No", "Yes"],
        }
    )
    schema = infer_schema(table, "Churn", None)
    assert schema["numeric"] == ["TotalCharges"]
    assert list(schema["categorical"]) == ["plan"]
    assert set(schema["dropped"]) == {"rownames", "customerID"}
    features = table_features(table, schema)
    assert np.isnan(features["TotalCharges"].iloc[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "label", "id_column", "min_auc"),
    [
        ("telecom_mlc_churn.csv", "churn", None, 0.88),
        ("ibm_telco_churn.csv", "Churn", "customerID", 0.82),
    ],
)
def test_the_real_tables_train_score_and_beat_the_baselines(
    tmp_path: Path, file: str, label: str, id_column: str | None, min_auc: float
) -> None:
    settings = TrainingSettings(home=tmp_path)
    result = train_from_table(REAL / file, label, settings, id_column=id_column)
    assert result.test["model"]["roc_auc"] > min_auc
    assert result.test["model"]["roc_auc"] > result.test["logistic"]["roc_auc"]
    assert result.champion_version == result.model_version  # the first model passes the gate
    scores = score_table(REAL / file, settings, id_column=id_column)
    assert len(scores) == len(pd.read_csv(REAL / file))
    assert {"churn_probability", "risk_band", "reasons"} <= set(scores.columns)
    assert scores["churn_probability"].between(0, 1).all()
