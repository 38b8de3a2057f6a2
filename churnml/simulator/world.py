"""generate_world: simulate a sample world and write it as contract tables."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np

from churnml.contract import CONTRACT_VERSION
from churnml.errors import ConfigError
from churnml.simulator import output
from churnml.simulator.dynamics import (
    F32,
    NEVER,
    UNRESOLVED,
    Agents,
    Contacts,
    Load,
    Population,
    daily_hazard,
    new_agents,
    retention_call,
    simulate_day,
)
from churnml.simulator.params import SimulationParams
from churnml.simulator.retention import RetentionTeam

FileFormat = Literal["csv", "parquet"]
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: ``simulate`` (days), ``oracle`` (chunks),
``write`` (tables)."""

DEFAULT_START = date(2025, 1, 1)
_STREAM_POPULATION, _STREAM_DAYS, _STREAM_ORACLE, _STREAM_TRAITS, _STREAM_TEAM = 0, 1, 2, 3, 4
_STREAM_ORACLE_CALLS = 5


@dataclass(frozen=True)
class WorldSummary:
    """What :func:`generate_world` wrote and the world's headline numbers."""

    out_dir: Path
    files: dict[str, Path]
    start_date: date
    end_date: date
    initial_customers: int
    arrivals: int
    interactions: int
    churned: int
    churn_rate_30d: float
    oracle_dates: list[date]
    oracle_rows: int
    oracle_roc_auc: dict[str, float] = field(default_factory=dict)
    retention_start: date | None = None
    retention_contacts: int = 0
    retention_controls: int = 0
    oracle_mean_call_effect: dict[str, float] = field(default_factory=dict)
    oracle_horizons: tuple[int, ...] = ()
    oracle_days_simulated: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def customers(self) -> int:
        return self.initial_customers + self.arrivals


@dataclass
class _Snapshot:
    day: int
    start_weekday: int
    rows: np.ndarray
    population: Population
    agents: Agents
    load: Load


def generate_world(
    n_customers: int,
    days: int,
    seed: int,
    out_dir: Path,
    *,
    start_date: date = DEFAULT_START,
    oracle_as_of: Sequence[date] | None = None,
    horizon_days: int = 30,
    params: SimulationParams | None = None,
    file_format: FileFormat = "csv",
    progress: Progress | None = None,
    retention: bool = True,
    retention_start: date | None = None,
) -> WorldSummary:
    """Simulate customers day by day and write the world's tables to ``out_dir``.

    Args:
        n_customers: customers at ``start_date``; more sign up during the run.
        days: simulated days; the last is ``start_date + days - 1``.
        seed: everything is a function of it; the same seed gives the same bytes.
        out_dir: folder for ``customers.<fmt>``, ``interactions.<fmt>``,
            ``oracle.<fmt>`` and ``MANIFEST.json`` (created if missing).
        start_date: first simulated day.
        oracle_as_of: dates D for the oracle table; default one date, the last day
            minus the longest oracle horizon. Each needs D + that horizon <= last day
            so the files hold its labels; an empty list writes no oracle.
        horizon_days: H of the oracle's labels, churn in (D, D + H], and of its true
            call effect; ``params.oracle_horizons`` adds more horizons to the true
            probability (``true_probability_<H>d``, ``label_<H>d``), all from one
            forward run to the longest.
        params: the world's parameters (default :class:`SimulationParams`).
        file_format: ``"csv"`` or ``"parquet"``.
        progress: called as ``progress(stage, done, total)``.
        retention: whether a retention team works in the world (and
            ``retention_contacts.<fmt>`` is written).
        retention_start: the team's first day; default a third of the way through
            (``start_date + days // 3``).

    Returns:
        A :class:`WorldSummary` with the paths written and the world's numbers.

    Raises:
        ConfigError: an argument is out of range.
    """
    started = time.perf_counter()
    params = params or SimulationParams()
    last_day = days - 1
    oracle_days = _check_arguments(
        n_customers,
        days,
        seed,
        out_dir,
        start_date,
        oracle_as_of,
        horizon_days,
        file_format,
        longest=max((horizon_days, *params.oracle_horizons)),
    )
    start_day = _retention_start_day(retention, retention_start, start_date, days)
    out_dir = Path(out_dir)
    report = progress or (lambda stage, done, total: None)

    population_seed, days_seed, _ = np.random.SeedSequence(seed).spawn(3)
    population_rng = np.random.default_rng(population_seed)
    days_rng = np.random.default_rng(days_seed)
    pop = _initial_population(n_customers, days, params, population_rng)
    # the kinds a retention call meets come from their own stream
    _draw_kinds(pop, params, np.random.default_rng(_stream(seed, _STREAM_TRAITS)))
    team = None
    if start_day is not None:
        team_rng = np.random.default_rng(_stream(seed, _STREAM_TEAM))
        team = RetentionTeam(len(pop), start_day, horizon_days, params, team_rng)
    expected_daily = n_customers * params.issue_rate_per_day * 1.7
    n_agents = max(5, int(np.ceil(expected_daily / params.contacts_per_agent_day)))
    agents = new_agents(n_agents, 0, params, population_rng)
    load = Load(np.zeros(1, dtype=np.int32))

    recorded: list[Contacts] = []
    days_of: list[np.ndarray] = []
    snapshots: list[_Snapshot] = []
    next_case_id = 1
    first_weekday = start_date.weekday()
    for day in range(days):
        agents.turnover(day, params, days_rng)
        loads = load.draw((first_weekday + day) % 7, params, days_rng)
        contacts, next_case_id = simulate_day(
            pop, agents, loads, day, next_case_id, params, days_rng, record=True
        )
        for batch in contacts:
            recorded.append(batch)
            days_of.append(np.full(len(batch.customer), day, dtype=np.int32))
        if team is not None:
            team.act(pop, day)
        if day in oracle_days:
            active = np.flatnonzero((pop.signup_day <= day) & (pop.churn_day > day))
            snapshots.append(
                _Snapshot(day, first_weekday, active, pop.take(active), agents.copy(), load.copy())
            )
        hazard = daily_hazard(pop, day, params)
        active = (pop.signup_day <= day) & (pop.churn_day > day)
        leaving = active & (days_rng.random(len(pop), dtype=F32) < hazard)
        pop.churn_day[leaving] = day + 1
        report("simulate", day + 1, days)

    oracle_frames = []
    days_simulated = {"without_call": 0, "with_call": 0}
    for snapshot in snapshots:
        run = oracle_streams(snapshot, horizon_days, params, seed, params.oracle_streams, report)
        for arm, count in run.days_simulated.items():
            days_simulated[arm] += count
        # active rows have churn_day > D; the label is D < churned_at <= D + H
        churn_day = pop.churn_day[snapshot.rows]
        label = churn_day <= snapshot.day + horizon_days
        extra = run.horizons if params.oracle_horizons else ()
        oracle_frames.append(
            output.OracleFrame(
                snapshot.day,
                snapshot.rows,
                run.at(horizon_days),
                label.astype(np.int8),
                run.effects,
                horizons=extra,
                curve=run.curve if extra else None,
                curve_labels=np.array(
                    [churn_day <= snapshot.day + h for h in extra], dtype=np.int8
                ).reshape(len(extra), len(churn_day)),
            )
        )

    # a churn decided on the last day takes effect after it: the files do not know it
    churn_day = np.where(pop.churn_day <= last_day, pop.churn_day, NEVER)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["customers"] = output.write_customers(pop, churn_day, start_date, out_dir, file_format)
    report("write", 1, 3)
    files["interactions"], n_interactions = output.write_interactions(
        recorded, days_of, pop, start_date, out_dir, file_format
    )
    report("write", 2, 3)
    aucs: dict[str, float] = {}
    mean_effects: dict[str, float] = {}
    oracle_rows = 0
    if oracle_frames:
        files["oracle"] = output.write_oracle(
            oracle_frames, len(pop), start_date, out_dir, file_format
        )
        for frame in oracle_frames:
            as_of = str(start_date + timedelta(days=frame.day))
            aucs[as_of] = _roc_auc(frame.label, frame.probability)
            mean_effects[as_of] = float(frame.effects.mean())
            oracle_rows += len(frame.label)
    if team is not None:
        files["retention_contacts"] = output.write_retention_contacts(
            team.log, len(pop), start_date, out_dir, file_format
        )
    report("write", 3, 3)

    summary = WorldSummary(
        out_dir=out_dir,
        files=files,
        start_date=start_date,
        end_date=start_date + timedelta(days=last_day),
        initial_customers=n_customers,
        arrivals=len(pop) - n_customers,
        interactions=n_interactions,
        churned=int((churn_day <= last_day).sum()),
        churn_rate_30d=_churn_rate_30d(pop.signup_day, churn_day, last_day),
        oracle_dates=[start_date + timedelta(days=d) for d in sorted(oracle_days)],
        oracle_rows=oracle_rows,
        oracle_roc_auc=aucs,
        retention_start=None if start_day is None else start_date + timedelta(days=start_day),
        retention_contacts=0 if team is None else len(team.log),
        retention_controls=0 if team is None else int((team.log.column("groups") == 1).sum()),
        oracle_mean_call_effect=mean_effects,
        oracle_horizons=tuple(sorted({horizon_days, *params.oracle_horizons})),
        oracle_days_simulated=days_simulated,
    )
    _write_manifest(summary, n_customers, days, seed, horizon_days, params, file_format)
    return _replace_seconds(summary, time.perf_counter() - started)


def _check_arguments(
    n_customers: int,
    days: int,
    seed: int,
    out_dir: Path,
    start_date: date,
    oracle_as_of: Sequence[date] | None,
    horizon_days: int,
    file_format: str,
    *,
    longest: int | None = None,
) -> set[int]:
    """Validate the arguments; returns the oracle dates as day numbers. ``longest``: the
    longest oracle horizon (default ``horizon_days``), whose labels must fit the days."""
    if not isinstance(n_customers, int) or n_customers < 1:
        raise ConfigError(f"--customers {n_customers} is not allowed; pass a whole number >= 1")
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"--days {days} is not allowed; pass a whole number >= 1")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed {seed} is not allowed; pass a whole number >= 0")
    if not isinstance(horizon_days, int) or horizon_days < 1:
        raise ConfigError(f"--horizon {horizon_days} is not allowed; pass a whole number >= 1")
    if file_format not in ("csv", "parquet"):
        raise ConfigError(f"--format {file_format!r} is not supported; use csv or parquet")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out {out_dir} is a file; pass a folder")
    if not isinstance(start_date, date):
        raise ConfigError(f"start date {start_date!r} is not a date; pass YYYY-MM-DD")
    last_day = days - 1
    longest = horizon_days if longest is None else longest
    if oracle_as_of is None:
        if last_day - longest < 0:
            raise ConfigError(
                f"--days {days} leaves no oracle date with a {longest}-day horizon; "
                f"pass --days > {longest} or no oracle dates"
            )
        return {last_day - longest}
    oracle_days = set()
    for as_of in oracle_as_of:
        day = (as_of - start_date).days
        if not 0 <= day <= last_day - longest:
            latest = start_date + timedelta(days=last_day - longest)
            raise ConfigError(
                f"oracle date {as_of} is outside {start_date}..{latest}; its "
                f"{longest}-day labels must lie inside the simulated days"
            )
        oracle_days.add(day)
    return oracle_days


def _stream(seed: int, number: int) -> np.random.SeedSequence:
    """Stream ``number`` of the world (the first three are ``SeedSequence(seed).spawn(3)``)."""
    return np.random.SeedSequence(seed, spawn_key=(number,))


def _retention_start_day(
    retention: bool, retention_start: date | None, start_date: date, days: int
) -> int | None:
    """The team's first day as a day number, None without a team."""
    if not retention:
        return None
    if retention_start is None:
        return days // 3
    if not isinstance(retention_start, date):
        raise ConfigError(f"--retention-start {retention_start!r} is not a date; pass YYYY-MM-DD")
    day = (retention_start - start_date).days
    if not 0 <= day <= days - 1:
        last = start_date + timedelta(days=days - 1)
        raise ConfigError(
            f"--retention-start {retention_start} is outside the simulated days "
            f"{start_date}..{last}; pass a day inside them or --no-retention"
        )
    return day


def _draw_kinds(pop: Population, params: SimulationParams, rng: np.random.Generator) -> None:
    """Lost causes (outside reasons raise their base hazard) and sleeping dogs."""
    n = len(pop)
    pop.lost_cause[:] = rng.random(n) < params.lost_cause_share
    pop.base_hazard[pop.lost_cause] *= F32(params.lost_cause_hazard_factor)
    dog_share = np.asarray(params.sleeping_dog_share)[pop.contract_type]
    pop.sleeping_dog[:] = rng.random(n) < dog_share


def _initial_population(
    n_customers: int, days: int, params: SimulationParams, rng: np.random.Generator
) -> Population:
    """The base at the start (oldest first) followed by the sign-ups of each day."""
    p = params
    tenure = np.minimum(rng.exponential(p.initial_tenure_mean_days, n_customers), 15 * 365)
    initial = np.sort(-(1 + tenure.astype(np.int32)))
    per_day = rng.poisson(p.arrivals_per_customer_day * n_customers, days)
    arrivals = np.repeat(np.arange(days, dtype=np.int32), per_day)
    signup = np.concatenate([initial, arrivals]).astype(np.int32)
    n = len(signup)

    segment = (rng.random(n) < p.business_share).astype(np.int8)
    business = segment == 1
    plan = rng.choice(3, n, p=p.plan_shares).astype(np.int8)
    annual_share = np.where(business, p.annual_contract_share[1], p.annual_contract_share[0])
    contract_type = (rng.random(n) < annual_share).astype(np.int8)
    payment = np.where(
        business,
        rng.choice(3, n, p=[0.0, 0.4, 0.6]),
        rng.choice(3, n, p=[0.45, 0.45, 0.10]),
    ).astype(np.int8)
    region = rng.integers(0, 4, n).astype(np.int8)
    revenue = np.asarray(p.plan_monthly_revenue)[plan] * np.where(
        business, p.business_revenue_factor, 1.0
    )
    revenue = np.round(revenue * np.exp(rng.normal(0.0, 0.15, n)), 2)
    preferred = rng.choice(6, n, p=p.channel_shares).astype(np.int8)

    spread = np.exp(rng.normal(-(p.sensitivity_sigma**2) / 2, p.sensitivity_sigma, n))
    reaction = np.where(business, p.segment_reaction[1], p.segment_reaction[0])
    sensitivity = (reaction * spread).astype(F32)
    at_once = rng.random(n) < p.at_once_share * reaction
    patience = (p.patience_median_seconds * np.exp(rng.normal(0.0, p.patience_sigma, n))).astype(
        F32
    )
    shape = p.contact_propensity_shape
    propensity = rng.gamma(shape, 1.0 / shape, n) * p.issue_rate_per_day
    propensity = np.where(business, propensity * p.business_issue_factor, propensity).astype(F32)
    frailty = np.exp(rng.normal(-(p.frailty_sigma**2) / 2, p.frailty_sigma, n))
    base_daily = 1.0 - (1.0 - p.base_monthly_churn) ** (1.0 / 30.0)
    base_hazard = (
        base_daily
        * np.asarray(p.plan_hazard_factors)[plan]
        * np.where(contract_type == 1, p.annual_contract_factor, 1.0)
        * np.where(business, p.business_base_factor, 1.0)
        * frailty
    ).astype(F32)

    def full(value: int, dtype: type) -> np.ndarray:
        return np.full(n, value, dtype=dtype)

    return Population(
        signup_day=signup,
        segment=segment,
        plan=plan,
        contract_type=contract_type,
        payment_method=payment,
        region=region,
        monthly_revenue=revenue,
        preferred_channel=preferred,
        sensitivity=sensitivity,
        at_once=at_once,
        patience=patience,
        propensity=propensity,
        base_hazard=base_hazard,
        lost_cause=np.zeros(n, dtype=bool),
        sleeping_dog=np.zeros(n, dtype=bool),
        churn_day=full(NEVER, np.int32),
        frustration=np.zeros(n, dtype=F32),
        goodwill=np.zeros(n, dtype=F32),
        instant=np.zeros(n, dtype=F32),
        case_open=np.zeros(n, dtype=bool),
        case_id=full(0, np.int32),
        case_topic=full(0, np.int8),
        case_contacts=full(0, np.int16),
        case_status=full(UNRESOLVED, np.int8),
        case_channel=full(-1, np.int8),
        case_agent=full(-1, np.int32),
        next_contact=full(NEVER, np.int32),
        backoffice_day=full(NEVER, np.int32),
        status_known=np.zeros(n, dtype=bool),
        woken_until=full(0, np.int32),
        world=full(0, np.int32),
    )


@dataclass(frozen=True)
class OracleRun:
    """The oracle on one date: the true risk without a call at each horizon and the true
    call effect (on the training horizon) of each replicate stream."""

    horizons: tuple[int, ...]
    curve: np.ndarray  # (horizons, rows): P(leave in (D, D + H]) without a call, mean of streams
    effects: np.ndarray  # (streams, rows): the call effect on the training horizon
    days_simulated: dict[str, int]  # simulate_day calls per arm, over chunks and streams

    def at(self, horizon: int) -> np.ndarray:
        """The true probability of leaving within ``horizon`` days."""
        return self.curve[self.horizons.index(horizon)]


def oracle_streams(
    snapshot: _Snapshot,
    horizon_days: int,
    params: SimulationParams,
    seed: int,
    streams: int = 1,
    report: Progress | None = None,
) -> OracleRun:
    """The true risk without a call and the true call effect of every snapshot row.

    Each of ``streams`` independent streams runs ``params.oracle_replicates`` replicate
    worlds forward from the full state twice: without any retention call, out to the
    longest of ``horizon_days`` and ``params.oracle_horizons`` (the risk at every
    horizon is read off this one run), and with a call on D+1 (outcome drawn as the
    team's would be), out to ``horizon_days``. Both arms share every random number
    (common random numbers: the same loads, contacts and agents; replicate rows never
    leave, so the two arms draw alike), so the effect is not Monte Carlo noise of two
    separate runs; a day's draws do not depend on how many days follow, so the risk at
    ``horizon_days`` is the same whatever the longest horizon. Returns an
    :class:`OracleRun`: the no-call risk per horizon averaged over the streams and the
    effect of each stream, shape (streams, n); the oracle's ``true_call_effect`` is its
    mean over the streams. A benchmark picks the oracle's top K on one stream and
    judges it on another.
    """
    report = report or (lambda stage, done, total: None)
    horizons = tuple(sorted({horizon_days, *params.oracle_horizons}))
    curves, effects = [], []
    days_simulated = {"without_call": 0, "with_call": 0}
    for stream in range(streams):
        # stream 0 of a date keeps the key it always had; adding a date or a stream
        # leaves the others unchanged
        key = (_STREAM_ORACLE, snapshot.day) + ((stream,) if stream else ())
        calls_key = (_STREAM_ORACLE_CALLS, snapshot.day, stream)
        without, with_call, simulated = _oracle_arms(
            snapshot,
            horizons,
            horizon_days,
            params,
            np.random.SeedSequence(seed, spawn_key=key),
            np.random.SeedSequence(seed, spawn_key=calls_key),
            lambda stage, done, total, s=stream: report(stage, s * total + done, streams * total),
        )
        curves.append(without)
        effects.append(without[horizons.index(horizon_days)] - with_call)
        for arm, count in simulated.items():
            days_simulated[arm] += count
    return OracleRun(horizons, np.mean(curves, axis=0), np.asarray(effects), days_simulated)


def _oracle_arms(
    snapshot: _Snapshot,
    horizons: tuple[int, ...],
    horizon_days: int,
    params: SimulationParams,
    sequence: np.random.SeedSequence,
    calls_sequence: np.random.SeedSequence,
    report: Progress,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """P(leave within (D, D+H]) per snapshot row: without a call for each of the sorted
    ``horizons`` (shape (horizons, n), one run to the longest) and with a call on D+1
    for ``horizon_days`` (shape (n,)); and the days each arm simulated.

    Each replicate world draws its own loads and contacts; the chance of leaving is
    Rao-Blackwellised: 1 - mean over replicates of the product of daily survivals, read
    after H days for each H (the smooth version of counting the replicates whose first
    churn day is <= D + H), so replicates never need to remove a churned row.
    """
    day = snapshot.day
    n = len(snapshot.rows)
    replicates = params.oracle_replicates
    first_hazard = daily_hazard(snapshot.population, day, params).astype(np.float64)
    without = np.empty((len(horizons), n), dtype=np.float64)
    with_call = np.empty((1, n), dtype=np.float64)
    simulated = {"without_call": 0, "with_call": 0}
    chunk = max(1, params.oracle_chunk_rows // replicates)
    n_chunks = max(1, -(-n // chunk))
    chunk_seeds = sequence.spawn(n_chunks)
    call_seeds = calls_sequence.spawn(n_chunks)
    for k, lo in enumerate(range(0, n, chunk)):
        hi = min(n, lo + chunk)
        width = hi - lo
        rows = np.tile(np.arange(lo, hi), replicates)
        for arm, called in (("without_call", False), ("with_call", True)):
            out, ends = (with_call, (horizon_days,)) if called else (without, horizons)
            # the same seed in both arms: common random numbers
            rng = np.random.default_rng(chunk_seeds[k])
            call_rng = np.random.default_rng(call_seeds[k])
            pop = snapshot.population.take(rows)
            pop.world = np.repeat(np.arange(replicates, dtype=np.int32), width)
            pop.churn_day[:] = NEVER
            agents = snapshot.agents.copy()
            load = Load(np.repeat(snapshot.load.incident_days_left, replicates))
            survival = np.tile(1.0 - first_hazard[lo:hi], replicates)
            # after `seen` days the survival holds the hazards of days D .. D + seen - 1
            for seen in range(1, ends[-1] + 1):
                if seen > 1:
                    future = day + seen - 1
                    agents.turnover(future, params, rng)
                    loads = load.draw((snapshot.start_weekday + future) % 7, params, rng)
                    simulate_day(pop, agents, loads, future, 1, params, rng, record=False)
                    simulated[arm] += 1
                    if called and future == day + 1:
                        retention_call(pop, np.arange(len(pop)), future, params, call_rng)
                    survival *= 1.0 - daily_hazard(pop, future, params)
                if seen in ends:
                    risk = 1.0 - survival.reshape(replicates, width).mean(axis=0)
                    out[ends.index(seen), lo:hi] = risk
        report("oracle", k + 1, n_chunks)
    return without, with_call[0], simulated


def _churn_rate_30d(signup_day: np.ndarray, churn_day: np.ndarray, last_day: int) -> float:
    """Churned customers per 30 active customer-days over the simulated span."""
    start = np.maximum(signup_day, 0)
    end = np.minimum(churn_day, last_day + 1)
    exposure = np.clip(end - start, 0, None).sum()
    churned = ((churn_day >= 1) & (churn_day <= last_day)).sum()
    return float(30.0 * churned / exposure) if exposure else 0.0


def _roc_auc(label: np.ndarray, probability: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if label.min() == label.max():
        return float("nan")
    return float(roc_auc_score(label, probability))


def _replace_seconds(summary: WorldSummary, seconds: float) -> WorldSummary:
    return WorldSummary(**{**summary.__dict__, "seconds": seconds})


def _write_manifest(
    summary: WorldSummary,
    n_customers: int,
    days: int,
    seed: int,
    horizon_days: int,
    params: SimulationParams,
    file_format: str,
) -> None:
    """MANIFEST.json: the call, every parameter, the headline numbers, the files' digests."""
    manifest = {
        "generator": "churnml.simulator.generate_world",
        "contract_version": CONTRACT_VERSION,
        "command": (
            f"churnml generate --customers {n_customers} --days {days} --seed {seed} "
            f"--out {summary.out_dir}"
            + (" --no-retention" if summary.retention_start is None else "")
            + (
                f" --oracle-horizons {','.join(map(str, summary.oracle_horizons))}"
                if params.oracle_horizons
                else ""
            )
        ),
        "arguments": {
            "n_customers": n_customers,
            "days": days,
            "seed": seed,
            "start_date": str(summary.start_date),
            "oracle_as_of": [str(d) for d in summary.oracle_dates],
            "horizon_days": horizon_days,
            "file_format": file_format,
            "retention_start": None
            if summary.retention_start is None
            else str(summary.retention_start),
        },
        "params": asdict(params),
        "summary": {
            "end_date": str(summary.end_date),
            "customers": summary.customers,
            "initial_customers": summary.initial_customers,
            "arrivals": summary.arrivals,
            "interactions": summary.interactions,
            "churned": summary.churned,
            "churn_rate_30d": round(summary.churn_rate_30d, 5),
            "oracle_rows": summary.oracle_rows,
            "oracle_roc_auc": {k: round(v, 4) for k, v in summary.oracle_roc_auc.items()},
            "oracle_mean_call_effect": {
                k: round(v, 5) for k, v in summary.oracle_mean_call_effect.items()
            },
            "retention_contacts": summary.retention_contacts,
            "retention_controls": summary.retention_controls,
        },
        "files": {
            name: {"path": path.name, "sha256": output.sha256(path)}
            for name, path in summary.files.items()
        },
    }
    text = json.dumps(manifest, indent=2, default=list) + "\n"
    output.atomic_write_bytes(summary.out_dir / "MANIFEST.json", text.encode())
