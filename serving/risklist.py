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

* Ranking by ``revenue`` (default): expected revenue at risk, the probability times the
  monthly revenue times ``revenue_months``. A customer without a revenue figure ranks as if
  at the median revenue of the day's customers (their revenue at risk stays empty); a
  table with no revenue at all ranks by probability. ``probability`` ranks by probability.
  Ties: higher probability first, then customer id.
* Capacity K counts the customers the team can call: a suppressed customer (contacted by
  the team in the last ``suppress_days`` days) stays on the list where they rank, marked,
  and does not use up a call; the list ends at the K-th customer who may be called.
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from churnml.contract import CUSTOMER_ID
from churnml.errors import DataError, InputError
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
from serving.settings import DEFAULT_CURRENCY, RiskListSettings
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
        lines = [
            f"risk list for {self.list_date}: {counted(h['scored'], 'customer')} scored by "
            f"{h['model_name']} version {h['model_version']}; {h['on_list']:,} on the list "
            f"(capacity {h['capacity']}, ranked by {h['rank_by']}"
            + (f", {suppressed} suppressed" if suppressed else "")
            + ")",
            f"  since {h['previous_date'] or 'no earlier list'}: {changes}; "
            f"{len(self.departures)} left the list",
            f"  bands: {shares}",
        ]
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
    the missing revenues' median differs enough to reorder them); None for the others."""
    x = predictor.prepare(features)
    prediction = predictor.explain(x)
    frame = _profile(customers, features.index)
    frame["churn_probability"] = prediction.probability
    frame["risk_band"] = prediction.band
    frame["thin_history"] = prediction.thin_history  # less history than the windows
    frame["reasons"] = prediction.reasons  # [{code, family, feature, text, value, usual, ...}]
    frame["likely_within_days"], frame["horizons"] = _curve_columns(predictor, prediction)
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
        at_risk = p * np.where(
            np.isnan(revenue), np.nanmedian(revenue) if (~np.isnan(revenue)).any() else 1.0, revenue
        )
        for key in (p, at_risk):
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
        stage = ScoringStage(as_of, previous.watch, here, 2 * settings.capacity)
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

    suppression: pd.DataFrame | None = None
    suppression_name: str = "suppression table"
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
    notes: list[str] = []
    header = store.header(before=day)
    previous = PreviousList(header, store.previous_rows(header["list_id"]) if header else {})
    scores = score(previous)
    if scores.frame.empty:
        raise DataError(
            f"no customer is active on {day} (signed up on or before it and not yet left); "
            "choose another --as-of"
        )
    frame = rank_scores(scores, as_of, settings, run, notes)
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
        "fingerprint": _fingerprint(scores, run.suppression),
        "scored": len(frame),
        "on_list": int(frame["on_list"].sum()),
        "capacity": settings.capacity,
        "rank_by": settings.rank_by,
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


def rank_scores(
    scores: ListScores,
    as_of: dt.date,
    settings: RiskListSettings,
    run: ListOptions,
    notes: list[str],
) -> pd.DataFrame:
    """The list's rows from the scores: revenue at risk, action, rank, suppression, and
    who is on the list (the first ``capacity`` customers who may be called)."""
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
    frame = _rank(frame, settings, notes)
    frame = _suppress(frame, run.suppression, as_of, settings, run.suppression_name, notes)
    frame["on_list"] = _on_list(frame["suppressed"].to_numpy(), settings.capacity)
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


def _rank(frame: pd.DataFrame, settings: RiskListSettings, notes: list[str]) -> pd.DataFrame:
    revenue = frame["monthly_revenue"]
    key = frame["churn_probability"]
    if settings.rank_by == "revenue":
        known = revenue.notna()
        if not known.any():
            notes.append("no monthly_revenue in the customer table: ranked by probability")
        else:
            if not known.all():
                notes.append(
                    f"{int((~known).sum()):,} customers have no monthly_revenue: ranked as if "
                    f"at the median revenue ({revenue.median():,.2f}); their revenue at risk "
                    "is left empty"
                )
            key = frame["churn_probability"] * revenue.fillna(revenue.median())
    order = np.lexsort(
        (frame[CUSTOMER_ID].to_numpy(), -frame["churn_probability"].to_numpy(), -key.to_numpy())
    )
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(1, "rank", np.arange(1, len(frame) + 1))
    return frame


def _suppress(
    frame: pd.DataFrame,
    table: pd.DataFrame | None,
    as_of: dt.date,
    settings: RiskListSettings,
    name: str,
    notes: list[str],
) -> pd.DataFrame:
    frame["suppressed"] = False
    frame["last_contacted"] = None
    if table is None:
        return frame
    contacted = read_suppression(table, name)
    end = pd.Timestamp(as_of)
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
    seen = frame[CUSTOMER_ID].map(last)
    recent = seen > end - pd.Timedelta(days=settings.suppress_days)
    frame["suppressed"] = recent.fillna(False).astype(bool).to_numpy()
    frame["last_contacted"] = [None if pd.isna(v) else f"{v:%Y-%m-%d}" for v in seen]
    return frame


def read_suppression(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """The suppression table's customer_id and contacted_at (a date), checked."""
    missing = [c for c in (CUSTOMER_ID, "contacted_at") if c not in table.columns]
    if missing:
        raise InputError(
            f"{name}: missing column {missing[0]!r}; expected columns customer_id and "
            "contacted_at (YYYY-MM-DD), one row per contact made by the retention team"
        )
    ids = table[CUSTOMER_ID].astype("object")
    text = table["contacted_at"].astype("object")
    when = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    bad = when.isna() | ids.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{name}: row {row + 1}: customer_id {ids.iloc[row]!r}, contacted_at "
            f"{text.iloc[row]!r}: expected a customer id and a date YYYY-MM-DD "
            f"({int(bad.sum())} such rows)"
        )
    return pd.DataFrame(
        {
            CUSTOMER_ID: ids.astype(str).to_numpy(),
            "contacted_at": when.dt.tz_localize(None).dt.normalize().to_numpy(),
        }
    )


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
            if today.at[customer, "suppressed"]:
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
    }
    return list(zip(*(columns[name] for name in ROW_COLUMNS), strict=True))
