"""Settings of one training run, built once at the entry point and passed down."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from churnml.errors import ConfigError
from churnml.settings import DEFAULT_HOME, Settings, tracking_uri_for

BLEND_METHODS = ("stack", "none")
REFIT_METHODS = ("crossfit", "holdout", "off")
REFIT_ROUNDS = ("scaled", "same")


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a training, scoring or promotion call needs to know.

    Time (interaction logs):
        horizon_days: a label is 1 when the customer leaves within this many days.
        horizons: the days of the time-to-churn model fitted beside the churn model
            (``training.horizons``; ``--horizons 7,30,90``), increasing, with
            ``horizon_days`` among them; empty: no such model.
        snapshot_every_days: days between two training snapshots.
        lookback_days: how far before ``as_of - horizon`` the first snapshot may lie.
        min_history_days: days of contacts a snapshot needs before it (feature warm-up).
        test_snapshots / validation_snapshots: snapshots per test and validation fold.
        backtest_folds: rolling folds, the first of which is the test fold of the model.
    Evaluation and gate:
        capacity: K, the retention team's daily capacity (precision and recall at K).
        gate_auc_tolerance: how much lower than the champion's test ROC-AUC a challenger may be.
        ece_bound: the largest expected calibration error the gate accepts.
    Fit:
        seed,
        tuning_budget_seconds: a ceiling in seconds for the parameter search on the
            validation fold of the fold that produces the model (``training.tuning``; the
            defaults are the first candidate); 0: no search, the defaults. It only stops a
            search that would run far longer than expected (a much slower machine or far
            more rows); the search's size is ``tuning_max_trials``.
        tuning_max_trials: how many candidates the search tries, the defaults included.
            A count, not seconds, so that the same data and seed give the same model on a
            quiet and on a loaded machine (0: as many as the ceiling allows, and the model
            then depends on the machine's speed).
        max_train_rows: above this many training rows of a fold, the fit keeps every
            churner row and a seeded sample of the other rows, weighted by the inverse of
            their sampling rate (``training.learners.training_sample``). Rows repeat each
            customer weekly: on simulated worlds of 3*10^4 and 10^5 customers (1-3 M rows
            a fold) 500 k rows gave the test and backtest ROC-AUC of 1-2 M rows (+-0.001)
            in about half the fit time.
        max_snapshot_customers: a snapshot with more active customers than this keeps a
            seeded sample of them plus every churner (``training.snapshots.build_snapshot_frame``):
            memory stays bounded for 10^6 customers and more; smaller worlds are not sampled.
        blend: "stack": the logistic regression on the same features joins the trees
            in log-odds, ``(1 - w) * trees + w * linear`` with w in {0, .25, .5, .75}
            chosen on validation log loss (``model.linear.Blend``); "none": the trees
            alone (the model before stacking, for comparisons).
        threads: LightGBM threads (0: all cores). One by default: on a shared 2-core
            machine OpenMP's waiting threads made a fit 5-10x slower than one thread.
    Refit (interaction logs, ``training.refit``):
        refit: "crossfit": the registered model is refit on every labelled snapshot (up
            to ``as_of - horizon``) with fold 1's parameters, rounds and blend weight,
            calibrated on cross-fitted out-of-fold scores of ``refit_blocks`` time
            blocks; "holdout": fitted on the days before the newest block, calibrated
            on that block; "off": fold 1's model is registered (no refit).
        refit_blocks: contiguous time blocks of the cross-fitted calibration.
        refit_rounds: "scaled": fold 1's rounds times (refit rows / fold-1 rows);
            "same": fold 1's rounds.
    Customer-table path:
        table_folds: stratified folds of the cross-validation (``training.table_cv``).
        table_repeats: how often the folds are cut with other seeds (0: once for 2,000
            rows and more, up to 3 times for smaller tables).
        table_split: no longer used (the table path cross-validates); kept so that code
            which sets it still runs.
    MLflow:
        home: CHURNML_HOME; the embedded tracking store lives here when tracking_uri is None.
        tracking_uri: MLFLOW_TRACKING_URI, or None for ``sqlite:///<home>/mlflow.db``.
        Both come from the entry point's ``churnml.settings.Settings`` (``from_settings``),
        which alone reads the environment.
    """

    horizon_days: int = 30
    horizons: tuple[int, ...] = ()
    snapshot_every_days: int = 7
    lookback_days: int = 365
    min_history_days: int = 90
    test_snapshots: int = 4
    validation_snapshots: int = 4
    backtest_folds: int = 3
    capacity: int = 100
    gate_auc_tolerance: float = 0.01
    ece_bound: float = 0.05
    seed: int = 42
    tuning_budget_seconds: float = 120.0
    tuning_max_trials: int = 4
    max_train_rows: int = 500_000
    max_snapshot_customers: int = 150_000
    blend: str = "stack"
    refit: str = "crossfit"
    refit_blocks: int = 3
    refit_rounds: str = "scaled"
    threads: int = 1
    table_split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    table_folds: int = 5
    table_repeats: int = 0
    model_name: str = "churn-risk"
    experiment_name: str = "churnml"
    home: Path = field(default=DEFAULT_HOME)
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        positive = {
            "horizon_days": self.horizon_days,
            "snapshot_every_days": self.snapshot_every_days,
            "lookback_days": self.lookback_days,
            "test_snapshots": self.test_snapshots,
            "validation_snapshots": self.validation_snapshots,
            "backtest_folds": self.backtest_folds,
            "capacity": self.capacity,
            "max_train_rows": self.max_train_rows,
            "max_snapshot_customers": self.max_snapshot_customers,
            "refit_blocks": self.refit_blocks,
        }
        for name, value in positive.items():
            if int(value) < 1:
                raise ConfigError(f"{name} = {value}: expected a whole number >= 1")
        if self.blend not in BLEND_METHODS:
            raise ConfigError(f"blend = {self.blend!r}: expected one of {', '.join(BLEND_METHODS)}")
        if self.refit not in REFIT_METHODS:
            raise ConfigError(f"refit = {self.refit!r}: expected one of {', '.join(REFIT_METHODS)}")
        if self.refit_rounds not in REFIT_ROUNDS:
            raise ConfigError(
                f"refit_rounds = {self.refit_rounds!r}: expected one of {', '.join(REFIT_ROUNDS)}"
            )
        if self.threads < 0:
            raise ConfigError(f"threads = {self.threads}: expected >= 0 (0: all cores)")
        if self.min_history_days < 0:
            raise ConfigError(f"min_history_days = {self.min_history_days}: expected >= 0")
        if not 0 <= self.gate_auc_tolerance < 1:
            raise ConfigError(
                f"gate_auc_tolerance = {self.gate_auc_tolerance}: expected 0 <= x < 1"
            )
        if not 0 < self.ece_bound < 1:
            raise ConfigError(f"ece_bound = {self.ece_bound}: expected 0 < x < 1")
        if self.tuning_max_trials < 0:
            raise ConfigError(
                f"tuning_max_trials = {self.tuning_max_trials}: expected >= 0 (0: no limit)"
            )
        if self.tuning_budget_seconds < 0:
            raise ConfigError(
                f"tuning_budget_seconds = {self.tuning_budget_seconds}: expected >= 0"
            )
        if self.table_folds < 2:
            raise ConfigError(f"table_folds = {self.table_folds}: expected a whole number >= 2")
        if self.table_repeats < 0:
            raise ConfigError(f"table_repeats = {self.table_repeats}: expected >= 0 (0: auto)")
        shares = tuple(float(s) for s in self.table_split)
        if len(shares) != 3 or min(shares) <= 0 or abs(sum(shares) - 1) > 1e-6:
            raise ConfigError(
                f"table_split = {self.table_split}: expected three positive shares summing to 1"
            )
        object.__setattr__(self, "table_split", shares)
        horizons = tuple(int(h) for h in self.horizons)
        if horizons and (
            horizons[0] < 1
            or any(b <= a for a, b in zip(horizons, horizons[1:], strict=False))
            or self.horizon_days not in horizons
        ):
            raise ConfigError(
                f"horizons = {','.join(map(str, horizons))}: expected increasing whole days "
                f">= 1 with horizon_days ({self.horizon_days}) among them"
            )
        object.__setattr__(self, "horizons", horizons)
        object.__setattr__(self, "home", Path(self.home))

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainingSettings:
        """The training settings of an entry point: home and tracking URI from ``settings``
        (built from the environment once), then ``overrides`` (flags; None is ignored)."""
        values: dict[str, Any] = {"home": settings.home, "tracking_uri": settings.tracking_uri}
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training setting {unknown[0]!r}; known: {sorted(known)}")
        return cls(**values)

    def with_changes(self, **changes: Any) -> TrainingSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["home"] = str(self.home)
        values["table_split"] = list(self.table_split)
        values["horizons"] = ",".join(map(str, self.horizons)) or "(none)"
        return values

    def resolved_tracking_uri(self) -> str:
        """The tracking URI in use: the configured one or the embedded SQLite store."""
        return tracking_uri_for(self.home, self.tracking_uri)

    @property
    def artifact_root(self) -> Path:
        """Where the embedded store keeps artifacts (unused with a tracking server)."""
        return (self.home / "mlartifacts").resolve()
