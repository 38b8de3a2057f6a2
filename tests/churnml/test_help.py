"""Every command's --help shows each default as the settings objects hold it (no copy)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from churnml.cli import app
from churnml.cli.run import DEFAULT_HISTORY_WEEKS
from churnml.contract import DEFAULT_HORIZON_DAYS
from churnml.settings import Settings, WorldSettings
from churnml.simulator.params import SimulationParams
from serving.settings import (
    DEFAULT_MODEL_URI,
    RANK_BY_DEFAULT_WORDS,
    RiskListSettings,
    ServingSettings,
)
from training.settings import TrainingSettings

ENGINE = {"--engine": Settings.engine}
MODEL = {"--model": DEFAULT_MODEL_URI}
# Every option with a default, and the value of the settings object that holds it.
DEFAULTS: dict[str, dict[str, object]] = {
    "validate": {"--horizon": DEFAULT_HORIZON_DAYS},
    "features": ENGINE,
    "generate": {
        "--customers": WorldSettings.customers,
        "--days": WorldSettings.days,
        "--seed": WorldSettings.seed,
        "--out": WorldSettings.out,
        "--start-date": WorldSettings.start_date,
        "--horizon": WorldSettings.horizon_days,
        "--format": WorldSettings.file_format,
        "--control-share": SimulationParams.retention_control_share,
        "--oracle-streams": SimulationParams.oracle_streams,
        "--oracle-replicates": SimulationParams.oracle_replicates,
    },
    "train": {
        "--horizon": TrainingSettings.horizon_days,
        "--backtest": TrainingSettings.backtest_folds,
        "--capacity": TrainingSettings.capacity,
        "--tuning-budget": TrainingSettings.tuning_budget_seconds,
        "--tuning-trials": TrainingSettings.tuning_max_trials,
        "--blend": TrainingSettings.blend,
        "--refit": TrainingSettings.refit,
        **ENGINE,
    },
    "score": {**MODEL, **ENGINE},
    "promote": {},
    "rollback": {},
    "risk-list": {
        "--capacity": RiskListSettings.capacity,
        "--rank-by": RANK_BY_DEFAULT_WORDS,  # a rule: the model decides
        "--min-call-effect": RiskListSettings.min_call_effect,
        "--control-share": RiskListSettings.control_share,
        "--months": RiskListSettings.revenue_months,
        "--suppress-days": RiskListSettings.suppress_days,
        "--grace-days": RiskListSettings.freshness_grace_days,
        "--out-scope": RiskListSettings.export_scope,
        **MODEL,
        **ENGINE,
    },
    "serve": {
        "--port": ServingSettings.port,
        "--host": ServingSettings.host,
        "--workers": ServingSettings.workers,
        **MODEL,
    },
    "run": {"--port": ServingSettings.port, "--history-weeks": DEFAULT_HISTORY_WEEKS},
    "retention-contacts": {"--horizon": DEFAULT_HORIZON_DAYS},
    "report": {},
}
# Options whose default is a rule, not a value: the configured source, the latest contact
# day, a LocalCluster, the row number, the store under CHURNML_HOME, the last day - horizon.
DESCRIBED = {"--customers", "--interactions", "--as-of", "--scheduler", "--id", "--store"}
DESCRIBED_IN = {
    "generate": {"--oracle-as-of"},
    "report": {"--horizon"},
    "score": {"--horizons"},  # every horizon the model was trained with
}

COMMANDS = typer.main.get_command(app).commands


def help_rows(command: str) -> dict[str, str]:
    """Each option's row of the help as a user sees it (a wide terminal: one line each)."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        words = " ".join(line.strip("│ ").split()).removeprefix("* ")
        if words.startswith("--"):
            rows[words.split()[0].split(",")[0]] = words  # "--new,--old": an alias
    return rows


def test_every_command_is_covered() -> None:
    assert set(COMMANDS) == set(DEFAULTS)


@pytest.mark.parametrize("command", sorted(DEFAULTS))
def test_help_shows_each_default_the_settings_hold(command: str) -> None:
    rows = help_rows(command)
    options = [p for p in COMMANDS[command].params if p.param_type_name == "option"]
    described = (DESCRIBED | DESCRIBED_IN.get(command, set())) - set(DEFAULTS[command])
    shown = {}
    for option in options:
        name = option.opts[0]
        row = rows[name]
        has_value = option.default not in (None, "")  # "" (no --reason) is no default
        if option.is_flag or name in described or not (has_value or "default" in row):
            continue  # switches (--strict, --quiet, --serve/--no-serve, --help) hold no value
        shown[name] = row
        assert name in DEFAULTS[command], f"{command} {name}: a default no setting holds"
        value = DEFAULTS[command][name]
        assert f"default: {value}" in row, f"{command} {name}: {row!r} does not show {value}"
        if has_value:  # the option's own default is the setting itself
            assert str(option.default) == str(value)
    assert set(shown) == set(DEFAULTS[command])


@pytest.mark.parametrize("command", sorted(DEFAULTS))
def test_help_shows_switches_without_a_type(command: str) -> None:
    rows = help_rows(command)
    assert "<bool>" not in " ".join(rows.values())
    flags = [p for p in COMMANDS[command].params if getattr(p, "is_flag", False)]
    for flag in flags:
        words = [w for w in rows[flag.opts[0]].split() if not w.startswith("-")]
        assert not words[0].startswith("<"), rows[flag.opts[0]]  # the help, not a type
    assert "Settings." not in " ".join(rows.values())
