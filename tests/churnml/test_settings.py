"""Settings: built once from flags and CHURNML_*, a bad value is one line naming its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from churnml.errors import ConfigError
from churnml.settings import Settings
from serving.settings import RiskListSettings, ServingSettings
from training.settings import TrainingSettings

OFF = {"CHURNML_AUTH": "off"}


def test_home_and_tracking_uri_are_read_once_and_shared(tmp_path: Path) -> None:
    core = Settings.from_env({"CHURNML_HOME": str(tmp_path)})
    training = TrainingSettings.from_settings(core, horizon_days=14)
    serving = ServingSettings.from_settings(core, OFF)
    assert training.home == serving.home == tmp_path
    assert training.horizon_days == 14
    expected = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    assert training.resolved_tracking_uri() == serving.tracking_uri == expected
    server = Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert TrainingSettings.from_settings(server).resolved_tracking_uri() == "http://mlflow:5000"


def test_flags_override_the_environment_and_none_is_no_flag() -> None:
    env = {"CHURNML_ENGINE": "dask", "CHURNML_CAPACITY": "30"}
    assert Settings.from_env(env, engine=None).engine == "dask"
    assert Settings.from_env(env, engine="local").engine == "local"
    assert RiskListSettings.from_env(env, capacity=None).capacity == 30
    assert RiskListSettings.from_env(env, capacity=7).capacity == 7
    calls = {"CHURNML_CONTROL_SHARE": "0.25", "CHURNML_MIN_CALL_EFFECT": "0.02"}
    assert RiskListSettings.from_env(calls).control_share == 0.25
    assert RiskListSettings.from_env(calls, control_share=0.0).control_share == 0.0
    assert RiskListSettings.from_env(calls).min_call_effect == 0.02
    assert RiskListSettings.from_env({}).rank_by is None  # the model decides


@pytest.mark.parametrize(
    ("build", "env", "words"),
    [
        (Settings.from_env, {"CHURNML_DASK_WORKERS": "two"}, "CHURNML_DASK_WORKERS='two'"),
        (Settings.from_env, {"CHURNML_DASK_WORKERS": "0"}, "CHURNML_DASK_WORKERS=0"),
        (Settings.from_env, {"CHURNML_STRICT": "maybe"}, "CHURNML_STRICT='maybe'"),
        (Settings.from_env, {"CHURNML_ENGINE": "spark"}, "CHURNML_ENGINE"),
        (RiskListSettings.from_env, {"CHURNML_CAPACITY": "many"}, "CHURNML_CAPACITY='many'"),
        (RiskListSettings.from_env, {"CHURNML_CAPACITY": "0"}, "CHURNML_CAPACITY=0"),
        (RiskListSettings.from_env, {"CHURNML_RANK_BY": "luck"}, "CHURNML_RANK_BY='luck'"),
        (RiskListSettings.from_env, {"CHURNML_REVENUE_MONTHS": "0"}, "CHURNML_REVENUE_MONTHS=0"),
        (RiskListSettings.from_env, {"CHURNML_SUPPRESS_DAYS": "-1"}, "CHURNML_SUPPRESS_DAYS=-1"),
        (RiskListSettings.from_env, {"CHURNML_PSI_WARNING": "high"}, "CHURNML_PSI_WARNING='high'"),
        (RiskListSettings.from_env, {"CHURNML_CONTROL_SHARE": "0.6"}, "CHURNML_CONTROL_SHARE=0.6"),
        (RiskListSettings.from_env, {"CHURNML_CONTROL_SHARE": "-0.1"}, "CHURNML_CONTROL_SHARE"),
        (RiskListSettings.from_env, {"CHURNML_MIN_CALL_EFFECT": "x"}, "CHURNML_MIN_CALL_EFFECT"),
        (ServingSettings.from_env, {**OFF, "CHURNML_SERVE_WORKERS": "x"}, "CHURNML_SERVE_WORKERS"),
        (ServingSettings.from_env, {**OFF, "CHURNML_SERVE_WORKERS": "0"}, "CHURNML_SERVE_WORKERS"),
        (ServingSettings.from_env, {**OFF, "CHURNML_MAX_BODY_BYTES": "9"}, "CHURNML_MAX_BODY"),
        (ServingSettings.from_env, {"CHURNML_AUTH": "maybe"}, "CHURNML_AUTH"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(build, env, words) -> None:
    with pytest.raises(ConfigError) as error:
        build(env)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_flag_not_given_leaves_the_environments_worker_count() -> None:
    env = {**OFF, "CHURNML_SERVE_WORKERS": "2"}
    assert ServingSettings.from_env(env, workers=None, model_uri=None).workers == 2


def test_a_bad_flag_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="capacity 0: expected at least 1 customer a day"):
        RiskListSettings.from_env({"CHURNML_CAPACITY": "30"}, capacity=0)


def test_the_service_takes_its_model_and_workers_from_its_settings() -> None:
    env = {**OFF, "CHURNML_MODEL_URI": "models:/churn-risk/3", "CHURNML_SERVE_WORKERS": "3"}
    settings = ServingSettings.from_env(env)
    assert (settings.model_uri, settings.workers) == ("models:/churn-risk/3", 3)
    chosen = ServingSettings.from_env(env, model_uri="models:/churn-risk/1", workers=2)
    process = chosen.process_environment(env)
    assert process["CHURNML_MODEL_URI"] == "models:/churn-risk/1"
    assert process["BENTOML_CONFIG_OVERRIDES"] == '{"services": {"churnml": {"workers": 2}}}'
    one = ServingSettings.from_env(OFF).process_environment(OFF)
    assert "BENTOML_CONFIG_OVERRIDES" not in one and one["CHURNML_SERVE_WORKERS"] == "1"


def test_the_service_module_reads_no_setting_at_import() -> None:
    """The worker count reaches BentoML from ``churnml serve``, not from an import."""
    code = "from serving.service import ChurnService; print(ChurnService.config.get('workers'))"
    env = {**os.environ, "CHURNML_SERVE_WORKERS": "3"}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "None"
