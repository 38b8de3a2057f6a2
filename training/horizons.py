"""Churn within several horizons from one model: the discrete-time hazard fit, its folds,
calibration, evaluation and gate (``model.horizons.HorizonModel`` is what it makes).

Rows: the same weekly snapshots as the churn model (``training.snapshots``), each with
the days from its day D to the customer's ``churned_at`` (``HorizonRows``). A snapshot is
expanded into one row per period of the horizons, ``(0, H1], (H1, H2], ...``, with the
period's last day as a feature and the label "churned in this period"
(``expand_periods``). Censoring: only what the data show by a cutoff (the data's end,
or the first validation day for a backtest fold) is used. A period contributes only when
the snapshot was at risk at its start (not churned before) and the whole period lies
before the cutoff; a period that reaches past the cutoff contributes nothing, neither
as churn nor as no churn, and nor do the later ones. (Counting the churners of a partly
seen period but not its stayers would inflate that period's hazard: the cutoff is a
fixed day, independent of the customer, so dropping the whole period leaves the
estimate unbiased.)

Folds (``horizon_folds``): the test and validation rows of a fold see every horizon in
full (D + longest horizon before the next part starts), so that every horizon has plain
0/1 labels there; the training rows are every snapshot before the first validation day,
censored at that day.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import ConfigError, DataError
from model.horizons import PERIOD_FEATURE, HorizonModel, period_matrix, periods
from training import learners
from training.metrics import evaluate
from training.settings import TrainingSettings
from training.snapshots import (
    EVALUATED,
    LABEL,
    RULE_CONTACTS,
    SAMPLE_RATE,
    SEGMENT_EVAL,
    SNAPSHOT_DATE,
)

NOT_FEATURES = {
    CUSTOMER_ID,
    LABEL,
    RULE_CONTACTS,
    SEGMENT_EVAL,
    SNAPSHOT_DATE,
    SAMPLE_RATE,
    EVALUATED,
}
DAY_NS = 86_400 * 10**9
MIN_CALIBRATION_ROWS = 50


# -- the horizons ------------------------------------------------------------------------
def parse_horizons(
    value: str | Sequence[int],
    training_horizon: int,
    *,
    history_days: int | None = None,
) -> tuple[int, ...]:
    """The horizons of ``--horizons`` (text ``"7,30,90"`` or numbers), checked: whole days,
    increasing, the training horizon among them, and (``history_days``: the days between
    the first snapshot a fold can use and as-of) none longer than the history allows.
    Raises ConfigError with one line naming the value and the fix."""
    shown = value if isinstance(value, str) else ",".join(map(str, value))
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    if not parts or all(str(p).strip() == "" for p in parts):
        raise ConfigError(
            f"--horizons {shown!r} is empty; pass whole days, e.g. --horizons 7,30,90"
        )
    horizons: list[int] = []
    for part in parts:
        text = str(part).strip()
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(
                f"--horizons {shown}: {text!r} is not a whole number of days >= 1; pass e.g. "
                "--horizons 7,30,90"
            )
        horizons.append(int(text))
    if any(b <= a for a, b in zip(horizons, horizons[1:], strict=False)):
        raise ConfigError(
            f"--horizons {shown}: the days must increase; pass them sorted without repeats, "
            f"e.g. {','.join(map(str, sorted(set(horizons))))}"
        )
    if training_horizon not in horizons:
        raise ConfigError(
            f"--horizons {shown} lacks the training horizon {training_horizon}; add it, e.g. "
            f"--horizons {','.join(map(str, sorted({*horizons, training_horizon})))}"
        )
    if history_days is not None and horizons[-1] >= history_days:
        raise ConfigError(
            f"--horizons {shown}: {horizons[-1]} days is longer than the history allows "
            f"({history_days} days of snapshots before as-of); use a shorter longest horizon "
            "or a later --as-of"
        )
    return tuple(horizons)


# -- rows --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HorizonRows:
    """Snapshot rows for the horizons: their features, day, days to churn (inf: no churn
    date in the table) and the rule baseline's contact count."""

    features: pd.DataFrame
    dates: np.ndarray  # datetime64[ns]
    days_to_churn: np.ndarray  # float64, >= 1 or inf
    rule: np.ndarray
    customer_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)

    def take(self, rows: np.ndarray) -> HorizonRows:
        return HorizonRows(
            self.features.iloc[rows],
            self.dates[rows],
            self.days_to_churn[rows],
            self.rule[rows],
            self.customer_ids[rows],
        )

    def on_days(self, days: Sequence[pd.Timestamp]) -> HorizonRows:
        wanted = np.array([pd.Timestamp(d).as_unit("ns").to_datetime64() for d in days])
        return self.take(np.flatnonzero(np.isin(self.dates, wanted)))

    def follow_up(self, cutoff: pd.Timestamp) -> np.ndarray:
        """Days each row is observed after its day, up to ``cutoff`` (the data's end)."""
        end = pd.Timestamp(cutoff).normalize().as_unit("ns").to_datetime64()
        return ((end - self.dates).astype("timedelta64[ns]").astype(np.int64) // DAY_NS).astype(
            np.float64
        )

    def labels_at(self, horizon: int, cutoff: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        """0/1 "churned within ``horizon`` days" and whether the data by ``cutoff`` tell it:
        only rows with all ``horizon`` days seen (an early churn of a row seen for less is
        left out too: keeping the churners but not the stayers of such rows would inflate
        the rate)."""
        follow = self.follow_up(cutoff)
        churned = (self.days_to_churn <= horizon) & (self.days_to_churn <= follow)
        return churned.astype(np.int8), follow >= horizon

    def survival(self, cutoff: pd.Timestamp) -> np.ndarray:
        """scikit-survival's structured array (event, time) with follow-up to ``cutoff``."""
        from sksurv.util import Surv

        follow = self.follow_up(cutoff)
        event = self.days_to_churn <= follow
        return Surv.from_arrays(event, np.where(event, self.days_to_churn, follow))


def horizon_rows(
    snapshots: pd.DataFrame, customers: pd.DataFrame, *, evaluated_only: bool = True
) -> HorizonRows:
    """``HorizonRows`` of a snapshot frame (``training.snapshots.build_snapshot_frame``);
    ``customers``: the table whose ``churned_at`` gives the days to churn. With sampled
    snapshots only the uniform sample (``EVALUATED``) is kept unless ``evaluated_only`` is
    false: the horizon model's rows must not over-represent the training horizon's
    churners."""
    rows = np.arange(len(snapshots))
    if evaluated_only and EVALUATED in snapshots:
        rows = np.flatnonzero(snapshots[EVALUATED].to_numpy(dtype=bool))
    frame = snapshots.iloc[rows]
    churned = pd.Series(
        pd.to_datetime(customers["churned_at"]).to_numpy(), index=customers[CUSTOMER_ID]
    )
    churn = churned.reindex(frame[CUSTOMER_ID].to_numpy()).to_numpy(dtype="datetime64[ns]")
    dates = frame[SNAPSHOT_DATE].to_numpy(dtype="datetime64[ns]")
    delta = (churn - dates).astype("timedelta64[ns]")
    days = np.where(np.isnat(delta), np.inf, delta.astype(np.int64) / DAY_NS)
    feature_names = [c for c in snapshots.columns if c not in NOT_FEATURES]
    rule = (
        frame[RULE_CONTACTS].to_numpy(dtype="float64")
        if RULE_CONTACTS in frame
        else np.zeros(len(frame))
    )
    return HorizonRows(
        frame[feature_names], dates, days.astype(np.float64), rule, frame[CUSTOMER_ID].to_numpy()
    )


def expand_periods(
    matrix: np.ndarray,
    days_to_churn: np.ndarray,
    follow_up: np.ndarray,
    horizons: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customer-period rows (the module's censoring rule): the features with the period's
    last day appended, the label (churned in the period) and the snapshot row of each."""
    matrices, labels, sources = [], [], []
    for start, end in periods(horizons):
        at_risk = days_to_churn > start
        seen = follow_up >= end
        rows = np.flatnonzero(at_risk & seen)
        matrices.append(period_matrix(matrix[rows], end))
        labels.append((days_to_churn[rows] <= end).astype(np.int8))
        sources.append(rows)
    return np.concatenate(matrices), np.concatenate(labels), np.concatenate(sources)


# -- folds -------------------------------------------------------------------------------
@dataclass(frozen=True)
class HorizonFold:
    """One time split for the horizons: training days (censored at ``train_cutoff``, the
    first validation day), validation days (early stopping and calibration; every horizon
    seen by ``validation_cutoff``, the first test day) and test days (seen to ``as_of``)."""

    number: int
    train: tuple[pd.Timestamp, ...]
    validation: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]
    as_of: pd.Timestamp

    @property
    def train_cutoff(self) -> pd.Timestamp:
        return self.validation[0]

    @property
    def validation_cutoff(self) -> pd.Timestamp:
        return self.test[0]

    def describe(self) -> str:
        def span(days: Sequence[pd.Timestamp]) -> str:
            return f"{days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d} ({len(days)})"

        return (
            f"horizon fold {self.number}: train {span(self.train)} censored at "
            f"{self.train_cutoff:%Y-%m-%d}, validation {span(self.validation)}, "
            f"test {span(self.test)}"
        )


def horizon_folds(
    dates: Sequence[pd.Timestamp],
    horizons: Sequence[int],
    settings: TrainingSettings,
    *,
    as_of: pd.Timestamp,
) -> list[HorizonFold]:
    """``settings.backtest_folds`` rolling folds over the snapshot ``dates``; fold 1 tests on
    the latest days whose longest horizon lies before ``as_of``. DataError naming the fix
    when the history is too short."""
    as_of = pd.Timestamp(as_of).normalize()
    longest = pd.Timedelta(days=max(horizons))
    dates = sorted(pd.Timestamp(d) for d in dates)
    complete = [d for d in dates if d + longest <= as_of]
    folds = []
    for k in range(settings.backtest_folds):
        end = len(complete) - k * settings.test_snapshots
        test = complete[max(end - settings.test_snapshots, 0) : max(end, 0)]
        validation = [d for d in complete if test and d + longest < test[0]]
        validation = validation[-settings.validation_snapshots :]
        train = [d for d in dates if validation and d < validation[0]]
        if (
            len(test) < settings.test_snapshots
            or len(validation) < settings.validation_snapshots
            or not train
        ):
            raise DataError(
                f"as-of {as_of:%Y-%m-%d}: {len(complete)} snapshots have all {max(horizons)} "
                f"days of the longest horizon before as-of, too few for "
                f"{settings.backtest_folds} backtest folds of the horizons; use a shorter "
                "longest --horizons value, fewer --backtest folds or a later --as-of"
            )
        folds.append(HorizonFold(k + 1, tuple(train), tuple(validation), tuple(test), as_of))
    return folds


# -- the fit -----------------------------------------------------------------------------
@dataclass
class HorizonFit:
    """One fold's fitted horizon model and what the fit chose."""

    model: HorizonModel
    rounds: int
    train_rows: int  # customer-period rows
    calibration: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0


def _categories(features: pd.DataFrame) -> dict[str, list[str]]:
    return {
        c: [str(v) for v in features[c].cat.categories]
        for c in features.columns
        if isinstance(features[c].dtype, pd.CategoricalDtype)
    }


def _params(
    n_rows: int, n_positive: int, settings: TrainingSettings, columns: list[str]
) -> dict[str, Any]:
    params = learners.lightgbm_params(n_rows, n_positive, settings.seed, settings.threads)
    # The known directions hold for the hazard of every period as for the 30-day churn;
    # the period's column is left free (a longer period has a larger hazard anyway).
    return learners.monotone_params(params, columns)


def fit_horizon_model(
    train: HorizonRows,
    validation: HorizonRows,
    horizons: Sequence[int],
    settings: TrainingSettings,
    *,
    train_cutoff: pd.Timestamp,
    validation_cutoff: pd.Timestamp,
    training_horizon: int | None = None,
    calibrate: bool = True,
) -> HorizonFit:
    """One LightGBM over the training rows' customer-period rows (censored at
    ``train_cutoff``), early-stopped on the validation rows' (censored at
    ``validation_cutoff``), then a calibrator per horizon on the validation rows whose
    label is known (isotonic or Platt, whichever predicts better out of sample:
    ``learners.choose_calibrator``)."""
    started = time.perf_counter()
    horizons = tuple(sorted(int(h) for h in horizons))
    feature_names = list(train.features.columns)
    categories = _categories(train.features)
    matrix = _matrix(train.features, feature_names, categories)
    x, y, _ = expand_periods(matrix, train.days_to_churn, train.follow_up(train_cutoff), horizons)
    valid_matrix = _matrix(validation.features, feature_names, categories)
    vx, vy, _ = expand_periods(
        valid_matrix, validation.days_to_churn, validation.follow_up(validation_cutoff), horizons
    )
    if y.sum() == 0 or vy.sum() == 0:
        raise DataError(
            "horizons: no customer churned within the longest horizon in the training or "
            "validation snapshots; use a later --as-of or fewer --backtest folds"
        )
    columns = [*feature_names, PERIOD_FEATURE]
    categorical = [i for i, name in enumerate(feature_names) if name in categories]
    params = _params(len(y), int(y.sum()), settings, columns)
    train_set = lgb.Dataset(
        x, label=y, feature_name=columns, categorical_feature=categorical, free_raw_data=True
    )
    valid_set = lgb.Dataset(vx, label=vy, reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=learners.MAX_BOOST_ROUNDS,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(learners.EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    rounds = int(booster.best_iteration or booster.current_iteration())
    booster = _trimmed(booster, rounds)
    model = HorizonModel(
        booster=booster,
        horizons=horizons,
        feature_names=feature_names,
        categories=categories,
        training_horizon=training_horizon,
        metadata={"rounds": rounds, "train_cutoff": f"{pd.Timestamp(train_cutoff):%Y-%m-%d}"},
    )
    chosen: dict[int, str] = {}
    if calibrate:
        chosen = _calibrate(model, validation, valid_matrix, validation_cutoff, settings.seed)
        model.metadata["calibration"] = {str(h): m for h, m in chosen.items()}
    return HorizonFit(model, rounds, len(y), chosen, time.perf_counter() - started)


def refit_horizon_model(
    rows: HorizonRows,
    fitted: HorizonFit,
    settings: TrainingSettings,
    *,
    cutoff: pd.Timestamp,
) -> HorizonModel:
    """The model to register: the booster refit on every row censored at ``cutoff`` (the
    data's end: the latest weeks contribute their short periods), with the evaluated
    fold's rounds scaled by the rows and its calibrators."""
    model = fitted.model
    matrix = _matrix(rows.features, model.feature_names, model.categories)
    x, y, _ = expand_periods(matrix, rows.days_to_churn, rows.follow_up(cutoff), model.horizons)
    columns = [*model.feature_names, PERIOD_FEATURE]
    categorical = [i for i, name in enumerate(model.feature_names) if name in model.categories]
    params = _params(len(y), int(y.sum()), settings, columns)
    rounds = max(1, round(fitted.rounds * len(y) / max(fitted.train_rows, 1)))
    booster = lgb.train(
        params,
        lgb.Dataset(x, label=y, feature_name=columns, categorical_feature=categorical),
        num_boost_round=rounds,
    )
    return HorizonModel(
        booster=booster,
        horizons=model.horizons,
        feature_names=model.feature_names,
        categories=model.categories,
        calibrators=dict(model.calibrators),
        training_horizon=model.training_horizon,
        metadata={
            **model.metadata,
            "rounds": rounds,
            "train_cutoff": f"{pd.Timestamp(cutoff):%Y-%m-%d}",
            "refit": f"{fitted.rounds} rounds x {len(y)} / {fitted.train_rows} rows; "
            "the evaluated fold's calibrators",
        },
    )


def _trimmed(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """The booster with its first ``rounds`` trees only (what early stopping chose)."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))


def _matrix(
    features: pd.DataFrame, feature_names: list[str], categories: dict[str, list[str]]
) -> np.ndarray:
    from model.call_effect import feature_matrix

    return feature_matrix(features, feature_names, categories)


def _calibrate(
    model: HorizonModel,
    validation: HorizonRows,
    matrix: np.ndarray,
    cutoff: pd.Timestamp,
    seed: int,
) -> dict[int, str]:
    raw = model.raw_curve(matrix)
    chosen = {}
    for k, horizon in enumerate(model.horizons):
        y, known = validation.labels_at(horizon, cutoff)
        y, p = y[known], raw[known, k]
        if len(y) < MIN_CALIBRATION_ROWS or y.min() == y.max():
            chosen[horizon] = "none (too few validation rows with both outcomes)"
            continue
        calibrator, _ = learners.choose_calibrator(
            p, y, validation.customer_ids[known], seed + horizon
        )
        model.calibrators[horizon] = calibrator
        chosen[horizon] = calibrator.method
    return chosen


# -- evaluation --------------------------------------------------------------------------
def baseline_scores(
    train: HorizonRows,
    test: HorizonRows,
    horizons: Sequence[int],
    *,
    train_cutoff: pd.Timestamp,
    seed: int,
) -> dict[int, dict[str, np.ndarray]]:
    """Per horizon the baselines' scores of the test rows: a logistic regression on the
    training rows whose label at that horizon is known by ``train_cutoff``
    (``learners.fit_logistic_baseline``'s unconstrained fit) and the rule (contacts in the
    last 30 days)."""
    categorical = list(_categories(train.features))
    scores: dict[int, dict[str, np.ndarray]] = {}
    for horizon in horizons:
        y, known = train.labels_at(horizon, train_cutoff)
        entry = {"rule": test.rule}
        if 0 < y[known].sum() < known.sum():
            pipeline = _logistic(train.features, categorical, seed)
            rows = np.flatnonzero(known)
            if len(rows) > learners.LOGISTIC_MAX_ROWS:
                rows = np.sort(
                    np.random.default_rng(seed).choice(
                        rows, learners.LOGISTIC_MAX_ROWS, replace=False
                    )
                )
            pipeline.fit(_for_sklearn(train.features.iloc[rows], categorical), y[rows])
            entry["logistic"] = pipeline.predict_proba(_for_sklearn(test.features, categorical))[
                :, 1
            ]
        scores[int(horizon)] = entry
    return scores


def _logistic(features: pd.DataFrame, categorical: list[str], seed: int) -> Any:
    """A plain logistic regression on the features: median imputation and scaling of the
    numbers, one-hot of the categories (the churn model's baseline without its known
    directions: a competitor is not held to them)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in features.columns if c not in categorical]
    encoder = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(encoder, LogisticRegression(max_iter=300, random_state=seed))


def _for_sklearn(features: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Categories as text (missing: None) and numbers as float64, which sklearn takes."""
    out = {}
    for column in features.columns:
        values = features[column]
        if column in categorical:
            out[column] = values.astype("object").where(values.notna(), None).to_numpy()
        else:
            out[column] = pd.to_numeric(values, errors="coerce").to_numpy(
                "float64", na_value=np.nan
            )
    return pd.DataFrame(out, index=features.index)


def evaluate_horizons(
    model: HorizonModel,
    test: HorizonRows,
    *,
    cutoff: pd.Timestamp,
    capacity: int,
    baselines: dict[int, dict[str, np.ndarray]] | None = None,
    curve: np.ndarray | None = None,
) -> dict[int, dict[str, dict[str, float]]]:
    """Per horizon, ``{"model": metrics, <baseline>: metrics}`` on the test rows whose label
    at that horizon is known by ``cutoff`` (``training.metrics.evaluate``: ROC-AUC, PR-AUC,
    Brier, ECE, ...; the rule's are ranking metrics only)."""
    curve = model.curve(test.features) if curve is None else curve
    dates = test.dates
    results: dict[int, dict[str, dict[str, float]]] = {}
    for k, horizon in enumerate(model.horizons):
        y, known = test.labels_at(horizon, cutoff)
        entry = {
            "model": evaluate(y[known], curve[known, k], capacity=capacity, dates=dates[known])
        }
        for who, score in (baselines or {}).get(horizon, {}).items():
            entry[who] = evaluate(
                y[known],
                score[known],
                capacity=capacity,
                dates=dates[known],
                probabilities=who != "rule",
            )
        results[horizon] = entry
    return results


def survival_metrics(
    survival_probability: np.ndarray,
    times: Sequence[int],
    train: HorizonRows,
    test: HorizonRows,
    *,
    train_cutoff: pd.Timestamp,
    test_cutoff: pd.Timestamp,
) -> dict[str, float]:
    """The curve's metrics as scikit-survival computes them (``sksurv.metrics``): Uno's
    concordance (``concordance_index_ipcw``, risk = 1 - S at the longest time, truncated
    there), the integrated Brier score over ``times`` and the time-dependent AUC at each
    of ``times`` with its mean (``cumulative_dynamic_auc``). The censoring distribution is
    the training rows' (follow-up to ``train_cutoff``). ``survival_probability``: S(t) of
    each test row at each of ``times``. A metric the rows cannot give is NaN."""
    from sksurv.metrics import (
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )

    times = np.asarray(sorted(times), dtype=np.float64)
    y_train = train.survival(train_cutoff)
    y_test = test.survival(test_cutoff)
    # Times beyond the censoring estimate's reach have no weight: sksurv needs the test
    # follow-up within the training follow-up.
    # (the censoring estimate is 0 at the training rows' longest follow-up itself).
    reach = float(y_train["time"].max()) - 1.0
    y_test = _capped(y_test, reach)
    out: dict[str, float] = {}
    risk = 1.0 - survival_probability
    try:
        out["uno_c"] = float(
            concordance_index_ipcw(y_train, y_test, risk[:, -1], tau=float(times[-1]))[0]
        )
    except ValueError:
        out["uno_c"] = float("nan")
    try:
        out["integrated_brier"] = float(
            integrated_brier_score(y_train, y_test, survival_probability, times)
        )
    except ValueError:
        out["integrated_brier"] = float("nan")
    try:
        aucs, mean_auc = cumulative_dynamic_auc(y_train, y_test, risk, times)
        out.update({f"td_auc_{int(t)}d": float(a) for t, a in zip(times, aucs, strict=True)})
        out["td_auc_mean"] = float(mean_auc)
    except ValueError:
        out["td_auc_mean"] = float("nan")
    return out


def _capped(y: np.ndarray, reach: float) -> np.ndarray:
    """Survival data censored at ``reach`` days (what the censoring estimate covers)."""
    from sksurv.util import Surv

    beyond = y["time"] > reach
    return Surv.from_arrays(y["event"] & ~beyond, np.where(beyond, reach, y["time"]))


# -- the gate ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HorizonGate:
    """Whether every horizon beat every baseline on every fold's held-out rows."""

    passed: bool
    reasons: tuple[str, ...]


def horizon_gate(
    folds: Sequence[dict[int, dict[str, dict[str, float]]]],
    served_by_churn_model: int | None = None,
) -> HorizonGate:
    """The gate's check for the horizons: on each backtest fold (as
    ``training.promotion.promotion_gate`` reads the churn model's), each horizon's ROC-AUC
    must beat the logistic regression's and the rule's (``evaluate_horizons`` per fold).

    ``served_by_churn_model``: the training horizon, whose served probability is the churn
    model's own (the curve is anchored there, ``model.predictor``) and is gated by the churn
    model's checks; the hazard model's raw value there is reported, not gated."""
    losses, failing = [], []
    for number, fold in enumerate(folds, start=1):
        for horizon, entry in sorted(fold.items()):
            if horizon == served_by_churn_model:
                continue
            model = entry["model"]["roc_auc"]
            for who in ("logistic", "rule"):
                if who not in entry:
                    losses.append(
                        f"fold {number} {horizon}d: no {who} baseline (no training row sees "
                        f"all {horizon} days before the validation days: a longer history)"
                    )
                    failing.append(horizon)
                    continue
                other = entry[who]["roc_auc"]
                if not model > other:
                    losses.append(
                        f"fold {number} {horizon}d: ROC-AUC {model:.4f} vs {who} {other:.4f}"
                    )
                    failing.append(horizon)
    if losses:
        named = ", ".join(f"{h}d" for h in sorted(set(failing)))
        return HorizonGate(
            False,
            (f"horizon {named} does not beat the baselines (" + ", ".join(losses) + ")",),
        )
    horizons = sorted({h for fold in folds for h in fold} - {served_by_churn_model})
    anchored = (
        f"; {served_by_churn_model} days is the churn model's probability, gated with it"
        if served_by_churn_model is not None
        else ""
    )
    return HorizonGate(
        True,
        (
            f"every horizon ({','.join(map(str, horizons))} days) beats the baselines on all "
            f"{len(folds)} folds{anchored}",
        ),
    )


# -- the backtest ------------------------------------------------------------------------
@dataclass
class HorizonBacktest:
    """Every fold's metrics, the gate and the model to register."""

    folds: list[HorizonFold]
    metrics: list[dict[int, dict[str, dict[str, float]]]]
    survival: list[dict[str, float]]
    gate: HorizonGate
    fitted: HorizonFit  # fold 1's
    model: HorizonModel  # fold 1's fit, refit on every row unless ``refit`` was false
    seconds: dict[str, float] = field(default_factory=dict)
    # Fold 1's test rows per horizon: {"predicted": mean probability, "observed": churn
    # rate, "rows": rows whose label is known} (the curve plot of the MLflow run).
    curve_check: dict[int, dict[str, float]] = field(default_factory=dict)

    def log_metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: fold 1's per horizon (``horizon_30d.test_roc_auc``) and the
        curve's (``horizons.test_uno_c``)."""
        out: dict[str, float] = {}
        for horizon, entry in self.metrics[0].items():
            for name in ("roc_auc", "pr_auc", "brier", "ece"):
                out[f"horizon_{horizon}d.test_{name}"] = entry["model"][name]
            for who in ("logistic", "rule"):
                if who in entry:
                    out[f"horizon_{horizon}d.{who}_test_roc_auc"] = entry[who]["roc_auc"]
        out.update({f"horizons.test_{k}": v for k, v in self.survival[0].items()})
        for number, fold in enumerate(self.metrics[1:], start=2):
            for horizon, entry in fold.items():
                out[f"horizon_{horizon}d.fold{number}_roc_auc"] = entry["model"]["roc_auc"]
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def backtest_horizons(
    rows: HorizonRows,
    horizons: Sequence[int],
    settings: TrainingSettings,
    *,
    as_of: pd.Timestamp,
    refit: bool = True,
) -> HorizonBacktest:
    """Fit and evaluate the horizon model on every fold of ``horizon_folds``, the gate over
    them, and the model to register (fold 1's, refit on every row censored at ``as_of``)."""
    horizons = tuple(sorted(int(h) for h in horizons))
    as_of = pd.Timestamp(as_of).normalize()
    dates = sorted(pd.Timestamp(d) for d in pd.unique(rows.dates))
    folds = horizon_folds(dates, horizons, settings, as_of=as_of)
    metrics, survival, seconds = [], [], {}
    first_fit = None
    for fold in folds:
        train, validation, test = (
            rows.on_days(fold.train),
            rows.on_days(fold.validation),
            rows.on_days(fold.test),
        )
        fit = fit_horizon_model(
            train,
            validation,
            horizons,
            settings,
            train_cutoff=fold.train_cutoff,
            validation_cutoff=fold.validation_cutoff,
            training_horizon=settings.horizon_days,
        )
        seconds[f"fold{fold.number}.fit"] = round(fit.seconds, 2)
        curve = fit.model.curve(test.features)
        baselines = baseline_scores(
            train, test, horizons, train_cutoff=fold.train_cutoff, seed=settings.seed
        )
        metrics.append(
            evaluate_horizons(
                fit.model,
                test,
                cutoff=as_of,
                capacity=settings.capacity,
                baselines=baselines,
                curve=curve,
            )
        )
        survival.append(
            survival_metrics(
                1.0 - curve,
                horizons,
                train,
                test,
                train_cutoff=fold.train_cutoff,
                test_cutoff=as_of,
            )
        )
        if first_fit is None:
            first_fit = fit
            curve_check = _curve_check(curve, test, horizons, as_of)
    model = first_fit.model
    if refit:
        started = time.perf_counter()
        model = refit_horizon_model(rows, first_fit, settings, cutoff=as_of)
        seconds["refit"] = round(time.perf_counter() - started, 2)
    return HorizonBacktest(
        folds,
        metrics,
        survival,
        horizon_gate(metrics, served_by_churn_model=settings.horizon_days),
        first_fit,
        model,
        seconds,
        curve_check,
    )


def _curve_check(
    curve: np.ndarray, test: HorizonRows, horizons: Sequence[int], cutoff: pd.Timestamp
) -> dict[int, dict[str, float]]:
    """Mean predicted probability and observed churn rate per horizon on ``test``'s rows
    whose label is known by ``cutoff``."""
    out = {}
    for k, horizon in enumerate(horizons):
        y, known = test.labels_at(horizon, cutoff)
        out[int(horizon)] = {
            "predicted": float(curve[known, k].mean()) if known.any() else float("nan"),
            "observed": float(y[known].mean()) if known.any() else float("nan"),
            "rows": int(known.sum()),
        }
    return out
