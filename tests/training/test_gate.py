"""The promotion gate, and the person's promote and rollback, against a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.errors import DataError, ModelError
from tests.conftest import REAL_TABLES
from training import TrainingSettings, champion_history, promote, rollback, train_from_table
from training.promotion import GateEvidence, promotion_gate

REAL = REAL_TABLES
SETTINGS = TrainingSettings(gate_auc_tolerance=0.01, ece_bound=0.05)


def evidence(**changes: object) -> GateEvidence:
    values: dict = {
        "fold_roc_auc": ({"model": 0.80, "logistic": 0.75, "rule": 0.65},) * 3,
        "test_roc_auc": 0.80,
        "test_ece": 0.01,
    }
    values.update(changes)
    return GateEvidence(**values)


def test_a_model_that_beats_everything_is_promoted() -> None:
    decision = promotion_gate(evidence(champion_version="3", champion_test_roc_auc=0.795), SETTINGS)
    assert decision.promote, decision.reasons


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"fold_roc_auc": ({"model": 0.80, "logistic": 0.81, "rule": 0.6},)}, "beats_baselines"),
        ({"fold_roc_auc": ({"model": 0.80, "logistic": 0.7, "rule": 0.80},)}, "beats_baselines"),
        ({"champion_version": "1", "champion_test_roc_auc": 0.82}, "not_worse_than_champion"),
        ({"champion_version": "1", "champion_note": "other columns"}, "not_worse_than_champion"),
        ({"test_ece": 0.2}, "calibrated"),
    ],
)
def test_the_gate_keeps_a_model_that_fails_one_check(changes: dict, failed: str) -> None:
    decision = promotion_gate(evidence(**changes), SETTINGS)
    assert not decision.promote
    assert not decision.checks[failed]


def test_a_table_model_behind_default_lightgbm_is_kept_and_the_reason_says_so() -> None:
    behind = ({"model": 0.90, "logistic": 0.82, "rule": 0.61, "lightgbm": 0.91},)
    decision = promotion_gate(evidence(fold_roc_auc=behind), SETTINGS)
    assert not decision.promote
    assert not decision.checks["beats_default_lightgbm"]
    assert "does not beat lightgbm.LGBMClassifier() with default parameters" in decision.text()
    assert "0.9000 vs 0.9100" in decision.text()


def test_a_table_model_ahead_of_default_lightgbm_passes_that_check() -> None:
    ahead = ({"model": 0.92, "logistic": 0.82, "rule": 0.61, "lightgbm": 0.91},)
    decision = promotion_gate(evidence(fold_roc_auc=ahead), SETTINGS)
    assert decision.promote and decision.checks["beats_default_lightgbm"]


def test_within_the_tolerance_of_the_champion_is_still_promoted() -> None:
    decision = promotion_gate(evidence(champion_version="1", champion_test_roc_auc=0.805), SETTINGS)
    assert decision.promote


def test_a_rule_baseline_that_does_not_exist_is_not_a_check() -> None:
    decision = promotion_gate(evidence(fold_roc_auc=({"model": 0.8, "logistic": 0.7},)), SETTINGS)
    assert decision.promote


@pytest.fixture(scope="module")
def telecom() -> pd.DataFrame:
    return pd.read_csv(REAL / "telecom_mlc_churn.csv", dtype=str)


@pytest.mark.slow
def test_a_worse_model_is_not_promoted_and_people_can_override(
    tmp_path: Path, telecom: pd.DataFrame
) -> None:
    settings = TrainingSettings(home=tmp_path)
    good = train_from_table(telecom, "churn", settings)
    assert good.gate.promote and good.champion_version == good.model_version

    shuffled = telecom.copy()
    shuffled["churn"] = np.random.default_rng(0).permutation(shuffled["churn"].to_numpy())
    worse = train_from_table(shuffled, "churn", settings)
    assert not worse.gate.promote
    assert worse.champion_version == good.model_version

    promote(worse.model_version, settings, reason="testing an override")
    rollback(settings)
    history = champion_history(settings)
    assert [(e["action"], e["version"]) for e in history] == [
        ("gate", good.model_version),
        ("promote", worse.model_version),
        ("rollback", good.model_version),
    ]
    assert history[1]["reason"] == "testing an override"
    with pytest.raises(DataError, match="no earlier champion"):
        rollback(settings)
    with pytest.raises(ModelError, match="has no version '99'"):
        promote("99", settings)
