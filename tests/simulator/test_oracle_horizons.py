"""The oracle's true probabilities at several horizons, from one forward run."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churnml.cli import main
from churnml.errors import ConfigError
from churnml.simulator import SimulationParams, WorldSummary, generate_world

AS_OF = date(2025, 3, 1)  # day 59 of 160: 90 days of labels fit
PARAMS = SimulationParams(oracle_replicates=12)


def world(
    folder: Path, horizon: int = 30, extra: tuple[int, ...] = (), **kwargs: object
) -> tuple[WorldSummary, pd.DataFrame]:
    summary = generate_world(
        700,
        160,
        3,
        folder,
        oracle_as_of=[AS_OF],
        horizon_days=horizon,
        params=replace(PARAMS, oracle_horizons=extra),
        **kwargs,
    )
    return summary, pd.read_csv(folder / "oracle.csv")


@pytest.fixture(scope="module")
def curve(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldSummary, pd.DataFrame]:
    return world(tmp_path_factory.mktemp("curve"), extra=(7, 90))


def test_every_horizon_gets_a_probability_and_a_label_column(curve) -> None:
    summary, oracle = curve
    assert summary.oracle_horizons == (7, 30, 90)
    for horizon in (7, 30, 90):
        assert f"true_probability_{horizon}d" in oracle and f"label_{horizon}d" in oracle
    assert oracle["true_probability_90d"].mean() > oracle["true_probability_7d"].mean()


def test_probabilities_never_decrease_with_the_horizon_for_any_customer(curve) -> None:
    _, oracle = curve
    p7, p30, p90 = (oracle[f"true_probability_{h}d"] for h in (7, 30, 90))
    assert ((p7 <= p30) & (p30 <= p90)).all()
    l7, l30, l90 = (oracle[f"label_{h}d"] for h in (7, 30, 90))
    assert ((l7 <= l30) & (l30 <= l90)).all() and l90.sum() > l7.sum()


def test_the_training_horizon_keeps_its_columns_and_the_single_horizon_values(
    curve, tmp_path: Path
) -> None:
    """Common random numbers: reading more horizons off the run changes none of the 30-day
    numbers (probability, call effect, label), to the last digit."""
    _, oracle = curve
    _, single = world(tmp_path / "single")
    assert "true_probability_30d" not in single
    for column in ("customer_id", "as_of", "true_probability", "true_call_effect", "label"):
        assert oracle[column].equals(single[column]), column
    assert oracle["true_probability_30d"].equals(oracle["true_probability"])
    assert oracle["label_30d"].equals(oracle["label"])


def test_every_horizon_equals_its_own_single_horizon_oracle(tmp_path: Path) -> None:
    """Without a retention team the world does not depend on the horizon, so the curve's
    7- and 90-day values are those of an oracle run for that horizon alone."""
    _, oracle = world(tmp_path / "curve", extra=(7, 90), retention=False)
    for horizon in (7, 90):
        _, single = world(tmp_path / f"h{horizon}", horizon=horizon, retention=False)
        assert oracle[f"true_probability_{horizon}d"].equals(single["true_probability"])
        assert oracle[f"label_{horizon}d"].equals(single["label"])


def test_the_curve_costs_one_run_to_the_longest_horizon(tmp_path: Path) -> None:
    """The no-call arm simulates the days of one 90-day run (not 7 + 30 + 90 days); the
    call arm stays on the training horizon."""
    curve_summary, _ = world(tmp_path / "curve", extra=(7, 90), retention=False)
    runs = {
        horizon: world(tmp_path / f"h{horizon}", horizon=horizon, retention=False)[0]
        for horizon in (7, 30, 90)
    }
    simulated = curve_summary.oracle_days_simulated
    assert simulated["without_call"] == runs[90].oracle_days_simulated["without_call"]
    assert simulated["with_call"] == runs[30].oracle_days_simulated["with_call"]
    separate = sum(run.oracle_days_simulated["without_call"] for run in runs.values())
    assert simulated["without_call"] < separate


def test_an_oracle_date_too_late_for_the_longest_horizon_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="90-day labels") as error:
        generate_world(
            300,
            160,
            3,
            tmp_path,
            oracle_as_of=[date(2025, 5, 1)],  # 30 days fit, 90 do not
            params=replace(PARAMS, oracle_horizons=(90,)),
        )
    assert "\n" not in str(error.value)


def test_the_default_oracle_date_leaves_room_for_the_longest_horizon(tmp_path: Path) -> None:
    summary = generate_world(200, 120, 3, tmp_path, params=replace(PARAMS, oracle_horizons=(7, 60)))
    assert summary.oracle_dates == [summary.end_date - pd.Timedelta(days=60)]


@pytest.mark.parametrize("horizons", [(0,), (7, -1), (7.5,), (True,)])
def test_oracle_horizons_that_are_not_whole_days_are_refused(horizons) -> None:
    with pytest.raises(ConfigError, match="oracle_horizons"):
        SimulationParams(oracle_horizons=horizons)


def test_generate_writes_the_horizon_columns(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "world"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "generate",
                "--customers",
                "150",
                "--days",
                "130",
                "--out",
                str(folder),
                "--oracle-horizons",
                "90,7",
                "--oracle-replicates",
                "5",
                "--quiet",
            ]
        )
    assert exited.value.code == 0
    assert "within 7, 30, 90 days" in capsys.readouterr().out
    oracle = pd.read_csv(folder / "oracle.csv")
    assert {"true_probability_7d", "true_probability_30d", "true_probability_90d"} <= set(oracle)
    assert oracle["as_of"].unique().tolist() == ["2025-02-09"]  # last day 2025-05-10 - 90


@pytest.mark.parametrize("value", ["7,x", "7,,30", "0", "-7"])
def test_generate_with_bad_oracle_horizons_is_one_line(tmp_path: Path, capsys, value) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--out", str(tmp_path / "w"), "--oracle-horizons", value, "--quiet"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "--oracle-horizons" in err
    assert not (tmp_path / "w").exists()
