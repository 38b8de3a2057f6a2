"""The call-effect head of a training run: its rows, time folds, evaluation, gate and refit.

Rows (``call_effect_rows``): one per pick of the retention team (``retention_contacts``,
treated and control). A pick on day c is a call on "the next day" of D = c - 1, the
contract's call effect on D; its features are the customer's point-in-time churn
features as of D (the churn model's builder and settings) and their retention history
as of D (``features.retention``); its label is churn within (D, D + H]. Only picks whose
label is complete by ``as_of`` (D + H <= as_of) of customers active on D. ``t`` = 1
treated, 0 control; the propensity is the treated share of the picks (the team's random
holdout).

Evaluation (``evaluate_call_effect``): rolling time folds over the picks' days, like the
churn model's: each validation block of days is preceded by a gap of one horizon before
its training picks end, so no training label reaches into it. On each, Qini, AUUC and
uplift at K (K = the list's capacity, at most the block's picks) with bootstrap
intervals, from the treated and control picks alone, for the learner and for ranking the
same picks by the churn model's risk.

Gate (``call_effect_gate``): the head is promoted (the list may rank by saved revenue)
only when its mean uplift at K over the validation folds beats ranking by risk; else the
model records that the list keeps ranking by risk, and why. The head that is registered
is refit on every complete pick (``fit_call_effect_head``).

Contamination of the churn target (``treated_snapshot_rows``): a customer called near a
snapshot has a label the call changed. The churn model's target is the risk without a
call: a snapshot row on D is left out of churn training (and its metrics) when the
customer was treated on a day c with D - H < c <= D + H (a call inside the label window,
or one within a horizon before it, whose effect is assumed to last one horizon). Control
picks and customers never picked stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import DataError
from features.retention import CONTACTED_AT, GROUP, TREATED, retention_history_features
from model.artifact import RANK_BY_RISK, RANK_BY_SAVED_REVENUE
from model.call_effect import CallEffectModel
from training import uplift
from training.snapshots import SNAPSHOT_DATE, FeatureBuilder
from training.uplift_metrics import evaluate_uplift

DAY = "effect_day"  # D of a row: the day before the pick
EFFECT_FOLDS = 3
BOOTSTRAP_SAMPLES = 200


@dataclass
class EffectRows:
    """The call-effect rows (see the module): features, treatment, label, D, customer."""

    features: pd.DataFrame
    t: np.ndarray
    y: np.ndarray
    day: np.ndarray
    customer_id: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    @property
    def propensity(self) -> float:
        """The treated share of the picks (the team's random holdout)."""
        return float(np.mean(self.t)) if len(self.t) else float("nan")

    def take(self, rows: np.ndarray) -> EffectRows:
        return EffectRows(
            self.features.iloc[rows].reset_index(drop=True),
            self.t[rows],
            self.y[rows],
            self.day[rows],
            self.customer_id[rows],
        )


def call_effect_rows(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    retention_contacts: pd.DataFrame,
    builder: FeatureBuilder,
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
) -> EffectRows:
    """The call-effect rows of the picks in ``retention_contacts`` whose label is complete
    by ``as_of`` (see the module); ``builder`` is the churn model's feature builder."""
    as_of = pd.Timestamp(as_of).normalize()
    horizon = pd.Timedelta(days=horizon_days)
    picks = retention_contacts[[CUSTOMER_ID, CONTACTED_AT, GROUP]].copy()
    picks[CUSTOMER_ID] = picks[CUSTOMER_ID].astype(str)
    picks[DAY] = pd.to_datetime(picks[CONTACTED_AT]).dt.normalize() - pd.Timedelta(days=1)
    picks = picks[picks[DAY] + horizon <= as_of]
    facts = customers.assign(**{CUSTOMER_ID: customers[CUSTOMER_ID].astype(str)}).set_index(
        CUSTOMER_ID
    )[["signup_date", "churned_at"]]
    known = picks[CUSTOMER_ID].isin(facts.index)
    picks = picks[known]
    signup = facts["signup_date"].reindex(picks[CUSTOMER_ID]).to_numpy()
    churned = pd.to_datetime(facts["churned_at"].reindex(picks[CUSTOMER_ID])).to_numpy()
    day = picks[DAY].to_numpy()
    active = (signup <= day) & (pd.isna(churned) | (churned > day))
    picks = picks[active].sort_values([DAY, CUSTOMER_ID], kind="stable").reset_index(drop=True)
    if picks.empty:
        return _no_rows()
    churned = pd.to_datetime(facts["churned_at"].reindex(picks[CUSTOMER_ID])).to_numpy()
    day = picks[DAY].to_numpy()
    label = (~pd.isna(churned)) & (churned > day) & (churned <= day + horizon.to_timedelta64())
    picked = customers[customers[CUSTOMER_ID].astype(str).isin(set(picks[CUSTOMER_ID]))]
    days = sorted(pd.Timestamp(d) for d in picks[DAY].unique())
    by_day = builder(picked, interactions, days)
    parts = []
    for d in days:
        on_day = picks[picks[DAY] == d]
        features = by_day[d]
        features = features.set_axis(features.index.astype(str)).reindex(on_day[CUSTOMER_ID])
        history = retention_history_features(
            retention_contacts, as_of=d, customer_ids=on_day[CUSTOMER_ID].to_numpy()
        )
        for column in history.columns:
            features[column] = history[column].to_numpy()
        parts.append(features.reset_index(drop=True))
    frame = _concat(parts)
    treated = picks[GROUP].astype("string").fillna(TREATED) == TREATED
    return EffectRows(
        features=frame,
        t=treated.to_numpy(dtype="int8"),
        y=label.astype("int8"),
        day=day,
        customer_id=picks[CUSTOMER_ID].to_numpy(dtype=object),
    )


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The days' frames as one; categorical columns as text (their categories differ by
    day), which the learner reads as categories."""
    frame = pd.concat(
        [
            p.apply(lambda c: c.astype("object") if isinstance(c.dtype, pd.CategoricalDtype) else c)
            for p in parts
        ],
        ignore_index=True,
    )
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    return frame


def _no_rows() -> EffectRows:
    empty = np.array([], dtype="int8")
    return EffectRows(pd.DataFrame(), empty, empty, np.array([], "M8[ns]"), np.array([], object))


def treated_snapshot_rows(
    snapshots: pd.DataFrame, retention_contacts: pd.DataFrame | None, horizon_days: int
) -> np.ndarray:
    """True for the snapshot rows whose customer was treated on a day c with
    D - H < c <= D + H (see the module): rows the churn model's target leaves out."""
    out = np.zeros(len(snapshots), dtype=bool)
    if retention_contacts is None or retention_contacts.empty or snapshots.empty:
        return out
    group = retention_contacts[GROUP].astype("string").fillna(TREATED)
    calls = retention_contacts.loc[group == TREATED, [CUSTOMER_ID, CONTACTED_AT]]
    if calls.empty:
        return out
    call_day = pd.to_datetime(calls[CONTACTED_AT]).dt.normalize().to_numpy()
    call_customer = calls[CUSTOMER_ID].astype(str).to_numpy()
    ids = snapshots[CUSTOMER_ID].astype(str).to_numpy()
    days = snapshots[SNAPSHOT_DATE].to_numpy()
    horizon = np.timedelta64(horizon_days, "D")
    rows = pd.DataFrame({"id": ids, "day": days, "row": np.arange(len(ids))})
    hits = rows.merge(pd.DataFrame({"id": call_customer, "call": call_day}), on="id")
    near = (hits["call"] > hits["day"] - horizon) & (hits["call"] <= hits["day"] + horizon)
    out[hits.loc[near, "row"].to_numpy()] = True
    return out


# -- folds and evaluation ----------------------------------------------------------------
@dataclass(frozen=True)
class EffectFold:
    number: int
    train_until: pd.Timestamp  # training picks have D + H < validation_start
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp  # exclusive

    def describe(self) -> str:
        return (
            f"effect fold {self.number}: train D < {self.train_until:%Y-%m-%d}, validation "
            f"{self.validation_start:%Y-%m-%d}.."
            f"{self.validation_end - pd.Timedelta(days=1):%Y-%m-%d}"
        )


def effect_folds(
    days: np.ndarray, horizon_days: int, folds: int = EFFECT_FOLDS
) -> list[EffectFold]:
    """Rolling folds over the picks' days: the span cut in ``folds + 1`` equal blocks of
    days; fold k validates on block k (the latest first) and trains on the picks whose
    label ends before it (D + H < its first day)."""
    if len(days) == 0:
        return []
    first, last = pd.Timestamp(np.min(days)), pd.Timestamp(np.max(days)) + pd.Timedelta(days=1)
    block = (last - first) / (folds + 1)
    out = []
    for k in range(folds):
        end = last - block * k
        start = end - block
        out.append(
            EffectFold(
                number=k + 1,
                train_until=(start - pd.Timedelta(days=horizon_days)).normalize(),
                validation_start=start,
                validation_end=end,
            )
        )
    return out


@dataclass
class EffectEvaluation:
    """Per fold: metrics of the learner ("model") and of ranking by risk ("risk"), or why
    the fold was skipped; and the capacity K the uplift at K used."""

    capacity: int
    folds: list[dict[str, Any]] = field(default_factory=list)

    def usable(self) -> list[dict[str, Any]]:
        return [f for f in self.folds if "skipped" not in f]

    def mean(self, who: str, metric: str) -> float:
        values = [f[who][metric] for f in self.usable() if np.isfinite(f[who][metric])]
        return float(np.mean(values)) if values else float("nan")

    def flat_metrics(self) -> dict[str, float]:
        """As MLflow metrics: ``effect_fold<k>_<who>_<metric>`` and the folds' means."""
        out: dict[str, float] = {}
        for fold in self.usable():
            for who in ("model", "risk"):
                for name, value in fold[who].items():
                    out[f"effect_fold{fold['number']}_{who}_{name}"] = float(value)
        for who in ("model", "risk"):
            for name in ("qini", "auuc", "uplift_at_k"):
                out[f"effect_{who}_{name}"] = self.mean(who, name)
        return {k: v for k, v in out.items() if np.isfinite(v)}


RiskOf = Callable[[pd.DataFrame], np.ndarray]


def evaluate_call_effect(
    rows: EffectRows,
    risk_of: RiskOf,
    *,
    horizon_days: int,
    capacity: int,
    learner: str = uplift.DEFAULT_LEARNER,
    folds: int = EFFECT_FOLDS,
    seed: int = 0,
    threads: int = 1,
    true_effect: np.ndarray | None = None,
) -> EffectEvaluation:
    """The learner and ranking by ``risk_of`` (the churn model's probability of the rows'
    features) on each time fold of ``rows`` (see the module); with ``true_effect`` (one per
    row, the simulator's oracle) also the true-effect measures."""
    evaluation = EffectEvaluation(capacity=capacity)
    for fold in effect_folds(rows.day, horizon_days, folds):
        day = pd.to_datetime(rows.day)
        train = np.flatnonzero(day < fold.train_until)
        valid = np.flatnonzero((day >= fold.validation_start) & (day < fold.validation_end))
        record: dict[str, Any] = {"number": fold.number, "describe": fold.describe()}
        try:
            model = uplift.fit(
                rows.features.iloc[train],
                rows.t[train],
                rows.y[train],
                rows.take(train).propensity,
                learner=learner,
                seed=seed,
                threads=threads,
            )
            _check_validation(rows.take(valid))
        except DataError as error:
            record["skipped"] = str(error)
            evaluation.folds.append(record)
            continue
        part = rows.take(valid)
        k = min(capacity, len(part))
        truth = None if true_effect is None else true_effect[valid]
        record["rows"] = {"train": len(train), "validation": len(valid), "k": k}
        for who, score in (
            ("model", model.predict(part.features)),
            ("risk", np.asarray(risk_of(part.features), dtype="float64")),
        ):
            metrics = evaluate_uplift(
                score,
                part.t,
                part.y,
                capacity=k,
                true_effect=truth,
                samples=BOOTSTRAP_SAMPLES,
                seed=seed,
            )
            record[who] = {_generic(name, k): value for name, value in metrics.items()}
        evaluation.folds.append(record)
    return evaluation


def _generic(name: str, k: int) -> str:
    return name.replace(f"_at_{k}", "_at_k")


def _check_validation(part: EffectRows) -> None:
    if len(part) == 0 or part.t.all() or not part.t.any():
        raise DataError(
            f"the validation block has {int(part.t.sum())} treated and "
            f"{int(len(part) - part.t.sum())} control picks; both groups are needed"
        )


def call_effect_gate(evaluation: EffectEvaluation) -> dict[str, Any]:
    """The head's gate: promoted (the list ranks by saved revenue) only when its mean
    uplift at K over the usable validation folds beats ranking by risk; else the list
    keeps ranking by risk, with the reason."""
    model = evaluation.mean("model", "uplift_at_k")
    risk = evaluation.mean("risk", "uplift_at_k")
    usable = len(evaluation.usable())
    record: dict[str, Any] = {
        "capacity": evaluation.capacity,
        "folds_used": usable,
        "folds": len(evaluation.folds),
        "model_uplift_at_k": model,
        "risk_uplift_at_k": risk,
    }
    if usable == 0 or not (np.isfinite(model) and np.isfinite(risk)):
        skipped = "; ".join(f.get("skipped", "") for f in evaluation.folds if "skipped" in f)
        reason = "keep ranking by risk: no validation fold could measure the call effect" + (
            f" ({skipped[:300]})" if skipped else ""
        )
        return {**record, "promoted": False, "rank_by": RANK_BY_RISK, "reason": reason}
    if model > risk:
        reason = (
            f"rank by saved revenue: the call-effect model's uplift at K={evaluation.capacity} "
            f"({model:+.4f}, mean of {usable} validation fold(s)) beats ranking by risk "
            f"({risk:+.4f})"
        )
        return {**record, "promoted": True, "rank_by": RANK_BY_SAVED_REVENUE, "reason": reason}
    reason = (
        f"keep ranking by risk: the call-effect model's uplift at K={evaluation.capacity} "
        f"({model:+.4f}, mean of {usable} validation fold(s)) does not beat ranking by risk "
        f"({risk:+.4f})"
    )
    return {**record, "promoted": False, "rank_by": RANK_BY_RISK, "reason": reason}


@dataclass
class CallEffectHead:
    """What a run's call-effect stage made: the head refit on every complete pick (None
    when the picks cannot give one), the evaluation, the gate's record, MLflow params."""

    model: CallEffectModel | None
    evaluation: EffectEvaluation
    gate: dict[str, Any]
    params: dict[str, Any]


def fit_call_effect_head(
    rows: EffectRows,
    risk_of: RiskOf,
    *,
    horizon_days: int,
    capacity: int,
    learner: str = uplift.DEFAULT_LEARNER,
    folds: int = EFFECT_FOLDS,
    seed: int = 0,
    threads: int = 1,
) -> CallEffectHead:
    """Evaluate on the time folds, decide the gate, refit on every row (see the module)."""
    evaluation = evaluate_call_effect(
        rows,
        risk_of,
        horizon_days=horizon_days,
        capacity=capacity,
        learner=learner,
        folds=folds,
        seed=seed,
        threads=threads,
    )
    gate = call_effect_gate(evaluation)
    params: dict[str, Any] = {
        "effect.rows": len(rows),
        "effect.treated_rows": int(rows.t.sum()),
        "effect.control_rows": int(len(rows) - rows.t.sum()),
        "effect.propensity": round(rows.propensity, 6) if len(rows) else "n/a",
        "effect.learner": learner,
        "effect.capacity": capacity,
        **{f"effect.fold{f['number']}": f["describe"] for f in evaluation.folds},
        **{
            f"effect.fold{f['number']}.skipped": f["skipped"][:500]
            for f in evaluation.folds
            if "skipped" in f
        },
    }
    try:
        model = uplift.fit(
            rows.features,
            rows.t,
            rows.y,
            rows.propensity,
            learner=learner,
            seed=seed,
            threads=threads,
        )
    except DataError as error:
        gate = {
            **gate,
            "promoted": False,
            "rank_by": RANK_BY_RISK,
            "reason": f"keep ranking by risk: no call-effect model could be fitted ({error})",
        }
        return CallEffectHead(None, evaluation, gate, params)
    model.metadata.update(
        {
            "horizon_days": horizon_days,
            "first_day": f"{pd.Timestamp(rows.day.min()):%Y-%m-%d}",
            "last_day": f"{pd.Timestamp(rows.day.max()):%Y-%m-%d}",
        }
    )
    return CallEffectHead(model, evaluation, gate, params)
