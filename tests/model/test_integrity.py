"""A damaged booster file is refused in one line before LightGBM parses it (issue 13, #2).

LightGBM aborts the whole process (``terminate called``, SIGSEGV) on a truncated
``booster.txt`` instead of raising, so these tests run the damaged loads in this process on
purpose: without the checksum, pytest itself dies.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from churnml.errors import ModelError
from model.artifact import BOOSTER_FILE, CHECKSUMS, SPEC_FILE, ChurnModel, sha256_of
from model.loading import load_model
from tests.serving.helpers import trained_home


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the registered champion's pyfunc folder (MLmodel, artifacts/model/...)."""
    from model.loading import _download

    source = _download("models:/churn-risk/1", f"sqlite:///{trained_home() / 'mlflow.db'}")
    copy = tmp_path_factory.mktemp("registered") / "pyfunc"
    shutil.copytree(source, copy)
    return copy


@pytest.fixture
def folder(registered: Path, tmp_path: Path) -> Path:
    """A fresh copy of the champion's ChurnModel folder for one test to damage."""
    return Path(shutil.copytree(registered / "artifacts" / "model", tmp_path / "model"))


def _rows(model: ChurnModel) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(0, 50, size=(200, model.booster.num_feature()))


def _truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_one_digit(path: Path) -> None:
    text = path.read_text()
    middle = len(text) // 2
    at = next(i for i in range(middle, len(text)) if text[i] in "123456789")
    path.write_text(text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :])


def _drop_last_tree(path: Path) -> None:
    text = path.read_text()
    last = text.rfind("Tree=")
    end = text.find("end of trees")
    path.write_text(text[:last] + text[end:])


def _forget_checksums(folder: Path) -> None:
    """The spec as churnml wrote it before checksums: no sha256, and no call-effect head
    (heads came later, always with their checksum)."""
    spec = json.loads((folder / SPEC_FILE).read_text())
    spec.pop(CHECKSUMS)
    spec["call_effect"] = None
    (folder / SPEC_FILE).write_text(json.dumps(spec))


def test_the_spec_holds_the_sha256_of_the_booster_it_was_saved_with(folder: Path) -> None:
    spec = json.loads((folder / SPEC_FILE).read_text())
    expected = {BOOSTER_FILE: sha256_of((folder / BOOSTER_FILE).read_bytes())}
    head = "call_effect/call_effect.json"  # the sample model has a call-effect head
    assert (folder / head).exists()
    expected[head] = sha256_of((folder / head).read_bytes())
    assert spec[CHECKSUMS] == expected


def test_saving_again_keeps_the_booster_text_and_every_score(folder: Path, tmp_path: Path) -> None:
    model = ChurnModel.load(folder)
    again = ChurnModel.load(model.save(tmp_path / "again"))
    assert (tmp_path / "again" / BOOSTER_FILE).read_bytes() == (folder / BOOSTER_FILE).read_bytes()
    rows = _rows(model)
    assert np.array_equal(again.booster.predict(rows), model.booster.predict(rows))


@pytest.mark.parametrize(
    "damage", [_truncate_half, _flip_one_digit, _drop_last_tree], ids=lambda f: f.__name__[1:]
)
def test_a_damaged_booster_is_one_line_naming_the_file_and_the_fix(
    folder: Path, damage: Callable[[Path], None]
) -> None:
    damage(folder / BOOSTER_FILE)
    with pytest.raises(ModelError) as error:
        ChurnModel.load(folder)
    message = str(error.value)
    assert "\n" not in message
    assert str(folder) in message and BOOSTER_FILE in message and "sha256" in message
    assert "restore" in message and "churnml train" in message


def test_a_model_saved_before_checksums_still_loads_with_the_same_scores(folder: Path) -> None:
    model = ChurnModel.load(folder)
    _forget_checksums(folder)
    legacy = ChurnModel.load(folder)
    rows = _rows(model)
    assert np.array_equal(legacy.booster.predict(rows), model.booster.predict(rows))


def test_a_truncated_booster_saved_before_checksums_is_one_line(folder: Path) -> None:
    _forget_checksums(folder)
    _truncate_half(folder / BOOSTER_FILE)
    with pytest.raises(ModelError) as error:
        ChurnModel.load(folder)
    message = str(error.value)
    assert "\n" not in message and BOOSTER_FILE in message and "cannot be parsed" in message


def test_loading_a_damaged_model_folder_by_uri_names_the_uri(
    registered: Path, tmp_path: Path
) -> None:
    pyfunc = Path(shutil.copytree(registered, tmp_path / "pyfunc"))
    _truncate_half(pyfunc / "artifacts" / "model" / BOOSTER_FILE)
    with pytest.raises(ModelError) as error:
        load_model(str(pyfunc), f"sqlite:///{tmp_path / 'mlflow.db'}")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{pyfunc}: {BOOSTER_FILE} does not match")
