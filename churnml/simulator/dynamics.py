"""The day-by-day dynamics of the world, vectorised over customers.

One :class:`Population` holds every customer as rows of numpy arrays: the profile
the files show, the hidden traits they do not (sensitivity, at-once leaving,
patience, problem propensity, frailty) and the hidden state that moves day by day
(frustration, goodwill, the open case). :func:`simulate_day` advances it by one day
and :func:`daily_hazard` gives each customer's chance of leaving at the end of the
day. The main run and the oracle's forward runs call the same two functions; the
oracle runs many replicate worlds at once, each row carrying its world index.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import numpy as np

from churnml.simulator.params import SimulationParams

NEVER = np.int32(2**30)
RESOLVED, PENDING, ESCALATED, UNRESOLVED = 0, 1, 2, 3  # indices into contract.STATUSES
LIVE_CHANNELS = np.array([True, True, False, False, True, False])  # can abandon a queue
F32 = np.float32


@dataclass
class Population:
    """All customers as columns; row i is customer i (or a replicate of one)."""

    # profile (observable)
    signup_day: np.ndarray  # int32, days since start (negative: before the start)
    segment: np.ndarray  # int8 index into SEGMENTS
    plan: np.ndarray  # int8 index into PLANS
    contract_type: np.ndarray  # int8
    payment_method: np.ndarray  # int8
    region: np.ndarray  # int8
    monthly_revenue: np.ndarray  # float64
    preferred_channel: np.ndarray  # int8
    # hidden traits
    sensitivity: np.ndarray  # float32
    at_once: np.ndarray  # bool: leaves at once after one very bad experience
    patience: np.ndarray  # float32 seconds
    propensity: np.ndarray  # float32 daily problem rate
    base_hazard: np.ndarray  # float32 daily hazard without tenure and experience
    lost_cause: np.ndarray  # bool: leaves for reasons service cannot touch (price, moving)
    sleeping_dog: np.ndarray  # bool: a call while content reminds them to shop around
    # hidden dynamic state
    churn_day: np.ndarray  # int32, first day no longer a customer (NEVER while active)
    frustration: np.ndarray  # float32
    goodwill: np.ndarray  # float32
    instant: np.ndarray  # float32 chance of leaving at once today
    case_open: np.ndarray  # bool
    case_id: np.ndarray  # int32
    case_topic: np.ndarray  # int8
    case_contacts: np.ndarray  # int16 contacts on the open case so far
    case_status: np.ndarray  # int8
    case_channel: np.ndarray  # int8 channel of the last contact (-1: none)
    case_agent: np.ndarray  # int32 agent id of the last served contact (-1: none)
    next_contact: np.ndarray  # int32 day the customer contacts about the open case
    backoffice_day: np.ndarray  # int32 day the back office closes a pending/escalated case
    status_known: np.ndarray  # bool: a retention call told them where the open case stands
    woken_until: np.ndarray  # int32 first day a woken sleeping dog stops shopping around
    world: np.ndarray  # int32 replicate world of the row (0 in the main run)

    def __len__(self) -> int:
        return len(self.signup_day)

    def take(self, rows: np.ndarray) -> Population:
        """A new population of the given rows (copies)."""
        return Population(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


@dataclass
class Agents:
    """The agent pool: one slot per desk; turnover puts a novice in the slot."""

    ids: np.ndarray  # int32 agent number shown as A###
    talent: np.ndarray  # float32 in (0, 1)
    hired_day: np.ndarray  # int32
    next_id: int

    def copy(self) -> Agents:
        return copy.deepcopy(self)

    def turnover(self, day: int, params: SimulationParams, rng: np.random.Generator) -> None:
        """Agents who leave today are replaced by novices with new ids."""
        leave = rng.random(len(self.ids)) < params.agent_annual_turnover / 365.0
        n_leave = int(leave.sum())
        if n_leave:
            self.ids[leave] = np.arange(self.next_id, self.next_id + n_leave, dtype=np.int32)
            self.next_id += n_leave
            self.talent[leave] = rng.beta(*params.agent_talent_beta, n_leave).astype(F32)
            self.hired_day[leave] = day

    def skill(self, day: int, params: SimulationParams) -> np.ndarray:
        """Skill in (0, 1): talent, of which novices show only a fraction until ramped up."""
        ramp = 1.0 - np.exp(-(day - self.hired_day) / params.skill_ramp_days)
        fraction = params.novice_skill_fraction + (1.0 - params.novice_skill_fraction) * ramp
        return (self.talent * fraction).astype(F32)


def new_agents(n: int, day: int, params: SimulationParams, rng: np.random.Generator) -> Agents:
    """A pool in steady state: tenures exponential with the turnover rate."""
    tenure = rng.exponential(365.0 / params.agent_annual_turnover, n)
    return Agents(
        ids=np.arange(1, n + 1, dtype=np.int32),
        talent=rng.beta(*params.agent_talent_beta, n).astype(F32),
        hired_day=(day - tenure).astype(np.int32),
        next_id=n + 1,
    )


@dataclass
class Load:
    """Per-world incident state of the daily load process."""

    incident_days_left: np.ndarray  # int32 per world

    def copy(self) -> Load:
        return Load(self.incident_days_left.copy())

    def draw(self, weekday: int, params: SimulationParams, rng: np.random.Generator) -> np.ndarray:
        """Today's load factor per world (1 = an ordinary weekday)."""
        n = len(self.incident_days_left)
        starts = (self.incident_days_left == 0) & (rng.random(n) < params.incident_probability)
        length = rng.geometric(1.0 / params.incident_mean_days, n).astype(np.int32)
        self.incident_days_left = np.where(starts, length, self.incident_days_left)
        in_incident = self.incident_days_left > 0
        self.incident_days_left = self.incident_days_left - in_incident
        sigma = params.daily_load_sigma
        noise = np.exp(rng.normal(-sigma * sigma / 2, sigma, n))
        factor = np.where(in_incident, params.incident_load, 1.0)
        return (params.weekday_load[weekday] * factor * noise).astype(F32)


@dataclass
class Contacts:
    """Today's contacts as columns (only filled when the run records)."""

    customer: np.ndarray
    second_of_day: np.ndarray
    channel: np.ndarray
    case_id: np.ndarray
    topic: np.ndarray
    wait_seconds: np.ndarray
    handle_seconds: np.ndarray
    agent: np.ndarray  # -1: nobody
    transfers: np.ndarray
    abandoned: np.ndarray
    status: np.ndarray
    csat: np.ndarray  # 0: not given


def _geometric_days(rng: np.random.Generator, mean: float, n: int) -> np.ndarray:
    return rng.geometric(1.0 / max(mean, 1.0), n).astype(np.int32)


def _close(pop: Population, rows: np.ndarray) -> None:
    pop.case_open[rows] = False
    pop.next_contact[rows] = NEVER
    pop.backoffice_day[rows] = NEVER


def _serve(
    pop: Population,
    c: np.ndarray,
    seconds: np.ndarray | None,
    day: int,
    loads: np.ndarray,
    agents: Agents,
    skill: np.ndarray,
    params: SimulationParams,
    rng: np.random.Generator,
    record: bool,
    allow_same_day_retry: bool,
) -> tuple[Contacts | None, np.ndarray, np.ndarray]:
    """One contact for each customer in ``c`` (unique) about their open case.

    ``seconds`` is the second of day of each contact (None: drawn by channel).
    Returns today's contact columns (when ``record``) and the customers who retry
    the same day after abandoning, with the second of day they do.
    """
    n = len(c)
    p = params
    prior = pop.case_contacts[c]
    last_channel = pop.case_channel[c]
    shares = np.asarray(p.channel_shares)
    drawn = rng.choice(len(shares), n, p=shares).astype(np.int8)
    first = prior == 0
    keep_preferred = rng.random(n) < p.preferred_channel_probability
    switch = rng.random(n) < p.followup_channel_switch_probability
    channel = np.where(
        first,
        np.where(keep_preferred, pop.preferred_channel[c], drawn),
        np.where(switch, drawn, last_channel),
    ).astype(np.int8)
    switched = ~first & (channel != last_channel)
    if seconds is None:
        seconds = _seconds_of_day(channel, rng)

    load = loads[pop.world[c]]
    median = np.asarray(p.wait_median_seconds, dtype=F32)[channel]
    wait = median * load**p.wait_load_exponent * np.exp(rng.normal(0.0, p.wait_sigma, n))
    patience_factor = np.asarray(p.patience_channel_factor, dtype=F32)[channel]
    patience = pop.patience[c] * patience_factor * np.exp(rng.normal(0.0, 0.3, n))
    abandoned = LIVE_CHANNELS[channel] & (rng.random(n) < 1.0 - np.exp(-wait / patience))
    # an abandoned caller waited until giving up, not the full queue time
    wait = np.where(abandoned, wait * rng.uniform(0.3, 1.0, n), wait)
    served = ~abandoned

    slot = rng.integers(0, len(agents.ids), n)
    agent = np.where(served, agents.ids[slot], -1).astype(np.int32)
    agent_skill = skill[slot]
    agent_changed = served & (pop.case_agent[c] >= 0) & (agent != pop.case_agent[c])
    topic = pop.case_topic[c]
    transfers = np.where(
        served, rng.poisson(p.transfer_rate * (1.6 - agent_skill) * (1.0 + 0.5 * (topic == 1))), 0
    ).astype(np.int8)
    logit = (
        p.resolve_intercept
        + p.resolve_skill_effect * (agent_skill - 0.6)
        - np.asarray(p.topic_difficulty, dtype=F32)[topic]
        - p.transfer_resolve_penalty * transfers
        - 0.4 * (pop.case_status[c] == ESCALATED) * ~first
    )
    resolved = served & (rng.random(n) < 1.0 / (1.0 + np.exp(-logit)))
    open_status = (rng.choice(3, n, p=np.asarray(p.open_status_shares)) + 1).astype(np.int8)
    previous_status = np.where(first, UNRESOLVED, pop.case_status[c]).astype(np.int8)
    status = np.where(resolved, RESOLVED, np.where(served, open_status, previous_status))
    status = status.astype(np.int8)

    # experience of this contact, before the customer's sensitivity
    tolerance = np.asarray(p.wait_tolerance_seconds, dtype=F32)[channel]
    excess = wait / tolerance
    long_wait = np.clip(np.log2(np.maximum(excess, 1.0)), 0.0, 3.0)
    badness = (
        p.weight_long_wait * (long_wait + abandoned)
        + p.weight_repeat * ~first * (1.0 + 0.5 * switched + 0.5 * agent_changed)
        + p.weight_repeat * 0.5 * transfers
        + p.weight_fast_resolution * 0.5 * (served & ~resolved)
    ).astype(F32)
    fast = excess <= 1.0
    goodness = (
        p.weight_fast_resolution * (resolved & first) * np.where(fast, 1.0, 0.4)
        + p.weight_fast_response * 0.5 * (served & (excess < 0.5))
        + p.weight_expertise * 0.5 * (resolved & (agent_skill > 0.7))
    ).astype(F32)
    sensitivity = pop.sensitivity[c]
    frustration_before = pop.frustration[c]
    pop.frustration[c] += sensitivity * badness
    pop.goodwill[c] += sensitivity * goodness
    severe = badness >= p.severe_badness
    leave_now = np.where(severe & pop.at_once[c], p.at_once_leave_probability, 0.0)
    pop.instant[c] = 1.0 - (1.0 - pop.instant[c]) * (1.0 - leave_now)

    # the case after this contact
    pop.case_contacts[c] = prior + 1
    pop.case_channel[c] = channel
    pop.case_agent[c] = np.where(served, agent, pop.case_agent[c])
    pop.case_status[c] = status
    _close(pop, c[resolved])
    waiting = served & ((status == PENDING) | (status == ESCALATED))
    rows = c[waiting]
    backoffice_mean = np.where(status[waiting] == PENDING, *p.backoffice_mean_days)
    fresh = day + 1 + rng.geometric(1.0 / backoffice_mean).astype(np.int32)
    keep = (pop.backoffice_day[rows] > day) & (pop.backoffice_day[rows] < NEVER)
    pop.backoffice_day[rows] = np.where(keep, pop.backoffice_day[rows], fresh)
    pop.next_contact[rows] = day + 1 + _geometric_days(rng, p.checkin_mean_days, len(rows))

    plain = served & (status == UNRESOLVED)
    returns = rng.random(n) < p.return_probability
    rows = c[plain & returns]
    pop.next_contact[rows] = day + 1 + _geometric_days(rng, p.return_mean_days, len(rows))
    pop.backoffice_day[rows] = NEVER
    gave_up = plain & ~returns

    choice = rng.random(n)
    same_day = abandoned & allow_same_day_retry & (choice < p.same_day_retry_probability)
    later_cut = p.same_day_retry_probability + p.later_retry_probability
    later = abandoned & ~same_day & (choice < later_cut)
    rows = c[later]
    pop.next_contact[rows] = day + 1 + _geometric_days(rng, 1.0, len(rows))
    gave_up |= abandoned & ~same_day & ~later
    # giving up on a problem is a failure the customer remembers
    pop.frustration[c[gave_up]] += sensitivity[gave_up] * p.weight_fast_resolution
    _close(pop, c[gave_up])

    retry_gap = rng.exponential(1800.0, n)
    retry_seconds = np.minimum(seconds + wait + retry_gap, 86399).astype(np.int32)
    retry = c[same_day]
    retry_at = retry_seconds[same_day]
    # a same-day retry must not be counted as closed: it is still the open case
    pop.next_contact[retry] = NEVER

    if not record:
        return None, retry, retry_at
    handle_median = np.asarray(p.handle_median_seconds, dtype=F32)[channel]
    handle = handle_median * (1.5 - 0.7 * agent_skill) * (1.0 + 0.35 * transfers)
    handle = np.where(served, handle * np.exp(rng.normal(0.0, 0.4, n)), 0.0)
    answered = served & (rng.random(n) < p.csat_response_rate)
    score = (
        3.4
        + 1.1 * resolved
        + 0.5 * goodness
        - 0.6 * badness
        - 0.8 * np.tanh(frustration_before)
        + rng.normal(0.0, 0.6, n)
    )
    csat = np.where(answered, np.clip(np.rint(score), 1, 5), 0).astype(np.int8)
    contacts = Contacts(
        customer=c.astype(np.int32),
        second_of_day=seconds.astype(np.int32),
        channel=channel,
        case_id=pop.case_id[c].copy(),
        topic=topic.copy(),
        wait_seconds=np.rint(wait).astype(np.int32),
        handle_seconds=np.rint(handle).astype(np.int32),
        agent=agent,
        transfers=transfers,
        abandoned=abandoned,
        status=status,
        csat=csat,
    )
    return contacts, retry, retry_at


def _seconds_of_day(channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(channel)
    office = np.clip(rng.normal(13.5 * 3600, 2.8 * 3600, n), 7 * 3600, 21 * 3600)
    anytime = rng.uniform(0, 86400, n)
    written = (channel == 2) | (channel == 3)
    return np.where(written, anytime, office).astype(np.int32)


def simulate_day(
    pop: Population,
    agents: Agents,
    loads: np.ndarray,
    day: int,
    next_case_id: int,
    params: SimulationParams,
    rng: np.random.Generator,
    record: bool,
) -> tuple[list[Contacts], int]:
    """Advance every active row through ``day``: decay, back office, contacts.

    ``loads`` is today's load factor per world. Returns the recorded contacts (empty
    when ``record`` is false) and the next free case id.
    """
    p = params
    active = (pop.signup_day <= day) & (pop.churn_day > day)
    pop.frustration *= F32(0.5 ** (1.0 / p.frustration_half_life_days))
    pop.goodwill *= F32(0.5 ** (1.0 / p.goodwill_half_life_days))
    pop.instant[:] = 0.0

    waiting = pop.case_open & ((pop.case_status == PENDING) | (pop.case_status == ESCALATED))
    _close(pop, np.flatnonzero(waiting & (pop.backoffice_day <= day)))
    # an open case whose status the customer does not know wears on them every day
    unknown = active & pop.case_open & ~pop.status_known
    pop.frustration[unknown] += (
        pop.sensitivity[unknown] * p.weight_status_unknown * p.status_unknown_daily_fraction
    )

    due = active & pop.case_open & (pop.next_contact <= day)
    tenure = day - pop.signup_day
    rate = pop.propensity * loads[pop.world]
    rate = np.where(tenure < p.onboarding_days, rate * p.onboarding_issue_factor, rate)
    new = active & ~pop.case_open & (rng.random(len(pop), dtype=F32) < rate)
    new_rows = np.flatnonzero(new)
    n_new = len(new_rows)
    pop.case_open[new_rows] = True
    pop.case_id[new_rows] = np.arange(next_case_id, next_case_id + n_new, dtype=np.int32)
    pop.case_topic[new_rows] = rng.choice(len(p.topic_shares), n_new, p=p.topic_shares)
    pop.case_contacts[new_rows] = 0
    pop.case_status[new_rows] = UNRESOLVED
    pop.case_channel[new_rows] = -1
    pop.case_agent[new_rows] = -1
    pop.backoffice_day[new_rows] = NEVER
    pop.status_known[new_rows] = False
    next_case_id += n_new

    skill = agents.skill(day, p)
    c = np.flatnonzero(due | new)
    recorded: list[Contacts] = []
    contacts, retry, retry_at = _serve(
        pop, c, None, day, loads, agents, skill, p, rng, record, allow_same_day_retry=True
    )
    if contacts is not None:
        recorded.append(contacts)
    if len(retry):
        contacts, _, _ = _serve(
            pop,
            retry,
            retry_at,
            day,
            loads,
            agents,
            skill,
            p,
            rng,
            record,
            allow_same_day_retry=False,
        )
        if contacts is not None:
            recorded.append(contacts)
    return recorded, next_case_id


def daily_hazard(pop: Population, day: int, params: SimulationParams) -> np.ndarray:
    """Each row's probability of leaving at the end of ``day`` (from its hidden state)."""
    p = params
    tenure = day - pop.signup_day
    band = np.zeros(len(tenure), dtype=np.int8)
    for edge in p.tenure_edges_days:  # a few comparisons beat searchsorted here
        band += tenure >= edge
    tenure_factor = np.asarray(p.tenure_factors, dtype=F32)[band]
    log_lift = p.frustration_hazard_coef * pop.frustration - p.goodwill_hazard_coef * pop.goodwill
    experience = np.exp(np.minimum(log_lift, 20.0))  # the cap binds long before e**20
    woken = np.where(day < pop.woken_until, F32(1.0 + p.sleeping_dog_lift), F32(1.0))
    erosion = np.minimum(pop.base_hazard * tenure_factor * experience * woken, p.daily_hazard_cap)
    return (1.0 - (1.0 - erosion) * (1.0 - pop.instant)).astype(F32)


# indices into churnml.contract.OUTCOMES
REACHED, NOT_REACHED, ACCEPTED_OFFER, DECLINED = 0, 1, 2, 3


def retention_call(
    pop: Population, rows: np.ndarray, day: int, params: SimulationParams, rng: np.random.Generator
) -> np.ndarray:
    """The retention team calls ``rows`` (unique) on ``day``: returns each call's outcome
    (an index into ``contract.OUTCOMES``) and changes the hidden state it acts through.

    A reached call takes ownership: it removes a share of the frustration (most on an
    open case, whose status the customer then knows, so it stops wearing on them; less
    the more a customer's mind is made up, ``retention_decided_frustration``) and
    adds goodwill, more with an accepted offer; all of it x the segment's reaction and
    x ``lost_cause_response`` for a lost cause. A reached sleeping dog that is content
    (no open case, little frustration) and takes no offer is woken: its erosion hazard
    rises for ``sleeping_dog_days``. Calls that do not reach change nothing.
    """
    p = params
    n = len(rows)
    u_reach, u_offer, u_accept = rng.random((3, n))
    frustration = pop.frustration[rows]
    lost = pop.lost_cause[rows]
    open_case = pop.case_open[rows]
    response = np.asarray(p.segment_reaction)[pop.segment[rows]] * np.where(
        lost, p.lost_cause_response, 1.0
    )
    reached = u_reach < p.retention_reach_probability
    offered = reached & (u_offer < p.retention_offer_probability)
    accept = p.retention_accept_base + p.retention_accept_frustration * np.tanh(frustration)
    accepted = offered & (u_accept < accept * np.where(lost, p.lost_cause_response, 1.0))
    outcome = np.where(
        ~reached,
        NOT_REACHED,
        np.where(accepted, ACCEPTED_OFFER, np.where(offered, DECLINED, REACHED)),
    ).astype(np.int8)

    content = ~open_case & (frustration < p.sleeping_dog_content_frustration)
    decided = 1.0 / (1.0 + (frustration / p.retention_decided_frustration) ** 2)
    relief = np.clip(
        p.retention_relief
        * np.where(open_case, 1.0, p.retention_closed_case_factor)
        * response
        * decided,
        0.0,
        1.0,
    )
    goodwill = response * (p.retention_goodwill + p.retention_offer_goodwill * accepted)
    r = rows[reached]
    pop.frustration[r] = (frustration * (1.0 - relief))[reached].astype(F32)
    pop.goodwill[r] += goodwill[reached].astype(F32)
    pop.status_known[rows[reached & open_case]] = True
    woken = rows[reached & content & pop.sleeping_dog[rows] & ~accepted]
    pop.woken_until[woken] = day + 1 + p.sleeping_dog_days
    return outcome
