"""Training end to end, stage by stage: the data and its folds, then per fold the fit
(``training.fit``) and the evaluation (``training.evaluate``), then the promotion gate
(``training.promotion``), the MLflow run (``training.mlflow_log``) and the registry
(``training.registry``). Two paths share every stage: interaction logs with weekly
snapshots and time folds (``train_from_tables``, ``train_on_snapshots`` for every
engine), and one labelled customer table with a stratified split (``train_from_table``).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import ConfigError, DataError, ModelError
from churnml.io import content_hash, fingerprint, read_table
from features import FeatureSettings, drift
from features.build import INTERACTION_COLUMNS_USED
from features.columns import FAMILY_DESCRIPTIONS, feature_family
from model.artifact import KIND_INTERACTIONS, KIND_TABLE, ChurnModel, table_features
from model.predictor import Predictor
from model.schema import profile_schema
from training import horizons as hz
from training import refit, table_cv
from training.call_effect_fit import (
    CallEffectHead,
    call_effect_rows,
    fit_call_effect_head,
    treated_snapshot_rows,
)
from training.evaluate import Backtest, Candidate, FoldOutcome, evaluate_fold
from training.fit import FittedFold, fit_fold
from training.folds import FoldData, LocalSnapshots, SnapshotSource
from training.mlflow_log import environment, log_run, pip_requirements, tag_run
from training.model import ChurnRiskPyfunc
from training.promotion import (
    ChampionScores,
    FittedOnTestRows,
    GateDecision,
    gather_evidence,
    promotion_gate,
    with_horizon_gate,
)
from training.registry import CHALLENGER, CHAMPION, experiment_id, register, set_champion, tracking
from training.settings import TrainingSettings
from training.snapshots import (
    LABEL,
    SNAPSHOT_DATE,
    FeatureBuilder,
    Fold,
    build_snapshot_frame,
    default_as_of,
    default_builder,
    snapshot_plan,
)
from training.table import check_folds, infer_schema, map_labels


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
    # The training data of the evaluated model (fold 1) and of the registered one.
    windows: dict[str, str] = field(default_factory=dict)
    # The call-effect head's gate record (``training.call_effect_fit.call_effect_gate``);
    # None for a run without retention contacts.
    call_effect: dict[str, Any] | None = None
    # Per horizon fold 1's test metrics of the time-to-churn model ({horizon: {"model":
    # metrics, <baseline>: metrics}}); None for a run without --horizons.
    horizons: dict[int, dict[str, dict[str, float]]] | None = None

    def summary(self) -> str:
        m = self.test["model"]
        lines = [
            f"run {self.run_id}: {self.kind} model, version {self.model_version}"
            + (f", as of {self.as_of}" if self.as_of else ""),
            f"{'out-of-fold' if self.kind == KIND_TABLE else 'test'}: ROC-AUC {m['roc_auc']:.4f}, "
            f"PR-AUC {m['pr_auc']:.4f}, Brier {m['brier']:.4f}, "
            f"ECE {m['ece']:.4f}, top-decile lift {m['lift_top_decile']:.2f}",
        ]
        for baseline in ("logistic", "lightgbm", "rule"):
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
        if "refit" in self.windows:
            lines.append(
                f"registered: refit on {self.windows['refit']}; evaluated (fold 1) on "
                f"{self.windows['evaluated']}"
            )
        for horizon, entry in (self.horizons or {}).items():
            h = entry["model"]
            lines.append(
                f"horizon {horizon}d: test ROC-AUC {h['roc_auc']:.4f}, PR-AUC {h['pr_auc']:.4f}, "
                f"ECE {h['ece']:.4f}"
                + "".join(
                    f", {b} {entry[b]['roc_auc']:.4f}" for b in ("logistic", "rule") if b in entry
                )
            )
        lines.append(self.gate.text())
        if self.call_effect is not None:
            lines.append(f"call effect: {self.call_effect['reason']}")
        lines.append(self.outcome())
        return "\n".join(lines)

    def outcome(self) -> str:
        """What the run did to the registry, in one line."""
        version, champion = self.model_version, self.champion_version
        if champion == version:
            return f"registered as version {version}, now the champion (alias {CHAMPION})"
        held = f"registered as version {version} (alias {CHALLENGER}); "
        if champion is None:
            return held + f"no champion yet: `churnml promote {version}` makes it one"
        return held + f"the champion stays version {champion}"


# -- the interaction-log path ------------------------------------------------------------
def train_from_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    settings: TrainingSettings,
    *,
    as_of: pd.Timestamp | str | None = None,
    feature_settings: FeatureSettings | None = None,
    builder: FeatureBuilder | None = None,
    report: Callable[[str], None] | None = None,
    retention_contacts: pd.DataFrame | None = None,
) -> TrainResult:
    """Train on weekly snapshots of validated contract tables, log one MLflow run, register.

    ``as_of`` defaults to the day of the latest contact; snapshots end ``horizon_days``
    before it. ``builder`` replaces ``features.build_features`` (benchmarks, tests).

    ``retention_contacts`` (the validated v1.1 table, or None): the churn model's target
    becomes the risk without a call (snapshot rows near a treated call are left out,
    ``training.call_effect_fit.treated_snapshot_rows``), and the call-effect head is
    fitted, evaluated, gated and stored with the model (``training.call_effect_fit``).
    """
    say = report or (lambda message: None)
    clock = {"start": time.perf_counter()}
    as_of = default_as_of(interactions) if as_of is None else pd.Timestamp(as_of).normalize()
    if interactions.empty:
        raise DataError("interactions: the table has no contacts; train needs service contacts")
    first_contact = pd.Timestamp(interactions["started_at"].min())
    folds, needed = snapshot_plan(first_contact, as_of, settings)
    if settings.horizons:
        _check_horizon_history(needed, as_of, settings)
    say(
        f"building features for {len(needed)} snapshots "
        f"({needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d})"
    )
    build = builder or default_builder(feature_settings)
    snapshots, sampling = build_snapshot_frame(customers, interactions, needed, build, settings)
    head_of = None
    target: dict[str, Any] = {}
    if retention_contacts is not None:
        called = treated_snapshot_rows(snapshots, retention_contacts, settings.horizon_days)
        snapshots = snapshots.loc[~called].reset_index(drop=True)
        target = {
            "churn_target": (
                "risk without a call: snapshot rows of customers treated within one horizon "
                "before or after the snapshot day are left out"
            ),
            "churn_target.rows_left_out": int(called.sum()),
            "retention_contacts_rows": len(retention_contacts),
        }
        say(f"left out {int(called.sum())} snapshot rows of customers called near the day")
        head_of = _call_effect_stage(
            customers, interactions, retention_contacts, build, as_of, settings, say
        )
    clock["features"] = time.perf_counter()
    horizons = None
    if settings.horizons:
        horizons = _horizons_stage(snapshots, customers, as_of, settings, say)
        clock["horizons"] = time.perf_counter()
    data = {
        "engine": "local",
        "customers_rows": len(customers),
        "interactions_rows": len(interactions),
        "customers_sha256": fingerprint(customers),
        "interactions_sha256": fingerprint(interactions),
        # The same on every engine for the same rows (the SHA-256 above needs one process).
        "customers_content_hash": content_hash(customers).text,
        "interactions_content_hash": content_hash(interactions, INTERACTION_COLUMNS_USED).text,
        **target,
    }
    return train_on_snapshots(
        LocalSnapshots(snapshots, sampling, settings),
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
        call_effect=head_of,
        horizons=horizons,
    )


def _check_horizon_history(
    needed: list[pd.Timestamp], as_of: pd.Timestamp, settings: TrainingSettings
) -> None:
    """ConfigError naming ``--horizons`` when the snapshot days cannot give the horizons'
    folds (the longest horizon longer than the history allows), before anything is fit."""
    shown = ",".join(map(str, settings.horizons))
    hz.parse_horizons(
        shown, settings.horizon_days, history_days=int((as_of - needed[0]) / pd.Timedelta(days=1))
    )
    try:
        hz.horizon_folds(needed, settings.horizons, settings, as_of=as_of)
    except DataError as error:
        raise ConfigError(
            f"--horizons {shown}: {settings.horizons[-1]} days is longer than the history "
            f"allows ({error}); use a shorter longest horizon"
        ) from None


def _horizons_stage(
    snapshots: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: pd.Timestamp,
    settings: TrainingSettings,
    say: Callable[[str], None],
) -> hz.HorizonBacktest:
    """The time-to-churn model of ``--horizons`` from the churn model's snapshot rows:
    fitted and evaluated on its own time folds (every horizon seen in full on the test
    days), gated, and refit on every row censored at ``as_of``."""
    rows = hz.horizon_rows(snapshots, customers)
    say(
        f"horizons {','.join(map(str, settings.horizons))}: fitting the time-to-churn model "
        f"on {len(rows)} snapshot rows"
    )
    backtest = hz.backtest_horizons(rows, settings.horizons, settings, as_of=as_of)
    say(f"horizons: {backtest.gate.reasons[0]}")
    return backtest


def _call_effect_stage(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    retention_contacts: pd.DataFrame,
    build: FeatureBuilder,
    as_of: pd.Timestamp,
    settings: TrainingSettings,
    say: Callable[[str], None],
) -> Callable[[ChurnModel], CallEffectHead]:
    """The call-effect stage of a run, given the churn model it is compared with: its rows
    are built now (the churn model's builder), the head when the model is known."""
    rows = call_effect_rows(
        customers,
        interactions,
        retention_contacts,
        build,
        as_of=as_of,
        horizon_days=settings.horizon_days,
    )
    say(f"call effect: {len(rows)} picks with complete labels ({int(rows.t.sum())} treated)")

    def head_of(model: ChurnModel) -> CallEffectHead:
        predictor = Predictor(model)
        head = fit_call_effect_head(
            rows,
            lambda features: predictor.probability(predictor.prepare(features)),
            horizon_days=settings.horizon_days,
            capacity=settings.capacity,
            seed=settings.seed,
            threads=settings.threads,
        )
        say(f"call effect: {head.gate['reason']}")
        return head

    return head_of


def train_on_snapshots(
    source: SnapshotSource,
    *,
    folds: list[Fold],
    needed: list[pd.Timestamp],
    as_of: pd.Timestamp,
    settings: TrainingSettings,
    feature_settings: FeatureSettings | None,
    champion_features: Callable[[ChurnModel, pd.Timestamp], pd.DataFrame],
    data_params: dict[str, Any],
    train_sampling: str,
    say: Callable[[str], None],
    clock: dict[str, float],
    call_effect: Callable[[ChurnModel], CallEffectHead] | None = None,
    horizons: hz.HorizonBacktest | None = None,
) -> TrainResult:
    """Fit and evaluate every fold of ``source``, build the model of the fold that produces
    it, then the gate, one MLflow run and the registry: the interaction-log path of every
    engine.

    ``call_effect(model)``: the call-effect stage, given the churn model it is compared
    with (None: no head); its head and gate record are stored with the model.
    ``horizons``: the time-to-churn model's backtest (``--horizons``), stored with the
    model; the gate then requires every horizon to pass too.

    ``champion_features(champion, day)``: the champion's features of the customers active
    on ``day``, when its feature settings differ from this model's. ``data_params``: the
    run's parameters about the input tables and the engine."""
    model_fold = _model_fold(folds)
    for fold in folds:
        source.check(fold)
    backtest, fitted, scores, sample_params, evaluated_window = _fit_and_evaluate_folds(
        source, folds, settings, say
    )
    clock["fit"] = time.perf_counter()
    test_frame = source.test_frame(model_fold)  # before the refit's folds replace it (Dask)
    windows = {"evaluated": evaluated_window}
    refitted = None
    if settings.refit != "off":
        refitted = refit.refit(source, needed, fitted, evaluated_window, settings, say)
        windows["refit"] = refitted.window
        clock["refit"] = time.perf_counter()
    model = _interactions_model(
        source,
        model_fold if refitted is None else refitted.fold,
        fitted if refitted is None else refitted.fitted,
        feature_settings,
        as_of,
        settings,
        windows=windows,
        evaluated_metrics=backtest.model.metrics["model"],
    )
    head = None
    if call_effect is not None:
        head = call_effect(model)
        model.call_effect = head.model
        model.call_effect_gate = head.gate
        clock["call_effect"] = time.perf_counter()
    if horizons is not None:
        model.horizons = horizons.model
        model.horizons_gate = {
            "passed": horizons.gate.passed,
            "reason": " | ".join(horizons.gate.reasons),
        }
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
        **_window_params("evaluated", evaluated_window),
        **({"refit": "off"} if refitted is None else refitted.params()),
        **({} if head is None else head.params),
    }
    candidate = Candidate(
        model=model,
        backtest=backtest,
        fitted=fitted,
        test_x=test_frame[source.feature_names],
        test_y=test_frame[LABEL].to_numpy(dtype="int8"),
        test_scores=scores,
        params=params,
        refit=refitted,
        call_effect=head,
        horizons=horizons,
    )
    champion_scores = _interactions_champion_scores(
        model, test_frame, model_fold, champion_features, settings.horizon_days
    )
    result = _gate_log_register(
        candidate, champion_scores, settings, as_of=f"{as_of:%Y-%m-%d}", say=say
    )
    clock["end"] = time.perf_counter()
    return _with_seconds(result, clock)


def _model_fold(folds: list[Fold]) -> Fold:
    """The one fold whose fit becomes the model."""
    producing = [fold for fold in folds if fold.produces_model]
    if len(producing) != 1:
        raise ValueError(
            f"{len(producing)} of {len(folds)} folds produce the model; exactly one must "
            "(``time_folds`` marks fold 1)"
        )
    return producing[0]


def _fit_and_evaluate_folds(
    source: SnapshotSource,
    folds: list[Fold],
    settings: TrainingSettings,
    say: Callable[[str], None],
) -> tuple[Backtest, FittedFold, dict[str, np.ndarray], dict[str, Any], refit.Window]:
    """Fit and evaluate each fold in turn (tuning the fold that produces the model): the
    backtest, that fold's fit, test scores and training window, and the folds' sampling
    parameters."""
    outcomes: list[FoldOutcome] = []
    sample_params: dict[str, Any] = {}
    for fold in folds:
        say(f"fitting {fold.describe()}")
        part = source.fold(fold)
        sample_params.update(_sample_params(fold, part, settings))
        fitted = fit_fold(part.fit_input(source.categorical, tune=fold.produces_model), settings)
        outcome, scores = evaluate_fold(
            f"fold{fold.number}", fold.describe(), fitted, part.parts["test"], part.held_out()
        )
        outcomes.append(outcome)
        if fold.produces_model:
            model_outcome, model_fit, model_scores = outcome, fitted, scores
            window = refit.window_of(fold, part)
        del part, fitted, scores
    others = tuple(o for o, fold in zip(outcomes, folds, strict=True) if not fold.produces_model)
    return Backtest(model_outcome, others), model_fit, model_scores, sample_params, window


def _window_params(name: str, window: refit.Window) -> dict[str, Any]:
    """The run's parameters about one model's training data."""
    return {
        f"{name}.train_window": window.text(),
        f"{name}.train_first_day": f"{window.first:%Y-%m-%d}",
        f"{name}.train_last_day": f"{window.last:%Y-%m-%d}",
        f"{name}.train_rows": window.rows,
    }


def _sample_params(fold: Fold, part: FoldData, settings: TrainingSettings) -> dict[str, Any]:
    """The run's parameters about the fold's training sample and its K at K."""
    params: dict[str, Any] = {f"fold{fold.number}.train_rows": part.train_rows}
    if part.capacity != settings.capacity:
        params[f"fold{fold.number}.capacity_on_sample"] = part.capacity
    return params


def _interactions_model(
    source: SnapshotSource,
    fold: Fold,
    fitted: FittedFold,
    feature_settings: FeatureSettings | None,
    as_of: pd.Timestamp,
    settings: TrainingSettings,
    *,
    windows: dict[str, refit.Window],
    evaluated_metrics: dict[str, float],
) -> ChurnModel:
    """The model of ``fold``'s fit (fold 1's, or the refit's), with its training rows'
    profile and frozen features; its metadata name the training window of the evaluated
    model and of the refit one, and the evaluated test metrics."""
    base_rate, reference, distribution = source.profile(fold)
    metadata = {
        "as_of": f"{as_of:%Y-%m-%d}",
        "horizon_days": settings.horizon_days,
        "refit": settings.refit,
        "train_window": windows.get("refit", windows["evaluated"]).record(),
        "evaluated": {
            "train_window": windows["evaluated"].record(),
            "test_roc_auc": evaluated_metrics["roc_auc"],
        },
    }
    return ChurnModel(
        kind=KIND_INTERACTIONS,
        booster=fitted.booster,
        calibrator=fitted.calibrator,
        blend=fitted.blend,
        feature_names=source.feature_names,
        categories=source.categories(),
        base_rate=base_rate,
        feature_settings=_frozen_feature_settings(feature_settings, source.feature_frame()),
        families=_feature_families(source.feature_names),
        family_words=dict(FAMILY_DESCRIPTIONS),
        metadata=metadata,
        reference=reference,
        distribution=distribution,
        input_schema=profile_schema(source.feature_names, source.categories(), distribution),
    )


def _frozen_feature_settings(
    feature_settings: FeatureSettings | None, frame: pd.DataFrame
) -> dict[str, Any]:
    """The feature settings (None: the defaults) with the training columns and categories
    of ``frame`` pinned, as a dict."""
    settings = FeatureSettings() if feature_settings is None else feature_settings
    return settings.freeze(frame).to_dict()


def _feature_families(columns: list[str]) -> dict[str, str]:
    """Column -> family for the columns features/ knows. A builder passed in by a test or
    a benchmark may add others: they get no family here (the model names theirs after the
    column)."""
    families = {}
    for column in columns:
        try:
            families[column] = feature_family(column)
        except KeyError:
            continue
    return families


def _interactions_champion_scores(
    model: ChurnModel,
    test_frame: pd.DataFrame,
    fold: Fold,
    champion_features: Callable[[ChurnModel, pd.Timestamp], pd.DataFrame],
    horizon_days: int,
) -> ChampionScores:
    """The champion's scores of ``fold``'s test rows: on this model's features when it reads
    the same ones, else on its own features built for each test day. A champion refit on
    days within the horizon of the test days has seen their labels: ``FittedOnTestRows``
    with its own evaluated test ROC-AUC instead."""

    def scores(champion: ChurnModel) -> np.ndarray:
        if champion.kind != KIND_INTERACTIONS:
            raise ModelError("it was trained on a customer table")
        _check_unseen(champion, fold, horizon_days)
        predictor = Predictor(champion)
        if champion.feature_settings == model.feature_settings and set(
            champion.feature_names
        ) <= set(model.feature_names):
            return predictor.probability(predictor.prepare(test_frame))
        probability = np.empty(len(test_frame))
        for day in fold.test:
            on_day = (test_frame[SNAPSHOT_DATE] == day).to_numpy()
            built = champion_features(champion, day)
            ids = test_frame.loc[on_day, CUSTOMER_ID]
            probability[on_day] = predictor.probability(
                predictor.prepare(built.reindex(ids.to_numpy()))
            )
        return probability

    return scores


def _check_unseen(champion: ChurnModel, fold: Fold, horizon_days: int) -> None:
    """``FittedOnTestRows`` when ``champion`` was fitted on a day whose label window
    reaches the first test day of ``fold``."""
    window = champion.metadata.get("train_window")
    if not window:
        return
    last = pd.Timestamp(window["last"])
    if last + pd.Timedelta(days=horizon_days) < min(fold.test):
        return
    evaluated = champion.metadata.get("evaluated", {}).get("test_roc_auc")
    raise FittedOnTestRows(
        f"it was refit on snapshots up to {last:%Y-%m-%d}, within {horizon_days} days of "
        f"these test days",
        evaluated_roc_auc=None if evaluated is None else float(evaluated),
    )


# -- the customer-table path -------------------------------------------------------------
def train_from_table(
    table: pd.DataFrame | str | Path,
    label: str,
    settings: TrainingSettings,
    *,
    id_column: str | None = None,
    report: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on one labelled row per customer: stratified k-fold cross-validation chooses
    the parameters, rounds, blend and calibration and gives the evaluated (out-of-fold)
    metrics; the registered model is refit on every row (``training.table_cv``).

    ``settings.table_folds`` folds (default 5), repeated ``settings.table_repeats`` times
    (0: more often for small tables), stratified by the label, with ``settings.seed``.
    """
    say = report or (lambda message: None)
    clock = {"start": time.perf_counter()}
    source = None if isinstance(table, pd.DataFrame) else Path(table)
    table = _labelled_table(table if source is None else read_table(source, "table"), label)
    y = map_labels(table[label], label)
    schema = infer_schema(table, label, id_column)
    x = table_features(table, schema)
    check_folds(y, settings.table_folds)
    repeats = table_cv.fold_repeats(len(y), settings.table_repeats)
    say(
        f"cross-validating on {len(y)} rows: {settings.table_folds} stratified folds"
        + (f", {repeats} times" if repeats > 1 else "")
    )
    fitted, outcome, oof = _fit_and_evaluate_split(x, y, schema, settings, repeats)
    clock["fit"] = time.perf_counter()
    first = oof.rows[oof.repeat == 0]
    scores = {who: score[oof.repeat == 0] for who, score in oof.scores.items()}
    if schema["rule_column"]:
        scores["rule"] = x[schema["rule_column"]].fillna(0).to_numpy(dtype="float64")[first]
    candidate = Candidate(
        model=_table_model(fitted, x, y, schema, label, settings, oof, outcome),
        backtest=Backtest(outcome),
        fitted=fitted,
        test_x=x.iloc[first],
        test_y=y[first],
        test_scores=scores,
        params=_table_params(table, source, label, id_column, schema, settings, oof=oof),
    )
    champion_scores = _table_champion_scores(table.iloc[first])
    result = _gate_log_register(candidate, champion_scores, settings, as_of=None, say=say)
    clock["end"] = time.perf_counter()
    return _with_seconds(result, clock)


def _labelled_table(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """``table``, when ``label`` is one of its columns."""
    if label not in table.columns:
        raise DataError(
            f"--label {label!r} is not a column of the table; columns: "
            f"{', '.join(map(str, table.columns[:12]))}"
        )
    return table


def _fit_and_evaluate_split(
    x: pd.DataFrame,
    y: np.ndarray,
    schema: dict[str, Any],
    settings: TrainingSettings,
    repeats: int,
) -> tuple[FittedFold, FoldOutcome, table_cv.OutOfFold]:
    """The table's cross-validation (the evaluated OOF metrics) and the refit on every
    row with its choices (the fit that is registered)."""
    categorical = list(schema["categorical"])
    oof = table_cv.cross_validate(
        x,
        y,
        categorical,
        folds=settings.table_folds,
        repeats=repeats,
        blend=settings.blend,
        budget_seconds=settings.tuning_budget_seconds,
        seed=settings.seed,
        threads=settings.threads,
        max_trials=settings.tuning_max_trials or None,
    )
    rule = schema["rule_column"]
    rule_values = x[rule].fillna(0).to_numpy(dtype="float64") if rule else None
    metrics = table_cv.oof_metrics(oof, y, rule_values, settings.capacity)
    refit = table_cv.refit_on_all_rows(x, y, categorical, oof, settings.seed)
    fitted = FittedFold(
        booster=refit.booster,
        params={**oof.choice.params, "num_iterations": refit.rounds},
        trials=oof.choice.trials,
        blend=refit.blend,
        blend_record=oof.blend_record,
        calibrator=refit.calibrator,
        calibration_scores=oof.calibration_scores,
        logistic=refit.logistic,
        categorical=categorical,
    )
    outcome = FoldOutcome(
        name="oof",
        metrics=metrics,
        segments={},
        best_iteration=oof.choice.best_rounds,
        calibration=oof.calibration,
        calibration_scores=oof.calibration_scores,
        describe=(
            f"out-of-fold: stratified {settings.table_folds}-fold CV x{repeats}, "
            f"seed {settings.seed}"
        ),
        blend=oof.blend_record,
    )
    return fitted, outcome, oof


def _table_model(
    fitted: FittedFold,
    x: pd.DataFrame,
    y: np.ndarray,
    schema: dict[str, Any],
    label: str,
    settings: TrainingSettings,
    oof: table_cv.OutOfFold,
    outcome: FoldOutcome,
) -> ChurnModel:
    """The model refit on every row, with their profile and the schema; its metadata say
    how it was evaluated and refit."""
    distribution = drift.distribution(x)
    return ChurnModel(
        kind=KIND_TABLE,
        booster=fitted.booster,
        calibrator=fitted.calibrator,
        blend=fitted.blend,
        feature_names=list(x.columns),
        categories={c: list(v) for c, v in schema["categorical"].items()},
        base_rate=float(y.mean()),
        table_schema=schema,
        metadata={
            "label_column": label,
            "evaluation": outcome.describe,
            "fit_rows": len(y),
            "refit_rounds": int(fitted.params["num_iterations"]),
            "cv_best_rounds": oof.choice.best_rounds,
            "chosen": _chosen_trial(oof.choice.trials),
            "trials": len(oof.choice.trials),
            "evaluated": {
                who: {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"]}
                for who, m in outcome.metrics.items()
            },
        },
        reference=ChurnModel.reference_statistics(x),
        distribution=distribution,
        input_schema=profile_schema(
            list(x.columns), schema["categorical"], distribution, table=True
        ),
    )


def _table_params(
    table: pd.DataFrame,
    source: Path | None,
    label: str,
    id_column: str | None,
    schema: dict[str, Any],
    settings: TrainingSettings,
    *,
    oof: table_cv.OutOfFold,
) -> dict[str, Any]:
    """The run's parameters about the table, its cross-validation and the refit."""
    rounds = table_cv.scaled_rounds(oof.choice.best_rounds, len(table), oof.fold_train_rows)
    return {
        "path": "table",
        "table": str(source) if source else "(frame)",
        "label_column": label,
        "id_column": id_column or "(row number)",
        "evaluation": (
            f"out-of-fold, stratified {oof.extra['folds']}-fold CV x{oof.extra['repeats']}, "
            f"seed {settings.seed}"
        ),
        "table_rows": len(table),
        "table_sha256": fingerprint(table),
        "rule_column": schema["rule_column"] or "(none)",
        "train_rows": f"{len(table)} of {len(table)} (the refit on every row)",
        "cv.fold_train_rows": round(oof.fold_train_rows, 1),
        "cv.trials": len(oof.choice.trials),
        "cv.chosen": _chosen_trial(oof.choice.trials)["candidate"],
        "cv.best_rounds": oof.choice.best_rounds,
        "refit.rounds": rounds,
        "refit.rounds_rule": (
            f"{oof.choice.best_rounds} CV rounds x {len(table)} rows / "
            f"{oof.fold_train_rows:.0f} rows a split"
        ),
        "refit.calibration": f"{oof.calibration} fitted on the out-of-fold scores",
        "dropped_columns": ",".join(schema["dropped"]) or "(none)",
    }


def _chosen_trial(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial whose parameters the model has (the lowest CV log loss, first on ties)."""
    return min(trials, key=lambda trial: (trial["cv_log_loss"], trial["trial"]))


def _table_champion_scores(rows: pd.DataFrame) -> ChampionScores:
    """The champion's scores of the table's rows (a table model's only). A table model is
    refit on every row of its table, so on the same table its scores would be of rows it
    was fitted on: such a champion cannot be compared here (a person can promote)."""

    def scores(champion: ChurnModel) -> np.ndarray:
        if champion.kind != KIND_TABLE:
            raise ModelError("it was trained on interaction logs")
        if "fit_rows" in champion.metadata:
            evaluated = champion.metadata.get("evaluated", {}).get("model", {})
            raise ModelError(
                f"it was refit on all {champion.metadata['fit_rows']} rows of its table, so "
                "its scores of these rows may be of rows it was fitted on (its out-of-fold "
                f"ROC-AUC: {_fmt(evaluated.get('roc_auc'))})"
            )
        predictor = Predictor(champion)
        return predictor.probability(predictor.prepare(champion.features_from_table(rows)))

    return scores


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# -- the stages after the fit ------------------------------------------------------------
def _gate_log_register(
    candidate: Candidate,
    champion_scores: ChampionScores,
    settings: TrainingSettings,
    *,
    as_of: str | None,
    say: Callable[[str], None],
) -> TrainResult:
    """The gate's evidence and decision, the MLflow run, the registered version and, when
    the gate passes, the champion alias."""
    env = environment()
    with tracking(settings) as client, tempfile.TemporaryDirectory(prefix="churnml-train-") as tmp:
        folder = Path(tmp)
        evidence = gather_evidence(
            client, settings, candidate.backtest, champion_scores, candidate.test_y
        )
        decision = promotion_gate(evidence, settings)
        if candidate.horizons is not None:
            decision = with_horizon_gate(decision, candidate.horizons.gate)
        with mlflow.start_run(experiment_id=experiment_id(client, settings)) as run:
            log_run(candidate, decision, evidence, settings, env, folder / "plots")
            say("logging and registering the model")
            version = register(
                client,
                settings,
                candidate.model,
                folder / "model",
                python_model=ChurnRiskPyfunc(),
                requirements=pip_requirements(env),
                run_id=run.info.run_id,
                gate=decision.verdict,
            )
            tag_run(candidate.model, decision, version)
            champion_version = evidence.champion_version
            if decision.promote:
                reason = " | ".join(decision.reasons)
                set_champion(
                    client, settings.model_name, version, action="gate", by="gate", reason=reason
                )
                champion_version = version
            say(decision.text())
            return TrainResult(
                run_id=run.info.run_id,
                model_version=version,
                model_uri=f"models:/{settings.model_name}/{version}",
                kind=candidate.model.kind,
                test=candidate.backtest.model.metrics,
                folds=candidate.backtest.folds,
                gate=decision,
                champion_version=champion_version,
                as_of=as_of,
                windows={
                    name: str(candidate.params[f"{name}.train_window"])
                    for name in ("evaluated", "refit")
                    if f"{name}.train_window" in candidate.params
                },
                call_effect=candidate.model.call_effect_gate,
                horizons=None if candidate.horizons is None else candidate.horizons.metrics[0],
            )


def _with_seconds(result: TrainResult, clock: dict[str, float]) -> TrainResult:
    marks = list(clock.items())
    seconds = {name: round(t - marks[i - 1][1], 2) for i, (name, t) in enumerate(marks) if i}
    seconds["total"] = round(marks[-1][1] - marks[0][1], 2)
    return TrainResult(**{**result.__dict__, "seconds": seconds})
