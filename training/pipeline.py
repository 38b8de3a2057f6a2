"""Training end to end: data -> folds -> fit, calibrate, compare -> MLflow run -> registry."""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd

import churnml
from churnml.contract import CONTRACT_VERSION, CUSTOMER_ID
from churnml.errors import DataError, ModelError
from churnml.io import content_hash, fingerprint
from features import drift
from features.build import INTERACTION_COLUMNS_USED
from model.artifact import KIND_INTERACTIONS, KIND_TABLE, ChurnModel, table_features
from model.linear import Blend
from model.loading import load_model
from model.predictor import Predictor
from training import models, plots
from training.metrics import evaluate, evaluate_by_segment
from training.model import ChurnRiskPyfunc
from training.registry import (
    CHALLENGER,
    CHAMPION,
    GateDecision,
    GateEvidence,
    alias_version,
    decision_record,
    experiment_id,
    promotion_gate,
    set_champion,
    tracking,
)
from training.settings import TrainingSettings
from training.snapshots import (
    EVALUATED,
    LABEL,
    RULE_CONTACTS,
    SAMPLE_RATE,
    SEGMENT_EVAL,
    SNAPSHOT_DATE,
    FeatureBuilder,
    Fold,
    SnapshotSampling,
    build_snapshot_frame,
    check_churners,
    default_as_of,
    default_builder,
    evaluated_rows,
    fold_rows,
    snapshot_dates,
    time_folds,
    training_weights,
)
from training.table import infer_schema, map_labels, stratified_split

log = logging.getLogger(__name__)

NOT_FEATURES = {
    CUSTOMER_ID,
    LABEL,
    RULE_CONTACTS,
    SEGMENT_EVAL,
    SNAPSHOT_DATE,
    SAMPLE_RATE,
    EVALUATED,
}
PLOT_SAMPLE_ROWS = 2000
PROFILE_CHUNK_COLUMNS = 8  # feature columns copied at a time for the reference statistics
PIP_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm", "mlflow")


@dataclass(frozen=True)
class FoldOutcome:
    """One fold's fitted pieces and its test metrics for the model and the baselines."""

    name: str
    metrics: dict[str, dict[str, float]]  # "model" / "logistic" / "rule" -> metric -> value
    segments: dict[str, dict[str, float]]
    best_iteration: int
    calibration: str
    calibration_scores: dict[str, float]
    describe: str = ""
    # How the logistic regression joins the trees: the method, the linear weight and,
    # when stacked, the validation log loss of each candidate weight.
    blend: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """What one ``churnml train`` did; ``summary()`` is what the command prints."""

    run_id: str
    model_version: str
    model_uri: str
    kind: str
    test: dict[str, dict[str, float]]
    folds: tuple[FoldOutcome, ...]
    gate: GateDecision
    champion_version: str | None
    as_of: str | None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        m = self.test["model"]
        lines = [
            f"run {self.run_id}: {self.kind} model registered as version {self.model_version} "
            f"(alias {CHALLENGER})" + (f", as of {self.as_of}" if self.as_of else ""),
            f"test: ROC-AUC {m['roc_auc']:.4f}, PR-AUC {m['pr_auc']:.4f}, Brier {m['brier']:.4f}, "
            f"ECE {m['ece']:.4f}, top-decile lift {m['lift_top_decile']:.2f}",
        ]
        for baseline in ("logistic", "rule"):
            if baseline in self.test:
                b = self.test[baseline]
                lines.append(
                    f"baseline {baseline}: ROC-AUC {b['roc_auc']:.4f}, PR-AUC {b['pr_auc']:.4f}"
                )
        for outcome in self.folds[1:]:
            lines.append(
                f"backtest {outcome.name}: ROC-AUC {outcome.metrics['model']['roc_auc']:.4f}"
                + "".join(
                    f", {b} {outcome.metrics[b]['roc_auc']:.4f}"
                    for b in ("logistic", "rule")
                    if b in outcome.metrics
                )
            )
        lines.append(self.gate.text())
        lines.append(
            f"champion: v{self.champion_version}" if self.champion_version else "champion: none"
        )
        return "\n".join(lines)


@dataclass
class _Fitted:
    booster: lgb.Booster
    calibrator: models.Calibrator
    blend: Blend | None
    params: dict[str, Any]
    trials: list[dict[str, Any]]
    test_probability: np.ndarray
    test_scores: dict[str, np.ndarray]


# -- the shared fit-and-evaluate core ----------------------------------------------------
@dataclass(frozen=True)
class BoosterFit:
    """How a fold's booster is fitted when not on ``parts["train"]`` in this process: the
    Dask engine fits ``lightgbm.dask`` on every training row, on the cluster.

    ``fit(valid_x, valid_y, params)`` returns the booster (early stopping on the validation
    rows, as ``models.fit_booster``); ``rows`` and ``positives`` are what it trains on (the
    LightGBM parameters scale with them); ``params`` changes ``models.lightgbm_params`` for
    this fit (a value of None removes the parameter)."""

    fit: Callable[[pd.DataFrame, np.ndarray, dict[str, Any]], lgb.Booster]
    rows: int
    positives: int
    params: dict[str, Any] = field(default_factory=dict)


def _fit_and_evaluate(
    name: str,
    parts: dict[str, pd.DataFrame],
    labels: dict[str, np.ndarray],
    *,
    categorical: list[str],
    validation_groups: np.ndarray,
    rule_test: np.ndarray | None,
    segments_test: np.ndarray | None,
    dates_test: np.ndarray | None,
    settings: TrainingSettings,
    tune: bool,
    train_weight: np.ndarray | None = None,
    capacity: int | None = None,
    booster_fit: BoosterFit | None = None,
) -> tuple[FoldOutcome, _Fitted]:
    """Fit, calibrate and evaluate one split. ``parts["train"]`` is already the training
    sample (``models.training_sample``) and ``train_weight`` its weights (None: all 1).
    ``capacity``: K of precision and recall at K (default ``settings.capacity``).
    ``booster_fit``: the booster is fitted there, and ``parts["train"]`` (a sample of the
    training rows) serves the logistic baseline only."""
    capacity = capacity or settings.capacity
    train_x, train_y = parts["train"], labels["train"]
    valid_x, valid_y = parts["validation"], labels["validation"]
    logistic = models.fit_logistic_baseline(
        train_x, train_y, categorical, settings.seed, train_weight
    )
    logistic_probability = models.predict_logistic(logistic, parts["test"], categorical)
    if booster_fit is None:
        rows, positives = len(train_x), int(train_y.sum())
    else:
        rows, positives = booster_fit.rows, booster_fit.positives
    params = models.lightgbm_params(rows, positives, settings.seed, settings.threads)
    if booster_fit is not None:
        params = {k: v for k, v in {**params, **booster_fit.params}.items() if v is not None}
    fit = booster_fit.fit if booster_fit is not None else None
    if tune and settings.tuning_budget_seconds > 0:
        booster, params, trials = models.tune_booster(
            train_x,
            train_y,
            valid_x,
            valid_y,
            params,
            settings.tuning_budget_seconds,
            settings.seed,
            train_weight,
            fit=fit,
        )
    elif fit is not None:
        booster = fit(parts["validation"], labels["validation"], params)
        trials = []
    else:
        booster = models.fit_booster(train_x, train_y, valid_x, valid_y, params, train_weight)
        trials = []
    iteration = booster.best_iteration or None
    raw = {
        part: booster.predict(parts[part], num_iteration=iteration, raw_score=True)
        for part in ("validation", "test")
    }
    blend, blend_record = None, {"method": settings.blend, "linear_weight": 0.0}
    if settings.blend == "stack":
        # The weight is chosen on validation, then the calibrator is fitted there too.
        linear = models.linear_term(
            logistic, train_x, {c: list(train_x[c].cat.categories.astype(str)) for c in categorical}
        )
        linear_raw = {part: linear.raw_score(parts[part]) for part in raw}
        w, losses = models.choose_blend_weight(raw["validation"], linear_raw["validation"], valid_y)
        blend_record.update(linear_weight=w, validation_log_loss=losses)
        if w > 0:
            blend = Blend(w, linear)
            raw = {part: (1 - w) * raw[part] + w * linear_raw[part] for part in raw}
    raw_probability = {part: 1.0 / (1.0 + np.exp(-value)) for part, value in raw.items()}
    calibrator, calibration_scores = models.choose_calibrator(
        raw_probability["validation"], valid_y, validation_groups, settings.seed
    )
    probability = calibrator.predict(raw_probability["test"])

    test_y = labels["test"]
    metrics = {
        "model": evaluate(test_y, probability, capacity=capacity, dates=dates_test),
        "logistic": evaluate(test_y, logistic_probability, capacity=capacity, dates=dates_test),
    }
    scores = {"model": probability, "logistic": logistic_probability}
    if rule_test is not None:
        metrics["rule"] = evaluate(
            test_y, rule_test, capacity=capacity, dates=dates_test, probabilities=False
        )
        scores["rule"] = rule_test
    segments = {}
    if segments_test is not None:
        segments = evaluate_by_segment(
            test_y, probability, segments_test, capacity=capacity, dates=dates_test
        )
    outcome = FoldOutcome(
        name=name,
        metrics=metrics,
        segments=segments,
        best_iteration=int(booster.best_iteration or booster.current_iteration()),
        calibration=calibrator.method,
        calibration_scores=calibration_scores,
        blend=blend_record,
    )
    return outcome, _Fitted(booster, calibrator, blend, params, trials, probability, scores)


# -- the interaction-log path ------------------------------------------------------------
def _frozen_feature_settings(feature_settings: Any, frame: pd.DataFrame) -> dict[str, Any] | None:
    """The feature settings with the training columns and categories pinned, as a dict."""
    if feature_settings is None:
        try:
            from features import FeatureSettings
        except ImportError:
            return None
        feature_settings = FeatureSettings()
    if hasattr(feature_settings, "freeze"):
        feature_settings = feature_settings.freeze(frame)
    return feature_settings.to_dict() if hasattr(feature_settings, "to_dict") else None


def _feature_families(columns: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Column -> family and family -> words, from features/ (empty when it has none)."""
    try:
        from features.columns import FAMILY_DESCRIPTIONS, feature_family
    except ImportError:
        return {}, {}
    families = {}
    for column in columns:
        try:
            families[column] = feature_family(column)
        except KeyError:
            continue
    return families, dict(FAMILY_DESCRIPTIONS)


@dataclass
class FoldData:
    """One fold's rows on the client, as ``_fit_and_evaluate`` and the run's parameters take
    them. ``parts``: the feature columns of "train" (the fit's rows; with ``booster_fit``
    a sample for the logistic baseline), "validation" and "test"; ``test``: the test rows'
    rule count, snapshot date and segment; ``train_rows``: the fold's train_rows parameter."""

    parts: dict[str, pd.DataFrame]
    labels: dict[str, np.ndarray]
    train_weight: np.ndarray | None
    validation_groups: np.ndarray
    test: pd.DataFrame
    capacity: int
    train_rows: str
    booster_fit: BoosterFit | None = None


class SnapshotSource(Protocol):
    """Where the snapshot frame lives and how a fold's parts come out of it: one pandas
    frame in this process (``LocalSnapshots``), or partitions on a Dask cluster
    (``training.dask_train``). ``train_on_snapshots`` does the rest, the same for both."""

    feature_names: list[str]
    categorical: list[str]
    snapshot_rows: int
    sampling: SnapshotSampling

    def check(self, fold: Fold) -> None:
        """``check_churners`` of the fold."""

    def fold(self, fold: Fold) -> FoldData:
        """The fold's rows (fold 1 first)."""

    def categories(self) -> dict[str, list[str]]:
        """The categories of each categorical feature, as text."""

    def feature_frame(self) -> pd.DataFrame:
        """A frame with the feature columns and dtypes (for ``FeatureSettings.freeze``)."""

    def main_profile(self) -> tuple[float, dict[str, Any], dict[str, Any]]:
        """Fold 1's training churn rate (weighted) and the reference statistics and drift
        distribution of its uniform training rows."""

    def main_test(self) -> pd.DataFrame:
        """Fold 1's test rows, every column."""


class LocalSnapshots:
    """The snapshot frame in this process: the local engine."""

    def __init__(
        self, snapshots: pd.DataFrame, sampling: SnapshotSampling, settings: TrainingSettings
    ) -> None:
        self.snapshots = snapshots
        self.sampling = sampling
        self.settings = settings
        self.snapshot_rows = len(snapshots)
        self.feature_names = [c for c in snapshots.columns if c not in NOT_FEATURES]
        self.categorical = [
            c for c in self.feature_names if isinstance(snapshots[c].dtype, pd.CategoricalDtype)
        ]
        self.features_only = snapshots[self.feature_names]  # a view: rows are copied per part
        self.test_columns = [
            c for c in (RULE_CONTACTS, SNAPSHOT_DATE, SEGMENT_EVAL) if c in snapshots
        ]
        self.all_labels = snapshots[LABEL].to_numpy(dtype="int8")
        self._main: tuple[np.ndarray, np.ndarray] | None = None  # fold 1's train and test rows

    def check(self, fold: Fold) -> None:
        check_churners(self.snapshots, fold, self.settings)

    def fold(self, fold: Fold) -> FoldData:
        snapshots, settings = self.snapshots, self.settings
        available = np.flatnonzero(fold_rows(snapshots, fold.train))
        keep, weight = models.training_sample(
            self.all_labels[available],
            training_weights(snapshots, available),
            settings.max_train_rows,
            settings.seed,
        )
        rows = {
            "train": available if keep is None else available[keep],
            "validation": np.flatnonzero(evaluated_rows(snapshots, fold.validation)),
            "test": np.flatnonzero(evaluated_rows(snapshots, fold.test)),
        }
        if fold.number == 1:
            self._main = (available, rows["test"])
        return FoldData(
            parts={part: self.features_only.take(part_rows) for part, part_rows in rows.items()},
            labels={part: self.all_labels[part_rows] for part, part_rows in rows.items()},
            train_weight=weight,
            validation_groups=snapshots[CUSTOMER_ID].take(rows["validation"]).to_numpy(),
            test=snapshots[self.test_columns].take(rows["test"]),
            capacity=_capacity_on_sample(settings.capacity, snapshots, rows["test"]),
            train_rows=f"{len(rows['train'])} of {len(available)}"
            + (", weighted" if weight is not None else ""),
        )

    def categories(self) -> dict[str, list[str]]:
        return {c: list(self.snapshots[c].cat.categories.astype(str)) for c in self.categorical}

    def feature_frame(self) -> pd.DataFrame:
        return self.features_only

    def main_profile(self) -> tuple[float, dict[str, Any], dict[str, Any]]:
        assert self._main is not None  # fold 1 comes first
        main_train = self._main[0]
        main_weight = training_weights(self.snapshots, main_train)
        train_labels = self.all_labels[main_train]
        base_rate = (
            float(train_labels.mean())
            if main_weight is None
            else float(np.sum(main_weight * train_labels) / np.sum(main_weight))
        )
        # The usual values and bins of the features, on the uniform part of fold 1's
        # training rows (every row when nothing is sampled), a few columns at a time.
        uniform_train = main_train[self.snapshots[EVALUATED].to_numpy()[main_train]]
        reference, distribution = _training_profile(self.features_only, uniform_train)
        return base_rate, reference, distribution

    def main_test(self) -> pd.DataFrame:
        assert self._main is not None
        return self.snapshots.take(self._main[1])


def snapshot_plan(
    first_contact: pd.Timestamp, as_of: pd.Timestamp, settings: TrainingSettings
) -> tuple[list[Fold], list[pd.Timestamp]]:
    """The backtest folds and every snapshot day they need, oldest first."""
    dates = snapshot_dates(first_contact, as_of, settings)
    folds = time_folds(dates, settings, as_of=as_of)
    needed = sorted({d for f in folds for d in (*f.train, *f.validation, *f.test)})
    return folds, needed


def train_from_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    settings: TrainingSettings,
    *,
    as_of: pd.Timestamp | str | None = None,
    feature_settings: Any = None,
    builder: FeatureBuilder | None = None,
    report: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on weekly snapshots of validated contract tables, log one MLflow run, register.

    ``as_of`` defaults to the day of the latest contact; snapshots end ``horizon_days``
    before it. ``builder`` replaces ``features.build_features`` (benchmarks, tests).
    """
    say = report or (lambda message: None)
    clock = {"start": time.perf_counter()}
    as_of = default_as_of(interactions) if as_of is None else pd.Timestamp(as_of).normalize()
    if interactions.empty:
        raise DataError("interactions: the table has no contacts; train needs service contacts")
    first_contact = pd.Timestamp(interactions["started_at"].min())
    folds, needed = snapshot_plan(first_contact, as_of, settings)
    say(
        f"building features for {len(needed)} snapshots "
        f"({needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d})"
    )
    build = builder or default_builder(feature_settings)
    snapshots, sampling = build_snapshot_frame(customers, interactions, needed, build, settings)
    clock["features"] = time.perf_counter()
    source = LocalSnapshots(snapshots, sampling, settings)
    data = {
        "engine": "local",
        "customers_rows": len(customers),
        "interactions_rows": len(interactions),
        "customers_sha256": fingerprint(customers),
        "interactions_sha256": fingerprint(interactions),
        # The same on every engine for the same rows (the SHA-256 above needs one process).
        "customers_content_hash": content_hash(customers).text,
        "interactions_content_hash": content_hash(interactions, INTERACTION_COLUMNS_USED).text,
    }
    return train_on_snapshots(
        source,
        folds=folds,
        needed=needed,
        as_of=as_of,
        settings=settings,
        feature_settings=feature_settings,
        champion_features=lambda champion, day: champion.features_from_tables(
            customers, interactions, day
        ),
        data_params=data,
        train_sampling=(
            f"above max_train_rows ({settings.max_train_rows}) rows: every churner and a seeded "
            f"sample of the others (seed {settings.seed}), weighted"
        ),
        say=say,
        clock=clock,
    )


def train_on_snapshots(
    source: SnapshotSource,
    *,
    folds: list[Fold],
    needed: list[pd.Timestamp],
    as_of: pd.Timestamp,
    settings: TrainingSettings,
    feature_settings: Any,
    champion_features: Callable[[ChurnModel, pd.Timestamp], pd.DataFrame],
    data_params: dict[str, Any],
    train_sampling: str,
    say: Callable[[str], None],
    clock: dict[str, float],
) -> TrainResult:
    """Fit and evaluate every fold of ``source``, build the model of fold 1, log one MLflow
    run and register it: the interaction-log path of every engine.

    ``champion_features(champion, day)``: the champion's features of the customers active
    on ``day``, when its feature settings differ from this model's. ``data_params``: the
    run's parameters about the input tables and the engine."""
    feature_names, categorical = source.feature_names, source.categorical
    for fold in folds:
        source.check(fold)

    outcomes, main_fit = [], None
    sample_params: dict[str, Any] = {}
    for fold in folds:
        say(f"fitting {fold.describe()}")
        part = source.fold(fold)
        sample_params[f"fold{fold.number}.train_rows"] = part.train_rows
        if part.capacity != settings.capacity:
            sample_params[f"fold{fold.number}.capacity_on_sample"] = part.capacity
        test = part.test
        outcome, fitted = _fit_and_evaluate(
            f"fold{fold.number}",
            part.parts,
            part.labels,
            categorical=categorical,
            validation_groups=part.validation_groups,
            rule_test=test[RULE_CONTACTS].to_numpy(dtype="float64"),
            segments_test=test[SEGMENT_EVAL].to_numpy() if SEGMENT_EVAL in test else None,
            dates_test=test[SNAPSHOT_DATE].to_numpy(),
            settings=settings,
            tune=fold.number == 1,
            train_weight=part.train_weight,
            capacity=part.capacity,
            booster_fit=part.booster_fit,
        )
        outcomes.append(_with_description(outcome, fold.describe()))
        if fold.number == 1:
            main_fit = fitted
        del part, test, fitted
    clock["fit"] = time.perf_counter()

    assert main_fit is not None  # folds is never empty
    base_rate, reference, distribution = source.main_profile()
    families, family_words = _feature_families(feature_names)
    model = ChurnModel(
        kind=KIND_INTERACTIONS,
        booster=main_fit.booster,
        calibrator=main_fit.calibrator,
        blend=main_fit.blend,
        feature_names=feature_names,
        categories=source.categories(),
        base_rate=base_rate,
        feature_settings=_frozen_feature_settings(feature_settings, source.feature_frame()),
        families=families,
        family_words=family_words,
        metadata={"as_of": f"{as_of:%Y-%m-%d}", "horizon_days": settings.horizon_days},
        reference=reference,
        distribution=distribution,
    )
    test_frame = source.main_test()

    def champion_scores(champion: ChurnModel) -> np.ndarray:
        if champion.kind != KIND_INTERACTIONS:
            raise ModelError("it was trained on a customer table")
        predictor = Predictor(champion)
        if champion.feature_settings == model.feature_settings and set(
            champion.feature_names
        ) <= set(feature_names):
            return predictor.probability(predictor.prepare(test_frame))
        probability = np.empty(len(test_frame))
        for day in folds[0].test:
            on_day = (test_frame[SNAPSHOT_DATE] == day).to_numpy()
            built = champion_features(champion, day)
            ids = test_frame.loc[on_day, CUSTOMER_ID]
            probability[on_day] = predictor.probability(
                predictor.prepare(built.reindex(ids.to_numpy()))
            )
        return probability

    params = {
        "path": "interactions",
        "as_of": f"{as_of:%Y-%m-%d}",
        "snapshot_dates": ",".join(f"{d:%Y-%m-%d}" for d in needed),
        "snapshot_count": len(needed),
        **{f"fold{f.number}": f.describe() for f in folds},
        **data_params,
        "snapshot_rows": source.snapshot_rows,
        **source.sampling.params(),
        "train_sampling": train_sampling,
        **sample_params,
        "feature_settings": json.dumps(model.feature_settings, default=str)[:5000],
    }
    result = _log_and_register(
        model=model,
        outcomes=outcomes,
        fitted=main_fit,
        test_x=test_frame[feature_names],
        test_y=test_frame[LABEL].to_numpy(dtype="int8"),
        champion_scores=champion_scores,
        params=params,
        settings=settings,
        as_of=f"{as_of:%Y-%m-%d}",
        say=say,
    )
    clock["end"] = time.perf_counter()
    return _with_seconds(result, clock)


def _capacity_on_sample(capacity: int, snapshots: pd.DataFrame, rows: np.ndarray) -> int:
    """K for precision and recall at K on sampled test snapshots: the same share of the day's
    customers as K of all of them (K times the sampling rate); K itself without sampling."""
    rate = float(np.mean(snapshots[SAMPLE_RATE].to_numpy()[rows])) if len(rows) else 1.0
    return capacity if rate >= 1 else max(1, round(capacity * rate))


def _training_profile(
    features: pd.DataFrame, rows: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    """``reference_statistics`` and ``drift.distribution`` of ``features.take(rows)``,
    computed on a few columns at a time (both treat columns one by one, and the drift
    sample depends on the row count only), so that the rows are never copied whole."""
    reference: dict[str, dict[str, float]] = {}
    distribution: dict[str, dict[str, Any]] = {}
    for start in range(0, features.shape[1], PROFILE_CHUNK_COLUMNS):
        part = features.iloc[:, start : start + PROFILE_CHUNK_COLUMNS].take(rows)
        reference.update(ChurnModel.reference_statistics(part))
        distribution.update(drift.distribution(part))
    return reference, distribution


def _with_description(outcome: FoldOutcome, text: str) -> FoldOutcome:
    return FoldOutcome(**{**outcome.__dict__, "describe": text})


def _with_seconds(result: TrainResult, clock: dict[str, float]) -> TrainResult:
    marks = list(clock.items())
    seconds = {name: round(t - marks[i - 1][1], 2) for i, (name, t) in enumerate(marks) if i}
    seconds["total"] = round(marks[-1][1] - marks[0][1], 2)
    return TrainResult(**{**result.__dict__, "seconds": seconds})


# -- the customer-table path -------------------------------------------------------------
def train_from_table(
    table: pd.DataFrame | str | Path,
    label: str,
    settings: TrainingSettings,
    *,
    id_column: str | None = None,
    report: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on one labelled row per customer with a stratified train/validation/test split.

    The split is ``settings.table_split`` (default 60/20/20), stratified by the label,
    with ``settings.seed``; there are no snapshots and one fold.
    """
    say = report or (lambda message: None)
    clock = {"start": time.perf_counter()}
    source = None
    if not isinstance(table, pd.DataFrame):
        from churnml.io import read_table

        source = Path(table)
        table = read_table(source, "table")
    if label not in table.columns:
        raise DataError(
            f"--label {label!r} is not a column of the table; columns: "
            f"{', '.join(map(str, table.columns[:12]))}"
        )
    y = map_labels(table[label], label)
    schema = infer_schema(table, label, id_column)
    x = table_features(table, schema)
    train, validation, test = stratified_split(y, settings.table_split, settings.seed)
    split = {"train": train, "validation": validation, "test": test}
    categorical = list(schema["categorical"])
    rule = schema["rule_column"]
    say(f"fitting on {len(train)} rows, validating on {len(validation)}, testing on {len(test)}")
    keep, weight = models.training_sample(y[train], None, settings.max_train_rows, settings.seed)
    fit_rows = {**split, "train": train if keep is None else train[keep]}
    outcome, fitted = _fit_and_evaluate(
        "test",
        {part: x.iloc[rows] for part, rows in fit_rows.items()},
        {part: y[rows] for part, rows in fit_rows.items()},
        categorical=categorical,
        validation_groups=validation,
        rule_test=x[rule].iloc[test].fillna(0).to_numpy(dtype="float64") if rule else None,
        segments_test=None,
        dates_test=None,
        settings=settings,
        tune=True,
        train_weight=weight,
    )
    clock["fit"] = time.perf_counter()
    model = ChurnModel(
        kind=KIND_TABLE,
        booster=fitted.booster,
        calibrator=fitted.calibrator,
        blend=fitted.blend,
        feature_names=list(x.columns),
        categories={c: list(v) for c, v in schema["categorical"].items()},
        base_rate=float(y[train].mean()),
        table_schema=schema,
        metadata={"label_column": label, "split": list(settings.table_split)},
        reference=ChurnModel.reference_statistics(x.iloc[train]),
        distribution=drift.distribution(x.iloc[train]),
    )
    test_table = table.iloc[test]

    def champion_scores(champion: ChurnModel) -> np.ndarray:
        if champion.kind != KIND_TABLE:
            raise ModelError("it was trained on interaction logs")
        predictor = Predictor(champion)
        return predictor.probability(predictor.prepare(champion.features_from_table(test_table)))

    params = {
        "path": "table",
        "table": str(source) if source else "(frame)",
        "label_column": label,
        "id_column": id_column or "(row number)",
        "split": "stratified train/validation/test "
        + "/".join(f"{s:.0%}" for s in settings.table_split)
        + f", seed {settings.seed}",
        "table_rows": len(table),
        "table_sha256": fingerprint(table),
        "rule_column": rule or "(none)",
        "train_rows": f"{len(fit_rows['train'])} of {len(train)}"
        + (
            ", weighted (every churner and a seeded sample of the others)"
            if weight is not None
            else ""
        ),
        "dropped_columns": ",".join(schema["dropped"]) or "(none)",
    }
    result = _log_and_register(
        model=model,
        outcomes=[outcome],
        fitted=fitted,
        test_x=x.iloc[test],
        test_y=y[test],
        champion_scores=champion_scores,
        params=params,
        settings=settings,
        as_of=None,
        say=say,
    )
    clock["end"] = time.perf_counter()
    return _with_seconds(result, clock)


# -- MLflow ------------------------------------------------------------------------------
def environment() -> dict[str, str]:
    values = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "churnml": churnml.__version__,
        "contract_version": CONTRACT_VERSION,
    }
    for package in PIP_PACKAGES:
        try:
            values[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            values[package] = "(not installed)"
    return values


def _pip_requirements(env: dict[str, str]) -> list[str]:
    return [f"{p}=={env[p]}" for p in PIP_PACKAGES if env[p] != "(not installed)"] + [
        f"churnml=={churnml.__version__}"
    ]


def _metric_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in text)


def _flat_metrics(outcomes: list[FoldOutcome]) -> dict[str, float]:
    flat: dict[str, float] = {}
    main = outcomes[0]
    for who, values in main.metrics.items():
        prefix = "test_" if who == "model" else f"test_{who}_"
        flat.update({prefix + k: v for k, v in values.items()})
    for segment, values in main.segments.items():
        flat.update({_metric_name(f"test_segment_{segment}_{k}"): v for k, v in values.items()})
    for outcome in outcomes[1:]:
        for who, values in outcome.metrics.items():
            prefix = f"{outcome.name}_" if who == "model" else f"{outcome.name}_{who}_"
            flat.update({prefix + k: v for k, v in values.items()})
    flat["best_iteration"] = float(main.best_iteration)
    return {k: v for k, v in flat.items() if v is not None and np.isfinite(v)}


def _log_and_register(
    *,
    model: ChurnModel,
    outcomes: list[FoldOutcome],
    fitted: _Fitted,
    test_x: pd.DataFrame,
    test_y: np.ndarray,
    champion_scores: Callable[[ChurnModel], np.ndarray],
    params: dict[str, Any],
    settings: TrainingSettings,
    as_of: str | None,
    say: Callable[[str], None],
) -> TrainResult:
    env = environment()
    with tracking(settings) as client, tempfile.TemporaryDirectory(prefix="churnml-train-") as tmp:
        folder = Path(tmp)
        champion_version = alias_version(client, settings.model_name, CHAMPION)
        champion_auc, champion_note = None, None
        if champion_version is not None:
            champion_auc, champion_note = _score_champion(settings, champion_scores, test_y)
        evidence = GateEvidence(
            fold_roc_auc=tuple(
                {
                    who: o.metrics[who]["roc_auc"]
                    for who in ("model", "logistic", "rule")
                    if who in o.metrics
                }
                for o in outcomes
            ),
            test_roc_auc=outcomes[0].metrics["model"]["roc_auc"],
            test_ece=outcomes[0].metrics["model"]["ece"],
            champion_version=champion_version,
            champion_test_roc_auc=champion_auc,
            champion_note=champion_note,
        )
        decision = promotion_gate(evidence, settings)

        with mlflow.start_run(experiment_id=experiment_id(client, settings)) as run:
            mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            mlflow.log_params(
                {f"setting.{k}": v for k, v in settings.to_dict().items() if k != "home"}
            )
            mlflow.log_params({f"lgbm.{k}": v for k, v in fitted.params.items()})
            mlflow.log_params({f"env.{k}": v for k, v in env.items()})
            mlflow.log_params(
                {
                    "contract_version": CONTRACT_VERSION,
                    "feature_count": len(model.feature_names),
                    "calibration": outcomes[0].calibration,
                    **{f"blend.{k}": v for k, v in _blend_params(outcomes[0].blend).items()},
                    "seed": settings.seed,
                    "tracking_uri": settings.resolved_tracking_uri(),
                }
            )
            mlflow.log_metrics(_flat_metrics(outcomes))
            for step, outcome in enumerate(outcomes):
                for who in outcome.metrics:
                    name = "backtest_roc_auc" if who == "model" else f"backtest_{who}_roc_auc"
                    mlflow.log_metric(name, outcome.metrics[who]["roc_auc"], step=step)
            mlflow.log_dict({"features": model.feature_names}, "features.json")
            mlflow.log_dict(
                {
                    "folds": [
                        {
                            "name": o.name,
                            "describe": o.describe,
                            "metrics": o.metrics,
                            "segments": o.segments,
                            "best_iteration": o.best_iteration,
                            "calibration": o.calibration,
                            "calibration_log_loss": o.calibration_scores,
                            "blend": o.blend,
                        }
                        for o in outcomes
                    ]
                },
                "metrics.json",
            )
            mlflow.log_dict(decision_record(decision, evidence), "gate.json")
            if fitted.trials:
                mlflow.log_dict({"trials": fitted.trials}, "tuning.json")
            importance = pd.Series(
                fitted.booster.feature_importance(importance_type="gain"), index=model.feature_names
            ).sort_values(ascending=False)
            mlflow.log_dict({k: float(v) for k, v in importance.items()}, "importance_gain.json")
            _log_plots(folder / "plots", model, fitted, test_x, test_y, importance, settings)

            say("logging and registering the model")
            model_folder = model.save(folder / "model")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=ChurnRiskPyfunc(),
                    artifacts={"model": str(model_folder)},
                    registered_model_name=settings.model_name,
                    pip_requirements=_pip_requirements(env),
                    metadata={"contract_version": CONTRACT_VERSION, "kind": model.kind},
                )
            version = str(info.registered_model_version)
            client.set_registered_model_alias(settings.model_name, CHALLENGER, version)
            mlflow.set_tags(
                {
                    "gate.decision": "promote" if decision.promote else "keep",
                    "gate.reasons": " | ".join(decision.reasons)[:5000],
                    "model_version": version,
                    "contract_version": CONTRACT_VERSION,
                    "features": ",".join(model.feature_names)[:5000],
                }
            )
            client.set_model_version_tag(settings.model_name, version, "run_id", run.info.run_id)
            client.set_model_version_tag(
                settings.model_name, version, "gate", "promote" if decision.promote else "keep"
            )
            if decision.promote:
                set_champion(
                    client,
                    settings.model_name,
                    version,
                    action="gate",
                    by="gate",
                    reason=" | ".join(decision.reasons),
                )
                champion_version = version
            say(decision.text())
            return TrainResult(
                run_id=run.info.run_id,
                model_version=version,
                model_uri=f"models:/{settings.model_name}/{version}",
                kind=model.kind,
                test=outcomes[0].metrics,
                folds=tuple(outcomes),
                gate=decision,
                champion_version=champion_version,
                as_of=as_of,
            )


def _blend_params(record: dict[str, Any]) -> dict[str, Any]:
    """The blend of the registered model as flat MLflow params (candidates' losses: JSON)."""
    return {
        k: json.dumps({str(w): loss for w, loss in v.items()}) if isinstance(v, dict) else v
        for k, v in record.items()
    }


def _score_champion(
    settings: TrainingSettings,
    champion_scores: Callable[[ChurnModel], np.ndarray],
    test_y: np.ndarray,
) -> tuple[float | None, str | None]:
    from sklearn.metrics import roc_auc_score

    try:
        uri = f"models:/{settings.model_name}@{CHAMPION}"
        champion = load_model(uri, settings.resolved_tracking_uri()).model
        return float(roc_auc_score(test_y, champion_scores(champion))), None
    except (
        ModelError,
        DataError,
        mlflow.exceptions.MlflowException,
        AttributeError,
        KeyError,
    ) as error:
        return None, str(error).splitlines()[0][:300]


def _log_plots(
    folder: Path,
    model: ChurnModel,
    fitted: _Fitted,
    test_x: pd.DataFrame,
    test_y: np.ndarray,
    importance: pd.Series,
    settings: TrainingSettings,
) -> None:
    missing = plots.matplotlib_missing()
    if missing:
        mlflow.set_tag("plots", f"skipped: {missing}")
        return
    rows = np.arange(len(test_x))
    if len(rows) > PLOT_SAMPLE_ROWS:
        rows = np.sort(
            np.random.default_rng(settings.seed).choice(rows, PLOT_SAMPLE_ROWS, replace=False)
        )
    predictor = Predictor(model)
    sample = predictor.prepare(test_x.iloc[rows])
    contributions = predictor.exact_shares(sample)
    written = plots.write_plots(
        folder,
        test_y,
        fitted.test_scores,
        fitted.test_probability,
        importance,
        contributions,
        sample,
    )
    for path in written:
        mlflow.log_artifact(str(path), artifact_path="plots")
