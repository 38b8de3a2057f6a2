"""The command line as a user meets it: exit codes, one-line errors, help."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from churnml.cli import main
from tests.churnml.test_validation import CUSTOMERS, INTERACTIONS, _replace_row, _write


def run_cli(*args: str) -> tuple[int, str, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "churnml.cli", *args], capture_output=True, text=True, timeout=120
    )
    return completed.returncode, completed.stdout, completed.stderr


def call(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_validate_clean_tables_exits_0(tmp_path, capsys):
    c, i = _write(tmp_path)
    code, out, _ = call(capsys, "validate", "--customers", str(c), "--interactions", str(i))
    assert code == 0
    assert "every rule of contract v1 holds" in out


def test_validate_with_problems_exits_1_and_lists_each_rule_once(tmp_path, capsys):
    interactions = _replace_row(
        INTERACTIONS, 1, "I1,C1,2025-02-01T10:00:00Z,fax,K1,billing,-3,200,A1,0,false,pending,"
    )
    c, i = _write(tmp_path, interactions=interactions)
    code, out, _ = call(capsys, "validate", "--customers", str(c), "--interactions", str(i))
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("interactions.csv")]
    assert len(lines) == 2
    assert "2 broken rules" in out


def test_validate_unreadable_file_exits_2_with_one_line(tmp_path, capsys):
    c, i = _write(tmp_path)
    c.write_bytes(b"")
    code, _, err = call(capsys, "validate", "--customers", str(c), "--interactions", str(i))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert err.startswith("churnml: error:") and "customers.csv" in err


def test_missing_file_is_exit_2_without_traceback():
    code, _, err = run_cli(
        "validate", "--customers", "/nonexistent/c.csv", "--interactions", "x.csv"
    )
    assert code == 2
    assert "Traceback" not in err
    assert "does not exist" in err


def test_risk_list_without_a_champion_is_one_line_saying_what_to_do(capsys):
    code, _, err = call(capsys, "risk-list", "--as-of", "2026-06-01")
    assert code != 0 and err.count("\n") == 1
    assert "churnml train" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "command", ["validate", "features", "generate", "train", "score", "risk-list", "serve", "run"]
)
def test_every_command_has_help(capsys, command):
    code, out, _ = call(capsys, command, "--help")
    assert code == 0
    assert "Usage" in out


def test_help_shows_defaults_from_the_code(capsys):
    code, out, _ = call(capsys, "generate", "--help")
    assert code == 0
    assert "default: 540" in out and "default: 42" in out


def test_bad_date_flag_names_the_flag(tmp_path, capsys):
    c, i = _write(tmp_path)
    code, _, err = call(
        capsys,
        "features",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "31/12/2025",
        "--out",
        str(tmp_path / "f.csv"),
    )
    assert code == 2
    assert "--as-of '31/12/2025': expected a date as YYYY-MM-DD" in err


def test_bad_output_extension_stops_before_any_work(tmp_path, capsys):
    c, i = _write(tmp_path)
    code, _, err = call(
        capsys,
        "features",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "2025-02-10",
        "--out",
        str(tmp_path / "f.xlsx"),
    )
    assert code == 2
    assert "use a .csv or .parquet file name" in err


def test_duplicate_customer_ids_stop_features_with_one_line(tmp_path, capsys):
    customers = _replace_row(CUSTOMERS, 2, "C1,2025-01-05,,business,pro,99,south")
    c, i = _write(tmp_path, customers=customers)
    out_file = tmp_path / "f.csv"
    code, _, err = call(
        capsys,
        "features",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "2025-02-10",
        "--out",
        str(out_file),
    )
    assert code == 1
    assert "repeated customer_id" in err
    assert not out_file.exists()


def test_features_command_writes_one_row_per_active_customer(tmp_path, capsys):
    c, i = _write(tmp_path)
    out_file = tmp_path / "features.parquet"
    code, _, _ = call(
        capsys,
        "features",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "2025-02-28",
        "--out",
        str(out_file),
    )
    assert code == 0
    frame = pd.read_parquet(out_file)
    # C2 left on 2025-03-01, so is still active on 2025-02-28; all three are.
    assert frame["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert frame.loc[frame["customer_id"] == "C1", "contacts_30d"].item() == 2


def test_features_command_reports_rows_set_aside(tmp_path, capsys):
    interactions = _replace_row(
        INTERACTIONS, 1, "I1,C1,2025-02-01T10:00:00Z,fax,K1,billing,3,200,A1,0,false,pending,"
    )
    c, i = _write(tmp_path, interactions=interactions)
    out_file = tmp_path / "features.csv"
    code, _, err = call(
        capsys,
        "features",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "2025-02-28",
        "--out",
        str(out_file),
    )
    assert code == 0
    assert "set aside 1 interactions row that breaks the contract" in err
    frame = pd.read_csv(out_file)
    assert frame.loc[frame["customer_id"] == "C1", "contacts_30d"].item() == 1


def test_features_before_anyone_signed_up_is_a_one_line_error(tmp_path, capsys):
    c, i = _write(tmp_path)
    code, _, err = call(
        capsys,
        "features",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "2020-01-01",
        "--out",
        str(tmp_path / "f.csv"),
    )
    assert code == 1
    assert "no customer is active on 2020-01-01" in err


def test_run_builds_features_trains_and_leaves_a_champion(capsys, isolated_home):
    # 5 weeks back: the oldest list (2026-05-20) is past its 30-day horizon on 2026-06-24.
    code, out, _ = call(capsys, "run", "--no-serve", "--quiet", "--history-weeks", "5")
    assert code == 0
    written = list((isolated_home / "features").glob("features-*.parquet"))
    assert len(written) == 1
    assert len(pd.read_parquet(written[0])) > 1000
    assert "customers active on" in out
    assert "gate:" in out
    import training
    from churnml.settings import Settings

    settings = training.TrainingSettings.from_settings(Settings.from_env())
    history = training.champion_history(settings)
    assert history and history[-1]["version"] == "1"
    # MLflow's process-wide tracking URI is restored: nothing points at ./mlflow.db.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    # The day's risk list is stored before the service would start.
    from serving.store import RiskListStore, default_url

    store = RiskListStore(default_url(isolated_home), create=False)
    weekly = ["2026-06-24", "2026-06-17", "2026-06-10", "2026-06-03", "2026-05-27", "2026-05-20"]
    assert store.dates() == weekly
    assert "risk list for 2026-06-24" in out and "past lists: 5 weekly lists from" in out
    # Written oldest first: each list compares with the one a week before.
    headers = {h["list_date"]: h for h in store.headers()}
    assert [headers[day]["previous_date"] for day in weekly[:-1]] == weekly[1:]
    assert headers["2026-05-20"]["previous_date"] is None
    # The sample's retention contacts are in the store, as `retention-contacts --import`.
    from churnml.settings import SAMPLE_DIR

    team = pd.read_csv(SAMPLE_DIR / "retention_contacts.csv")
    assert len(store.contacts()) == len(team)
    assert f"retention_contacts.csv: {len(team)} rows: {len(team)} new" in out
    # The report: one line a list; the oldest is done, with its realised numbers.
    report = out[out.index("how our lists did, as of 2026-06-24") :].splitlines()
    lines = {day: next(line for line in report if line.startswith(day)) for day in weekly}
    assert all("pending until" in lines[day] for day in weekly[:-1])
    assert "churn treated" in lines["2026-05-20"] and "control picks, 95% CI" in lines["2026-05-20"]
    # ... and, the done list only, its calibration: predicted vs realised churn per band.
    calibration = [line for line in report if line.startswith("  per band, predicted vs")]
    assert len(calibration) == 1 and report[report.index(lines["2026-05-20"]) + 1] in calibration
    assert all(f"{band} " in calibration[0] for band in ("high", "medium", "low"))

    # churnml risk-list on the same home: flags, export, and mistakes caught before work.
    out_file = isolated_home / "list.csv"
    code, out, err = call(
        capsys,
        "risk-list",
        "--as-of",
        "2026-06-20",
        "--capacity",
        "5",
        "--rank-by",
        "probability",
        "--out",
        str(out_file),
        "--quiet",
    )
    assert code == 0, err
    exported = pd.read_csv(out_file)
    # Five to call: the sample team's recent contacts stay on the list, marked, beside them.
    callable_ = exported["on_list"] & ~exported["suppressed"]
    assert callable_.sum() == 5 and exported["rank"].tolist()[:3] == [1, 2, 3]
    assert exported.loc[callable_, "group"].isin(["treated", "control"]).all()
    assert exported["churn_probability"].is_monotonic_decreasing
    assert {"reason_1", "revenue_at_risk", "change", "suppressed"} <= set(exported.columns)
    assert store.dates()[:2] == ["2026-06-24", "2026-06-20"]
    code, _, err = call(capsys, "risk-list", "--rank-by", "luck")
    assert code == 2 and "luck" in err
    code, _, err = call(capsys, "risk-list", "--control-share", "0.7")
    assert code == 2 and "--control-share" in err
    code, _, err = call(capsys, "risk-list", "--out", str(isolated_home / "list.txt"))
    assert code == 2 and ".csv or .parquet" in err
    suppress = isolated_home / "called.csv"
    suppress.write_text("customer_id,called\nC1,2026-06-01\n")
    # --suppress (the older name of --retention-contacts) is checked as validate checks the
    # retention_contacts table: a missing required column stops (exit 1), in one line.
    # (read with the tables, after the model is loaded: --quiet leaves the error alone)
    code, _, err = call(capsys, "risk-list", "--suppress", str(suppress), "--quiet")
    assert code == 1 and "called.csv: lacks the required column contacted_at" in err
    assert err.count("\n") == 1
    assert store.dates()[:2] == ["2026-06-24", "2026-06-20"]


def test_validate_reports_retention_contact_rules_like_every_other(tmp_path, capsys):
    c, i = _write(tmp_path)
    contacts = tmp_path / "retention_contacts.csv"
    contacts.write_text(
        "customer_id,contacted_at,group,outcome\n"
        "C1,2025-02-10,control,\n"
        "C1,2025-02-20,treated,reached\n"
        "C9,2025-02-10,treated,maybe\n"
    )
    code, out, _ = call(
        capsys,
        "validate",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--retention-contacts",
        str(contacts),
    )
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("retention_contacts.csv")]
    assert len(lines) == 3
    assert any("row 1, customer C1" in line and "within 30 days" in line for line in lines)
    assert any("row 3, customer C9" in line and "not in customers.csv" in line for line in lines)
    assert any("unknown outcome" in line and "value 'maybe'" in line for line in lines)
    assert all(line.endswith("[rows are set aside]") for line in lines)
    assert "retention_contacts.csv: 3 rows" in out and "Traceback" not in out


def test_validate_an_unreadable_retention_table_is_exit_2_with_one_line(tmp_path, capsys):
    c, i = _write(tmp_path)
    contacts = tmp_path / "contacts.txt"
    contacts.write_text("customer_id,contacted_at\n")
    code, _, err = call(
        capsys,
        "validate",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--retention-contacts",
        str(contacts),
    )
    assert code == 2 and err.count("\n") == 1 and "contacts.txt" in err


def test_generate_help_shows_the_retention_team_flags(capsys):
    code, out, _ = call(capsys, "generate", "--help")
    assert code == 0
    for flag in ("--retention-start", "--no-retention", "--control-share", "--oracle-streams"):
        assert flag in out


def test_generate_without_a_retention_team_writes_no_contacts(tmp_path, capsys):
    world = tmp_path / "world"
    code, out, _ = call(
        capsys,
        "generate",
        "--customers",
        "100",
        "--days",
        "60",
        "--out",
        str(world),
        "--no-retention",
        "--quiet",
    )
    assert code == 0 and "retention team" not in out
    assert not (world / "retention_contacts.csv").exists()


def test_generate_with_a_retention_start_outside_the_days_is_one_line(tmp_path, capsys):
    code, _, err = call(
        capsys,
        "generate",
        "--customers",
        "100",
        "--days",
        "60",
        "--out",
        str(tmp_path / "w"),
        "--retention-start",
        "2030-01-01",
        "--quiet",
    )
    assert code == 2 and err.count("\n") == 1 and "--retention-start" in err


def test_generate_writes_a_world_that_validates(tmp_path, capsys):
    world = tmp_path / "world"
    code, out, _ = call(
        capsys,
        "generate",
        "--customers",
        "200",
        "--days",
        "120",
        "--seed",
        "7",
        "--out",
        str(world),
        "--retention-start",
        "2025-02-01",
        "--quiet",
    )
    assert code == 0
    assert "oracle ROC-AUC" in out and "retention team from 2025-02-01" in out
    code, out, _ = call(
        capsys,
        "validate",
        "--customers",
        str(world / "customers.csv"),
        "--interactions",
        str(world / "interactions.csv"),
        "--retention-contacts",
        str(world / "retention_contacts.csv"),
    )
    assert code == 0, out


def test_train_and_score_a_customer_table_by_command(tmp_path, capsys):
    from tests.conftest import REAL_TABLES

    table = REAL_TABLES / "telecom_mlc_churn.csv"
    code, out, _ = call(capsys, "train", "--table", str(table), "--label", "churn", "--quiet")
    assert code == 0
    assert "registered as version 1" in out and "gate:" in out
    code, _, _ = call(capsys, "promote", "1", "--reason", "test")
    assert code == 0
    out_file = tmp_path / "scores.csv"
    code, _, _ = call(capsys, "score", "--table", str(table), "--out", str(out_file), "--quiet")
    assert code == 0
    scores = pd.read_csv(out_file)
    assert len(scores) == 5000
    assert {"churn_probability", "risk_band", "reasons"} <= set(scores.columns)
    assert scores["churn_probability"].between(0, 1).all()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--table", "x.csv"], "--table needs --label"),
        (["train", "--label", "churn"], "--label and --id go with --table"),
        (["score", "--out", "s.csv"], "score needs --as-of"),
        (["train", "--blend", "mean"], "blend = 'mean': expected one of stack, none"),
    ],
)
def test_flag_mistakes_are_one_line_errors(capsys, args, words):
    code, _, err = call(capsys, *args)
    assert code == 2
    assert words in err
    assert "Traceback" not in err


def test_score_without_a_champion_says_what_to_do(tmp_path, capsys):
    c, i = _write(tmp_path)
    code, _, err = call(
        capsys,
        "score",
        "--customers",
        str(c),
        "--interactions",
        str(i),
        "--as-of",
        "2025-02-28",
        "--out",
        str(tmp_path / "s.csv"),
    )
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("churnml: error:") and "churnml train" in last
    assert "Traceback" not in err
