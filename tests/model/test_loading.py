"""Which model a command uses, and what loading refuses, in one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnml.errors import ModelError
from churnml.settings import Settings
from model.loading import DEFAULT_MODEL_URI, load_model, resolve_model_uri


@pytest.mark.parametrize(
    ("given", "env", "chosen"),
    [
        (None, {}, DEFAULT_MODEL_URI),
        (None, {"CHURNML_MODEL_URI": "models:/churn-risk/3"}, "models:/churn-risk/3"),
        ("models:/other@champion", {"CHURNML_MODEL_URI": "models:/x/1"}, "models:/other@champion"),
    ],
)
def test_the_flag_wins_then_the_environment_then_the_champion(given, env, chosen) -> None:
    assert resolve_model_uri(given, Settings.from_env(env).model_uri) == chosen


def test_a_folder_that_is_not_a_churnml_model_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "someone-elses-model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: x\n")
    with pytest.raises(ModelError, match="is not a churnml model") as error:
        load_model(str(folder), f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "\n" not in str(error.value)


def test_a_missing_alias_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="churnml promote VERSION") as error:
        load_model("models:/churn-risk@champion", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "\n" not in str(error.value)
