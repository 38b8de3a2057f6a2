"""The model's input schema: recorded at training, kept in the artifact, read by old models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from model.artifact import SPEC_FILE, ChurnModel
from model.predictor import Predictor
from model.schema import RARELY_MISSING_SHARE, SchemaField, lacking_line, rows_lacking
from tests.serving.helpers import SAMPLE, trained_home

SAMPLE_EXTRAS = ("region", "contract_type", "payment_method")


@pytest.fixture(scope="module")
def trained() -> ChurnModel:
    from model.loading import load_model
    from training import TrainingSettings

    home = trained_home()
    tracking = TrainingSettings(home=home).resolved_tracking_uri()
    return load_model("models:/churn-risk@champion", tracking).model


def test_training_records_every_profile_field_with_type_categories_and_missing_share(
    trained: ChurnModel,
) -> None:
    customers = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    schema = {field.name: field for field in Predictor(trained).input_schema}
    assert set(schema) == {"segment", "plan", "monthly_revenue", *SAMPLE_EXTRAS}
    for name in SAMPLE_EXTRAS:
        field = schema[name]
        assert field.type == "category"
        assert field.feature == f"profile_{name}"
        assert set(field.categories) == set(customers[name].dropna())
        assert field.missing_share == 0.0
    assert schema["monthly_revenue"].type == "number"
    assert schema["monthly_revenue"].categories == ()
    assert all(field.rarely_missing for field in schema.values())


def test_the_schema_survives_save_and_load(trained: ChurnModel, tmp_path: Path) -> None:
    loaded = ChurnModel.load(trained.save(tmp_path / "model"))
    assert loaded.input_schema == trained.input_schema
    spec = json.loads((tmp_path / "model" / SPEC_FILE).read_text())
    assert {f["name"] for f in spec["input_schema"]} >= set(SAMPLE_EXTRAS)


def test_a_model_saved_before_the_schema_derives_it(trained: ChurnModel, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "old")
    spec = json.loads((folder / SPEC_FILE).read_text())
    del spec["input_schema"]
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    assert ChurnModel.load(folder).input_schema == trained.input_schema


def test_a_model_without_drift_bins_has_its_fields_but_no_missing_shares(
    trained: ChurnModel, tmp_path: Path
) -> None:
    folder = tmp_path / "older"
    shutil.copytree(trained.save(tmp_path / "saved"), folder)
    spec = json.loads((folder / SPEC_FILE).read_text())
    del spec["input_schema"]
    spec["distribution"] = {}
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    schema = ChurnModel.load(folder).input_schema
    assert [f.name for f in schema] == [f.name for f in trained.input_schema]
    assert all(f.missing_share is None and not f.rarely_missing for f in schema)


@pytest.mark.parametrize(
    ("share", "warned"),
    [(0.0, True), (RARELY_MISSING_SHARE - 0.001, True), (RARELY_MISSING_SHARE, False)],
)
def test_only_fields_rarely_missing_in_training_are_warned_about(share, warned) -> None:
    field = SchemaField("region", "profile_region", "category", ("north",), share)
    assert field.rarely_missing is warned
    frame = pd.DataFrame({"region": [None, "north"]})
    assert rows_lacking([field], frame) == ({"region": 1} if warned else {})


def test_a_column_the_table_lacks_is_lacked_by_every_row() -> None:
    field = SchemaField("region", "profile_region", "category", ("north",), 0.0)
    assert rows_lacking([field], pd.DataFrame({"plan": ["a", "b", "c"]})) == {"region": 3}


def test_one_line_counts_the_rows_lacking_each_field() -> None:
    line = lacking_line({"region": 1, "contract_type": 3}, 10)
    assert line is not None and "\n" not in line
    assert line.startswith("warning: of 10 rows scored,")
    assert "region 1, contract_type 3;" in line


def test_no_line_when_no_row_lacks_a_field() -> None:
    assert lacking_line({}, 10) is None
