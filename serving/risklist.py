"""The daily risk list: whom the retention team should call on a day, why, and what changed.

``make_risk_list_on(engine, ...)`` scores every customer active on the day with the
champion (the same ``build_features`` and model as the service) on the engine's partitions,
ranks them, marks the first ``capacity`` customers who may be called as "on the list",
compares with the previous list, checks drift, and stores it all in one transaction
(``serving.store``). ``churnml risk-list`` calls it with the local or the Dask engine
(``churnml.engines``); ``make_risk_list`` is the same of tables in this process. The
service's ``/risk-list`` endpoints, ``/score_ids`` and the page read the stored list.

Two stages. Scoring (``score_customers``, on every partition) turns the customers' features
into what the list needs: probability, drivers, band, profile, drift bin counts, the churn
days of the previous list's customers, content hashes. The rest (``finish_list``: rank,
suppression, changes, drift, header, store) works from that alone, in this process, so
both engines store the same list (docs/serving.md, "Risk lists on Dask").

Choices (documented in the README):

* The ranking (``choose_ranking``): ``saved-revenue`` by default when the model's
  call-effect head passed its own gate, else ``revenue``; the header says which and why
  (``rank_by_reason``). ``saved-revenue`` asked of a model without a head is a ConfigError.
* Ranking by ``revenue``: expected revenue at risk, the probability times the monthly
  revenue times ``revenue_months``. ``saved-revenue``: the revenue a call keeps, the call
  effect times the monthly revenue times ``revenue_months``. A customer without a revenue
  figure ranks as if at the median revenue of the day's customers (their revenue at risk
  and saved revenue stay empty); a table with no revenue at all ranks by probability (by
  call effect). ``probability`` ranks by probability. Ties: higher probability first, then
  customer id.
* Ranking by saved revenue, a customer whose call effect is below ``min_call_effect`` is
  not picked however risky; a high-risk one says why (``not_listed_because``: "likely to
  leave whatever we do" within 0.01 of no effect, "a call may do harm" below -0.01).
* Capacity K counts the customers the team can call: a suppressed customer (contacted by
  the team in the last ``suppress_days`` days, or held out as a control within the
  model's horizon, by the retention contacts or by an earlier list) stays on the list where
  they rank, marked, and does not use up a call; the list ends at the K-th customer who
  may be called (a customer not picked for their call effect is not on it).
* Control group: of the picks (on the list and not suppressed), ``round(control_share x
  picks)`` (halves up) are ``control`` (not to be called), the rest ``treated``; the
  controls are the picks with the lowest sha256 of ``"{list_date}:{customer_id}"``: random,
  independent of rank, and the same when the day is made again.
* Changes, against the latest list of an earlier day: ``new`` (not on that list),
  ``risen`` / ``fallen`` (probability up / down by at least ``change_tolerance``),
  ``steady``. Customers on that list but not on this one are departures, with the reason.
* Drift: PSI of every feature against the model's training rows (warning at
  ``psi_warning``), and each band's share against its mean over the last 7 lists
  (warning when it moves by more than ``band_shift_warning``).
* Freshness: a day more than ``freshness_grace_days`` after the last contact day of the
  data is refused before anything is scored or stored (the exports did not arrive, or the
  day is mistyped); the header keeps ``data_through``, the last day the data covers for
  the list (the last contact day, or the list's day when the data goes on past it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID, DEFAULT_HORIZON_DAYS
from churnml.errors import ConfigError, DataError
from churnml.io import ContentHash, content_hash, fingerprint
from churnml.progress import counted
from features import drift
from features.build import INTERACTION_COLUMNS_USED
from features.columns import FAMILY_DESCRIPTIONS, feature_family
from features.reasons import next_step
from model.artifact import ChurnModel
from model.horizons import likely_within
from model.predictor import Predictor
from model.schema import lacking_line
from serving.evidence import customer_evidence
from serving.export import export_table
from serving.loading import ServedModel
from serving.settings import DEFAULT_CURRENCY, RANK_BY_SAVED_REVENUE, RiskListSettings
from serving.store import ROW_COLUMNS, RiskListStore, encode_curve, encode_reasons, today_iso

BANDS = ("high", "medium", "low")
CHANGES = ("new", "risen", "fallen", "steady")
_DEPARTURE_COLUMNS = (
    "customer_id",
    "previous_rank",
    "previous_probability",
    "rank",
    "churn_probability",
    "why",
)
TREATED, CONTROL = "treated", "control"
CONTROL_ACTION = "control: do not call (random holdout that measures what calls change)"
NO_EFFECT_BAND = 0.01  # a call effect within this of 0: the call changes nothing
WHATEVER_WE_DO = "likely to leave whatever we do"
MAY_DO_HARM = "a call may do harm"
# The header's content hash of the interactions covers the columns the features read:
# the list depends on nothing else, and the Dask engine keeps no other on the cluster.
INTERACTIONS_READ = INTERACTION_COLUMNS_USED


@dataclass
class RiskListResult:
    list_date: str
    list_id: int
    header: dict[str, Any]
    frame: pd.DataFrame  # every scored customer, rank order: the export
    departures: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        h = self.header
        on = self.frame[self.frame["on_list"]]
        counts = on["change"].value_counts()
        changes = ", ".join(f"{counts.get(c, 0)} {c}" for c in CHANGES)
        shares = ", ".join(f"{b} {h['bands']['shares'].get(b, 0.0):.1%}" for b in BANDS)
        suppressed = int(on["suppressed"].sum())
        controls = int((on["group"] == CONTROL).sum())
        unpicked = int(self.frame["not_listed_because"].isin([WHATEVER_WE_DO, MAY_DO_HARM]).sum())
        lines = [
            f"risk list for {self.list_date}: {counted(h['scored'], 'customer')} scored by "
            f"{h['model_name']} version {h['model_version']}; {h['on_list']:,} on the list "
            f"(capacity {h['capacity']}, ranked by {h['rank_by']}"
            + (f", {counted(controls, 'control')} not to be called" if controls else "")
            + (f", {suppressed} suppressed" if suppressed else "")
            + ")",
            f"  ranking: {h['rank_by_reason']}",
            f"  since {h['previous_date'] or 'no earlier list'}: {changes}; "
            f"{len(self.departures)} left the list",
            f"  bands: {shares}",
        ]
        if unpicked:
            lines.append(
                f"  {counted(unpicked, 'high-risk customer')} not picked: call effect below "
                f"{h['min_call_effect']:+.2f}"
            )
        if h.get("data_through"):
            lines.append(f"  data through {h['data_through']}")
        lacking = lacking_line(h.get("lacking_fields") or {}, h["scored"])
        if lacking is not None:
            lines.append(f"  {lacking}")
        warnings = h["drift"]["warnings"]
        lines.append(
            "  drift: " + ("WARNING: " + "; ".join(warnings) if warnings else "no warning")
        )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class ListScores:
    """The scoring stage's result: all the list needs from the tables, and no more.

    ``score_customers`` makes it from the features of the customers of a table, or of a
    partition of it on a Dask worker; ``merge`` joins the partitions' parts. The rest of the
    list (rank, suppression, changes, drift, header, store) works from it alone."""

    frame: pd.DataFrame  # customer_id, segment, plan, monthly_revenue, probability, band, reasons
    bins: dict[str, np.ndarray]  # drift.bin_counts of the prepared features
    churned: dict[str, str]  # the watched customers who left by the day: the day they left
    customers: ContentHash
    interactions: ContentHash
    # Scored customers lacking each field the model was trained on almost always having.
    lacking: dict[str, int] = field(default_factory=dict)

    @classmethod
    def merge(cls, parts: Sequence[ListScores]) -> ListScores:
        """One result of the parts of disjoint sets of customers (in the parts' order)."""
        return cls(
            pd.concat([part.frame for part in parts], ignore_index=True),
            drift.add_counts(part.bins for part in parts),
            {k: v for part in parts for k, v in part.churned.items()},
            sum((part.customers for part in parts), ContentHash()),
            sum((part.interactions for part in parts), ContentHash()),
            _added(part.lacking for part in parts),
        )


def score_customers(
    predictor: Predictor,
    features: pd.DataFrame,
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: dt.date,
    watch: frozenset[str] = frozenset(),
    evidence_top: int = 0,
    retention_contacts: pd.DataFrame | None = None,
) -> ListScores:
    """Probabilities, drivers and bands of the customers of ``features``, their profile,
    the drift bin counts, the churn days of the ``watch``ed customers (the previous list's,
    for departures) and the tables' content hashes. The same function on the whole tables
    (local engine) and on each partition of them (Dask engine).

    The ``evidence`` column holds the contacts and cases behind the reasons
    (``serving.evidence``) of the customers the page may open: those in the high or medium
    band and the partition's ``evidence_top`` first by probability and by revenue at risk
    (with ``evidence_top`` twice the capacity, the customers on the list are among them
    unless more than a capacity's worth of them are suppressed, or, on several partitions,
    the missing revenues' median differs enough to reorder them); None for the others.

    A model with a call-effect head adds ``call_effect``, with each customer's retention
    history as of ``as_of`` from the validated ``retention_contacts`` (None: nobody was
    ever picked); NaN without a head."""
    x = predictor.prepare(features)
    prediction = predictor.explain(x)
    frame = _profile(customers, features.index)
    frame["churn_probability"] = prediction.probability
    frame["risk_band"] = prediction.band
    frame["thin_history"] = prediction.thin_history  # less history than the windows
    frame["reasons"] = prediction.reasons  # [{code, family, feature, text, value, usual, ...}]
    frame["likely_within_days"], frame["horizons"] = _curve_columns(predictor, prediction)
    effect = predictor.call_effect(features, retention_contacts, pd.Timestamp(as_of))
    frame["call_effect"] = np.nan if effect is None else np.asarray(effect, dtype="float64")
    frame["evidence"] = _evidence(frame, interactions, as_of, predictor, evidence_top)
    return ListScores(
        frame,
        drift.bin_counts(predictor.model.distribution, x),
        _churned_by(customers, as_of, watch),
        content_hash(customers),
        content_hash(interactions, INTERACTIONS_READ),
        predictor.rows_lacking(customers, features.index),
    )


def _curve_columns(predictor: Predictor, prediction: Any) -> tuple[list, list]:
    """The rows' "likely within" days (``model.horizons.likely_within``) and their curves
    as ``{"<H>": p}``; None for each row of a model without horizons."""
    head = predictor.model.horizons
    rows = len(prediction.probability)
    if head is None or prediction.curve is None:
        return [None] * rows, [None] * rows
    within = likely_within(prediction.curve, head.horizons)
    keys = [str(h) for h in head.horizons]
    return (
        [None if np.isnan(d) else int(d) for d in within],
        [dict(zip(keys, row, strict=True)) for row in prediction.curve.tolist()],
    )


def _added(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for name, count in part.items():
            total[name] = total.get(name, 0) + count
    return total


def _evidence(
    frame: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: dt.date,
    predictor: Predictor,
    top: int,
) -> list[str | None]:
    """The evidence JSON of the customers the page may open (``score_customers``)."""
    if frame.empty:
        return []
    p = frame["churn_probability"].to_numpy(dtype="float64")
    revenue = frame["monthly_revenue"].to_numpy(dtype="float64")
    wanted = frame["risk_band"].to_numpy() != "low"
    if top > 0:
        filled = np.where(
            np.isnan(revenue), np.nanmedian(revenue) if (~np.isnan(revenue)).any() else 1.0, revenue
        )
        keys = [p, p * filled]
        effect = frame["call_effect"].to_numpy(dtype="float64")
        if not np.isnan(effect).all():  # the saved-revenue ranking's customers too
            keys.append(np.nan_to_num(effect * filled, nan=-np.inf))
        for key in keys:
            wanted[np.argsort(-key, kind="stable")[:top]] = True
    ids = frame[CUSTOMER_ID].to_numpy()[wanted]
    found = customer_evidence(interactions, ids, as_of, predictor.model.build_settings)
    return [found.get(c) if w else None for c, w in zip(frame[CUSTOMER_ID], wanted, strict=True)]


class Partitions(Protocol):
    """What the risk list needs of an engine (``churnml.engines.Engine`` has it): the
    day of the latest contact, and a function run on every partition of the tables with a
    model's features of a day."""

    name: str

    def latest_day(self) -> dt.date | None: ...

    def map(
        self,
        function: Callable[..., Any],
        predictor: Predictor,
        day: dt.date,
        *args: Any,
        what: str = ...,
    ) -> list[Any]: ...


@dataclass(frozen=True)
class WholeTables:
    """Validated tables in this process as one partition (``LocalEngine.map``'s work)."""

    customers: pd.DataFrame
    interactions: pd.DataFrame
    name: str = "local"

    def latest_day(self) -> dt.date | None:
        if self.interactions.empty:
            return None
        return pd.Timestamp(self.interactions["started_at"].max()).date()

    def map(
        self,
        function: Callable[..., Any],
        predictor: Predictor,
        day: dt.date,
        *args: Any,
        what: str = "",
    ) -> list[Any]:
        features = predictor.model.features_from_tables(
            self.customers, self.interactions, pd.Timestamp(day)
        )
        return [function(predictor, features, self.customers, self.interactions, *args)]


@dataclass(frozen=True)
class ScoringStage:
    """``score_customers`` of one partition, as ``Engine.map`` calls it; ``say`` (only
    where the partition runs in this process) hears when the features are built."""

    as_of: dt.date
    watch: frozenset[str]
    say: Callable[[str], None] | None = None
    evidence_top: int = 0
    retention_contacts: pd.DataFrame | None = None

    def __call__(
        self,
        predictor: Predictor,
        features: pd.DataFrame,
        customers: pd.DataFrame,
        interactions: pd.DataFrame,
    ) -> ListScores:
        if self.say is not None:
            self.say(f"scoring {len(features):,} customers")
        return score_customers(
            predictor,
            features,
            customers,
            interactions,
            self.as_of,
            self.watch,
            self.evidence_top,
            self.retention_contacts,
        )


def make_risk_list(
    customers: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: dt.date,
    served: ServedModel,
    store: RiskListStore,
    settings: RiskListSettings,
    **options: Any,
) -> RiskListResult:
    """Score, rank, compare, check and store the list of ``as_of`` (see the module) of
    validated tables in this process; ``options`` are ``ListOptions``' fields."""
    return make_risk_list_on(
        WholeTables(customers, interactions), as_of, served, store, settings, **options
    )


def make_risk_list_on(
    engine: Partitions,
    as_of: dt.date,
    served: ServedModel,
    store: RiskListStore,
    settings: RiskListSettings,
    **options: Any,
) -> RiskListResult:
    """The list of ``as_of`` of an engine's tables: each partition builds its features and
    runs ``score_customers``; only the customers' list columns, the drift counts, the
    watched customers' churn days and the content hashes come back, and the shared steps
    (``finish_list``) run on them. Nothing is stored before every partition's part is in
    hand; a failed cluster is a DaskEngineError and no write. A day after the data's last
    contact day plus the grace is a DataError before any scoring (``check_fresh``)."""
    run = ListOptions(**options)
    latest = engine.latest_day()
    check_fresh(as_of, latest, settings.freshness_grace_days)
    # Where the partition runs in this process, it says when its features are built.
    here = run.say if engine.name == "local" else None

    def score(previous: PreviousList) -> ListScores:
        run.say(f"building features as of {as_of:%Y-%m-%d}" + (" on the cluster" * (not here)))
        # Twice the capacity: the list's suppressed customers are on it beyond the capacity.
        stage = ScoringStage(
            as_of, previous.watch, here, 2 * settings.capacity, run.retention_contacts
        )
        parts = engine.map(stage, served.predictor, as_of, what="making the risk list")
        return ListScores.merge(parts)

    data_through = None if latest is None else min(latest, as_of)
    return finish_list(score, as_of, served, store, settings, run, data_through)


def check_fresh(as_of: dt.date, latest: dt.date | None, grace_days: int) -> None:
    """DataError when ``as_of`` is more than ``grace_days`` after ``latest``, the data's
    last contact day (no contact at all: nothing to check against)."""
    if latest is None or (as_of - latest).days <= grace_days:
        return
    late = (as_of - latest).days
    raise DataError(
        f"--as-of {as_of} is {_days(late)} after the data's last contact day {latest} "
        f"(grace {_days(grace_days)}): the day's exports may not have arrived; load newer "
        f"tables, pass --as-of {latest}, or allow more days with --grace-days "
        "(CHURNML_FRESHNESS_GRACE_DAYS)"
    )


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


@dataclass(frozen=True)
class ListOptions:
    """``make_risk_list``'s keyword arguments, for the steps after scoring."""

    # The retention team's picks and contacts, validated (``churnml.validation``): they
    # suppress customers just called or held out, and give the call effect its history.
    retention_contacts: pd.DataFrame | None = None
    retention_contacts_name: str = "retention_contacts"
    report: Callable[[str], None] | None = None
    after_chunk: Callable[[int], None] | None = None

    def say(self, message: str) -> None:
        if self.report is not None:
            self.report(message)


@dataclass(frozen=True)
class PreviousList:
    """The latest list of an earlier day: its header and rows (None and empty when none)."""

    header: dict | None
    rows: dict[str, tuple[int, float, bool]]

    @property
    def watch(self) -> frozenset[str]:
        """The customers on it: those whose departure needs a reason."""
        return frozenset(c for c, (_rank, _p, on) in self.rows.items() if on)


def finish_list(
    score: Callable[[PreviousList], ListScores],
    as_of: dt.date,
    served: ServedModel,
    store: RiskListStore,
    settings: RiskListSettings,
    run: ListOptions,
    data_through: dt.date | None = None,
) -> RiskListResult:
    """Score with ``score`` (given the previous list), then rank, suppress, compare, check
    drift and store: the steps after scoring, the same for every engine. ``data_through``:
    the last day the data covers for the list, kept in its header."""
    day = f"{as_of:%Y-%m-%d}"
    model = served.model
    ranking = choose_ranking(settings.rank_by, model)  # a ConfigError before any scoring
    horizon = horizon_days(model)
    notes: list[str] = []
    header = store.header(before=day)
    previous = PreviousList(header, store.previous_rows(header["list_id"]) if header else {})
    scores = score(previous)
    if scores.frame.empty:
        raise DataError(
            f"no customer is active on {day} (signed up on or before it and not yet left); "
            "choose another --as-of"
        )
    since = f"{as_of - dt.timedelta(days=horizon):%Y-%m-%d}"
    held_out = store.control_picks(since, day)
    frame = rank_scores(scores, as_of, settings, run, notes, ranking, held_out, horizon)
    run.say("comparing with the previous list and checking drift")
    departures = _compare(frame, previous, scores.churned, as_of, settings)
    recent = store.recent_headers(day, settings.band_history)
    thresholds = model.band_thresholds
    bands = scores.frame["risk_band"].to_numpy()
    shares = {b: float(np.mean(bands == b)) for b in BANDS}
    drift_result = _drift(model, scores.bins, shares, recent, settings)

    header = {
        "list_date": day,
        "created_at": today_iso(),
        "model_name": served.name,
        "model_version": served.version,
        "model_uri": served.uri,
        "fingerprint": _fingerprint(scores, run.retention_contacts),
        "scored": len(frame),
        "on_list": int(frame["on_list"].sum()),
        "capacity": settings.capacity,
        "rank_by": ranking.rank_by,
        "rank_by_reason": ranking.reason,
        "control_share": settings.control_share,
        "min_call_effect": settings.min_call_effect,
        "revenue_months": settings.revenue_months,
        "bands": {"thresholds": thresholds, "shares": shares},
        "drift": drift_result,
        "drift_warning": bool(drift_result["warnings"]),
        "previous_date": previous.header["list_date"] if previous.header else None,
        "departures": len(departures),
        "data_through": None if data_through is None else f"{data_through:%Y-%m-%d}",
        "freshness_grace_days": settings.freshness_grace_days,
        "lacking_fields": scores.lacking,
    }
    run.say(f"storing {counted(len(frame), 'row')} in {store.url.split('://')[0]}")
    list_id = store.replace_list(
        header,
        _row_tuples(frame),
        _departure_tuples(departures),
        evidence=_evidence_pairs(frame, scores.frame),
        after_chunk=run.after_chunk,
    )
    return RiskListResult(day, list_id, header, frame, departures, notes)


@dataclass(frozen=True)
class Ranking:
    """What the list ranks by, and why (one line: the header's ``rank_by_reason``)."""

    rank_by: str
    reason: str


def choose_ranking(asked: str | None, model: ChurnModel) -> Ranking:
    """The ranking ``asked`` (None: the default), with why. The default is saved revenue
    only when the model's call-effect head passed its own gate (``ChurnModel.rank_by``),
    else revenue. Saved revenue asked of a model without a head: ConfigError."""
    has_head = model.call_effect is not None
    gate = str((model.call_effect_gate or {}).get("reason") or "no gate decision recorded")
    passed = model.rank_by == RANK_BY_SAVED_REVENUE
    if asked == RANK_BY_SAVED_REVENUE and not has_head:
        raise ConfigError(
            "--rank-by saved-revenue: the model has no call-effect head; train it with "
            "--retention-contacts F (the team's treated and control picks), or rank by "
            "revenue or probability"
        )
    if asked == RANK_BY_SAVED_REVENUE:
        verdict = "passed" if passed else "did not pass"
        return Ranking(
            asked, f"saved revenue, as asked; the call-effect head {verdict} its gate: {gate}"
        )
    if asked is not None:
        return Ranking(asked, f"{asked}, as asked (--rank-by or CHURNML_RANK_BY)")
    if passed:
        return Ranking(
            RANK_BY_SAVED_REVENUE, f"saved revenue: the call-effect head passed its gate: {gate}"
        )
    if has_head:
        return Ranking(
            "revenue", f"revenue at risk: the call-effect head did not pass its gate: {gate}"
        )
    return Ranking(
        "revenue",
        "revenue at risk: the model has no call-effect head (train with --retention-contacts "
        "to rank by the revenue a call keeps)",
    )


def horizon_days(model: ChurnModel) -> int:
    """The model's label horizon: how long a control pick's promise not to call runs."""
    return int(model.metadata.get("horizon_days") or DEFAULT_HORIZON_DAYS)


def control_split(list_date: str, customer_ids: Sequence[str], share: float) -> np.ndarray:
    """True for the controls among the day's picks: ``round(share x picks)`` (halves up) of
    them, those with the lowest sha256 of ``"{list_date}:{customer_id}"``: random, not
    related to rank, and the same whenever the day is made again."""
    count = int(np.floor(share * len(customer_ids) + 0.5))
    digests = [hashlib.sha256(f"{list_date}:{c}".encode()).hexdigest() for c in customer_ids]
    chosen = np.zeros(len(customer_ids), dtype=bool)
    chosen[np.argsort(np.array(digests, dtype=object), kind="stable")[:count]] = True
    return chosen


def not_listed_because(effect: float, floor: float) -> str:
    """Why a customer whose call effect is below the floor is not picked."""
    if abs(effect) <= NO_EFFECT_BAND:
        return WHATEVER_WE_DO
    if effect < -NO_EFFECT_BAND:
        return MAY_DO_HARM
    return f"a call helps too little (call effect below {floor:+.2f})"


def rank_scores(
    scores: ListScores,
    as_of: dt.date,
    settings: RiskListSettings,
    run: ListOptions,
    notes: list[str],
    ranking: Ranking | None = None,
    held_out: dict[str, str] | None = None,
    horizon: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """The list's rows from the scores: revenue at risk, call effect and saved revenue,
    action, rank, suppression, who is on the list (the first ``capacity`` customers who may
    be called), and the day's picks split into treated and control. ``held_out``: the
    customers held out as controls by earlier lists within the horizon, and the day."""
    ranking = ranking or Ranking(settings.rank_by or "revenue", "")
    frame = scores.frame[[CUSTOMER_ID, "segment", "plan", "monthly_revenue"]].copy()
    frame["churn_probability"] = scores.frame["churn_probability"].to_numpy()
    bands = scores.frame["risk_band"].to_numpy()
    frame["risk_band"] = bands
    frame["thin_history"] = scores.frame["thin_history"].to_numpy(dtype=bool)
    # When the time-to-churn model places the churn (None without one); not in the ranking.
    for column in ("likely_within_days", "horizons"):
        frame[column] = (
            scores.frame[column].tolist() if column in scores.frame else [None] * len(frame)
        )
    frame["revenue_at_risk"] = (
        frame["churn_probability"] * frame["monthly_revenue"] * settings.revenue_months
    )
    drivers = scores.frame["reasons"].tolist()
    frame["reasons"] = drivers
    frame["action"] = [
        next_step([d["family"] for d in row], str(band))
        for row, band in zip(drivers, bands, strict=True)
    ]
    effect = scores.frame["call_effect"].to_numpy(dtype="float64")
    frame["call_effect"] = effect
    frame["saved_revenue"] = Predictor.saved_revenue(
        effect, frame["monthly_revenue"].to_numpy(dtype="float64"), settings.revenue_months
    )
    frame = _rank(frame, ranking.rank_by, notes)
    frame = _suppress(
        frame,
        run.retention_contacts,
        held_out or {},
        as_of,
        settings,
        horizon,
        run.retention_contacts_name,
        notes,
    )
    excluded = np.zeros(len(frame), dtype=bool)
    if ranking.rank_by == RANK_BY_SAVED_REVENUE:
        excluded = frame["call_effect"].to_numpy() < settings.min_call_effect
        high = excluded & (frame["risk_band"].to_numpy() == "high")
        frame.loc[high, "not_listed_because"] = [
            not_listed_because(e, settings.min_call_effect) for e in frame.loc[high, "call_effect"]
        ]
    frame["excluded"] = excluded
    suppressed = frame["suppressed"].to_numpy()
    frame["on_list"] = _on_list(suppressed | excluded, settings.capacity) & ~excluded
    picks = frame["on_list"].to_numpy() & ~suppressed
    control = np.zeros(len(frame), dtype=bool)
    control[picks] = control_split(
        f"{as_of:%Y-%m-%d}", frame.loc[picks, CUSTOMER_ID].tolist(), settings.control_share
    )
    frame["group"] = np.where(control, CONTROL, np.where(picks, TREATED, None)).astype(object)
    frame.loc[control, "action"] = CONTROL_ACTION
    return frame


def _fingerprint(scores: ListScores, suppression: pd.DataFrame | None) -> dict[str, Any]:
    """What the list was made from: the tables' content hashes, the suppression table's."""
    return {
        "customers_rows": scores.customers.rows,
        "customers_content": scores.customers.text,
        "interactions_rows": scores.interactions.rows,
        "interactions_content": scores.interactions.text,
        **(
            {
                "suppression_rows": len(suppression),
                "suppression_sha256": fingerprint(suppression),
            }
            if suppression is not None
            else {}
        ),
    }


def export_frame(
    result: RiskListResult, *, currency: str = DEFAULT_CURRENCY, scope: str = "all"
) -> pd.DataFrame:
    """The list as a flat table for --out (``serving.export``: the same columns as
    ``GET /risk-list.csv``): everyone scored, or with ``scope="list"`` the list."""
    return export_table(
        result.frame, result.list_date, result.header["model_version"], currency, scope=scope
    )


# -- steps --------------------------------------------------------------------------------
def _profile(customers: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    table = customers.set_index(CUSTOMER_ID)
    frame = pd.DataFrame({CUSTOMER_ID: ids.astype(str)})
    for column in ("segment", "plan"):
        if column in table.columns:
            values = table[column].reindex(ids).astype("object")
            frame[column] = values.where(values.notna(), None).to_numpy()
        else:
            frame[column] = None
    if "monthly_revenue" in table.columns:
        revenue = pd.to_numeric(table["monthly_revenue"].reindex(ids), errors="coerce")
        frame["monthly_revenue"] = revenue.to_numpy(dtype="float64", na_value=np.nan)
    else:
        frame["monthly_revenue"] = np.nan
    return frame


def _rank(frame: pd.DataFrame, rank_by: str, notes: list[str]) -> pd.DataFrame:
    revenue = frame["monthly_revenue"]
    key = frame["churn_probability"]
    if rank_by in ("revenue", RANK_BY_SAVED_REVENUE):
        saved = rank_by == RANK_BY_SAVED_REVENUE
        per_revenue = frame["call_effect"] if saved else frame["churn_probability"]
        what = "saved revenue" if saved else "revenue at risk"
        known = revenue.notna()
        if not known.any():
            by = "call effect" if saved else "probability"
            notes.append(f"no monthly_revenue in the customer table: ranked by {by}")
            key = per_revenue
        else:
            if not known.all():
                notes.append(
                    f"{int((~known).sum()):,} customers have no monthly_revenue: ranked as if "
                    f"at the median revenue ({revenue.median():,.2f}); their {what} "
                    "is left empty"
                )
            key = per_revenue * revenue.fillna(revenue.median())
    order = np.lexsort(
        (frame[CUSTOMER_ID].to_numpy(), -frame["churn_probability"].to_numpy(), -key.to_numpy())
    )
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(1, "rank", np.arange(1, len(frame) + 1))
    return frame


def _suppress(
    frame: pd.DataFrame,
    table: pd.DataFrame | None,
    held_out: dict[str, str],
    as_of: dt.date,
    settings: RiskListSettings,
    horizon: int,
    name: str,
    notes: list[str],
) -> pd.DataFrame:
    """Mark the customers the team contacted in the last ``suppress_days`` days and those
    held out as controls within the ``horizon`` (in ``table``, the validated retention
    contacts, or ``held_out`` by an earlier list): a control is a promise not to call."""
    frame["suppressed"] = False
    frame["last_contacted"] = None
    frame["not_listed_because"] = None
    end = pd.Timestamp(as_of)
    promise: pd.Series = pd.Series(
        pd.to_datetime(list(held_out.values())), index=list(held_out), dtype="datetime64[ns]"
    )
    recent = np.zeros(len(frame), dtype=bool)
    if table is not None:
        contacted = pd.DataFrame(
            {
                CUSTOMER_ID: table[CUSTOMER_ID].astype(str).to_numpy(),
                "contacted_at": pd.to_datetime(table["contacted_at"]).dt.normalize().to_numpy(),
                "group": table["group"].fillna(TREATED).to_numpy()
                if "group" in table.columns
                else TREATED,
            }
        )
        future = contacted["contacted_at"] > end
        if future.any():
            notes.append(f"{name}: {int(future.sum()):,} contacts after {as_of} are not counted")
        contacted = contacted[~future]
        last = contacted.groupby(CUSTOMER_ID)["contacted_at"].max()
        unknown = ~last.index.isin(frame[CUSTOMER_ID])
        if unknown.any():
            notes.append(
                f"{name}: {int(unknown.sum()):,} customers are not scored on {as_of} "
                "(not active or not in the data); their rows have no effect"
            )
        treated = contacted[contacted["group"] != CONTROL]
        seen = _latest(frame, treated)
        recent = (seen > end - pd.Timedelta(days=settings.suppress_days)).fillna(False)
        recent = recent.astype(bool).to_numpy()
        every = _latest(frame, contacted)
        frame["last_contacted"] = [None if pd.isna(v) else f"{v:%Y-%m-%d}" for v in every]
        controls = contacted[contacted["group"] == CONTROL]
        promise = pd.concat([promise, controls.groupby(CUSTOMER_ID)["contacted_at"].max()])
    promised = np.zeros(len(frame), dtype=bool)
    picked = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if len(promise):
        latest = promise.groupby(level=0).max()
        picked = pd.Series(latest.reindex(frame[CUSTOMER_ID]).to_numpy(), index=frame.index)
        promised = (picked + pd.Timedelta(days=horizon) >= end).to_numpy(dtype=bool)
    frame["suppressed"] = recent | promised
    frame.loc[promised, "not_listed_because"] = [
        f"held out as a control on {v:%Y-%m-%d}: not to be called until "
        f"{v + pd.Timedelta(days=horizon):%Y-%m-%d}"
        for v in picked[promised]
    ]
    return frame


def _latest(frame: pd.DataFrame, contacts: pd.DataFrame) -> pd.Series:
    """Each row's customer's latest ``contacted_at`` in ``contacts`` (NaT when none; also
    when ``contacts`` is empty, where ``Series.map`` would fail on an empty mapping)."""
    latest = contacts.groupby(CUSTOMER_ID)["contacted_at"].max()
    found = latest.reindex(frame[CUSTOMER_ID]).to_numpy(dtype="datetime64[ns]")
    return pd.Series(found, index=frame.index)


def _on_list(suppressed: np.ndarray, capacity: int) -> np.ndarray:
    """Rank order in; True down to the capacity-th customer who may be called."""
    callable_so_far = np.cumsum(~suppressed)
    if callable_so_far.size == 0 or callable_so_far[-1] <= capacity:
        return np.ones(len(suppressed), dtype=bool)
    last = int(np.searchsorted(callable_so_far, capacity))  # first index reaching capacity
    result = np.zeros(len(suppressed), dtype=bool)
    result[: last + 1] = True
    return result


def _compare(
    frame: pd.DataFrame,
    previous: PreviousList,
    churned: dict[str, str],
    as_of: dt.date,
    settings: RiskListSettings,
) -> pd.DataFrame:
    """Fill change / previous_rank / previous_probability; return the departures."""
    frame["change"] = None
    frame["previous_rank"] = None
    frame["previous_probability"] = None
    if previous.header is None:
        frame.loc[frame["on_list"], "change"] = "new"
        return pd.DataFrame(columns=_DEPARTURE_COLUMNS)
    _mark_changes(frame, previous.rows, settings)
    return _departures(frame, previous.rows, churned, as_of, settings)


def _mark_changes(
    frame: pd.DataFrame, before: dict[str, tuple[int, float, bool]], settings: RiskListSettings
) -> None:
    """Each row's previous rank and probability; on the list: new, risen, fallen or steady."""
    found = [before.get(c) for c in frame[CUSTOMER_ID].tolist()]
    frame["previous_rank"] = [f[0] if f else None for f in found]
    frame["previous_probability"] = [f[1] if f else None for f in found]
    was_on = np.array([bool(f and f[2]) for f in found])
    old_p = np.array([f[1] if f else np.nan for f in found], dtype="float64")
    delta = frame["churn_probability"].to_numpy() - old_p
    change = np.where(
        ~was_on,
        "new",
        np.where(
            delta >= settings.change_tolerance,
            "risen",
            np.where(delta <= -settings.change_tolerance, "fallen", "steady"),
        ),
    ).astype(object)
    change[~frame["on_list"].to_numpy()] = None
    frame["change"] = change


def _departures(
    frame: pd.DataFrame,
    before: dict[str, tuple[int, float, bool]],
    churned: dict[str, str],
    as_of: dt.date,
    settings: RiskListSettings,
) -> pd.DataFrame:
    """The customers on the previous list and not on this one, in their previous order,
    each with why it left the list."""
    today = frame.set_index(CUSTOMER_ID)
    rows = []
    for customer, (rank, p, on) in sorted(before.items(), key=lambda item: item[1][0]):
        if not on or (customer in today.index and today.at[customer, "on_list"]):
            continue
        if customer in today.index:
            now_rank = int(today.at[customer, "rank"])
            now_p = float(today.at[customer, "churn_probability"])
            if today.at[customer, "excluded"]:
                effect = float(today.at[customer, "call_effect"])
                why = f"now rank {now_rank}: not picked, call effect {effect:+.3f}"
            elif today.at[customer, "suppressed"]:
                why = f"now rank {now_rank}, below the capacity of {settings.capacity} callable"
            else:
                why = (
                    f"now rank {now_rank} with probability {now_p:.1%}, below the capacity "
                    f"of {settings.capacity}"
                )
            rows.append((customer, rank, p, now_rank, now_p, why))
        elif customer in churned:
            rows.append((customer, rank, p, None, None, f"churned on {churned[customer]}"))
        else:
            rows.append(
                (customer, rank, p, None, None, f"not active on {as_of} or not in the data")
            )
    return pd.DataFrame(rows, columns=_DEPARTURE_COLUMNS)


def _churned_by(customers: pd.DataFrame, as_of: dt.date, among: frozenset[str]) -> dict[str, str]:
    """The day each customer of ``among`` left, for those who left by ``as_of``."""
    if "churned_at" not in customers.columns or not among:
        return {}
    left = pd.to_datetime(customers["churned_at"], errors="coerce")
    mask = left.notna() & (left <= pd.Timestamp(as_of)) & customers[CUSTOMER_ID].isin(among)
    return dict(
        zip(
            customers.loc[mask, CUSTOMER_ID].astype(str),
            left[mask].dt.strftime("%Y-%m-%d"),
            strict=True,
        )
    )


def _drift(
    model: ChurnModel,
    bins: dict[str, np.ndarray],
    shares: dict[str, float],
    recent: list[dict],
    settings: RiskListSettings,
) -> dict[str, Any]:
    warnings: list[str] = []
    result: dict[str, Any] = {"psi_warning": settings.psi_warning}
    if model.distribution:
        values = drift.psi_of_counts(model.distribution, bins)
        over = sorted(
            (c for c, v in values.items() if v > settings.psi_warning), key=lambda c: -values[c]
        )
        result["psi"] = {c: round(v, 4) for c, v in values.items()}
        result["psi_over"] = over
        if over:
            warnings.append(drift_in_words(over))
    else:
        result["psi"] = {}
        result["psi_over"] = []
        result["note"] = "the model holds no training distribution (retrain to check drift)"
    result["band_shift_warning"] = settings.band_shift_warning
    result["band_history"] = [h["list_date"] for h in recent]
    if recent:
        means = {
            b: float(np.mean([h["bands"]["shares"].get(b, 0.0) for h in recent])) for b in BANDS
        }
        result["band_recent_mean"] = means
        for band in BANDS:
            moved = shares[band] - means[band]
            if abs(moved) > settings.band_shift_warning:
                warnings.append(
                    f"the {band} band holds {shares[band]:.1%} of customers against "
                    f"{means[band]:.1%} over the last {len(recent)} lists"
                )
    result["warnings"] = warnings
    return result


def _evidence_pairs(frame: pd.DataFrame, scored: pd.DataFrame) -> list[tuple[str, str]]:
    """(customer_id, evidence JSON) of the customers on the list or in the high or medium
    band whose partition kept evidence."""
    if "evidence" not in scored.columns:
        return []
    kept = dict(zip(scored[CUSTOMER_ID], scored["evidence"], strict=True))
    shown = frame["on_list"].to_numpy() | (frame["risk_band"].to_numpy() != "low")
    pairs = ((c, kept.get(c)) for c in frame[CUSTOMER_ID].to_numpy()[shown])
    return [(c, text) for c, text in pairs if text is not None]


# What moved, per feature family, in the words of a retention lead (drift warnings).
DRIFT_WORDS: dict[str, str] = {
    "contact volume": "how often customers contact service",
    "waiting": "how long customers wait, and how often they give up waiting",
    "repeating yourself": "how often customers come back about the same problem",
    "unresolved case": "how many cases stay open or escalated, and for how long",
    "transfers": "how often contacts are passed between agents or teams",
    "satisfaction": "the satisfaction ratings customers give",
    "resolution": "how often problems are solved at the first contact",
    "bad experiences": "how many contacts go wrong",
    "recency": "how recently customers were in contact or had a bad experience",
    "trend": "whether contacts and bad experiences are rising or falling",
    "profile": "account facts (tenure, plan, segment, revenue)",
}


def drift_in_words(columns: Sequence[str]) -> str:
    """The moved features as a retention lead reads them: what their families measure, the
    family with the most moved measures first (the column names stay in ``psi_over``)."""
    counts: dict[str, int] = {}
    for column in columns:
        try:
            family = feature_family(column)
        except KeyError:  # a customer table's own column
            family = "profile"
        counts[family] = counts.get(family, 0) + 1
    parts = [
        DRIFT_WORDS.get(family, FAMILY_DESCRIPTIONS.get(family, family))
        + (f" ({count} measures)" if count > 1 else "")
        for family, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return "customers differ from the training data in " + "; ".join(parts)


def _departure_tuples(departures: pd.DataFrame) -> list[tuple]:
    """Departures for the store: missing as None (not NaN), ranks as whole numbers."""
    return [
        (
            customer,
            int(previous_rank),
            float(previous_p),
            None if pd.isna(rank) else int(rank),
            None if pd.isna(p) else float(p),
            why,
        )
        for customer, previous_rank, previous_p, rank, p, why in departures.itertuples(
            index=False, name=None
        )
    ]


def _row_tuples(frame: pd.DataFrame) -> list[tuple]:
    def clean(values: pd.Series) -> list:
        return [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else v
            for v in values.tolist()
        ]

    columns = {
        "customer_id": frame[CUSTOMER_ID].tolist(),
        "rank": frame["rank"].tolist(),
        "segment": clean(frame["segment"]),
        "plan": clean(frame["plan"]),
        "monthly_revenue": clean(frame["monthly_revenue"]),
        "churn_probability": frame["churn_probability"].tolist(),
        "risk_band": frame["risk_band"].tolist(),
        "thin_history": frame["thin_history"].tolist(),
        "likely_within_days": [None if pd.isna(v) else int(v) for v in frame["likely_within_days"]],
        "horizons": [encode_curve(c) for c in frame["horizons"]],
        "revenue_at_risk": clean(frame["revenue_at_risk"]),
        "reasons": [encode_reasons(r) for r in frame["reasons"]],
        "action": frame["action"].tolist(),
        "on_list": frame["on_list"].tolist(),
        "change": frame["change"].tolist(),
        "previous_rank": [None if pd.isna(v) else int(v) for v in frame["previous_rank"]],
        "previous_probability": clean(frame["previous_probability"]),
        "suppressed": frame["suppressed"].tolist(),
        "last_contacted": frame["last_contacted"].tolist(),
        "group": frame["group"].tolist(),
        "call_effect": clean(frame["call_effect"]),
        "saved_revenue": clean(frame["saved_revenue"]),
        "not_listed_because": frame["not_listed_because"].tolist(),
    }
    return list(zip(*(columns[name] for name in ROW_COLUMNS), strict=True))
