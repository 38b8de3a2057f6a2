"""Parameters of the sample-world simulator, each with the source of its value.

Every field of :class:`SimulationParams` carries ``metadata["source"]``: either the
study in ``shared/domain.md`` the value is taken from, or ``assumption: ...`` with the
reason when domain.md gives no number. ``data/README.md`` lists them all
(:func:`parameter_rows` produces that table, so the two never disagree).

Channel-indexed tuples follow ``churnml.contract.CHANNELS``
(phone, chat, email, social, store, other); topic-indexed tuples follow ``TOPICS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import Any

from churnml.errors import ConfigError

TOPICS: tuple[str, ...] = ("billing", "technical", "contract", "moving", "complaint", "other")
SEGMENTS: tuple[str, ...] = ("consumer", "business")
PLANS: tuple[str, ...] = ("basic", "standard", "premium")
CONTRACT_TYPES: tuple[str, ...] = ("monthly", "annual")
PAYMENT_METHODS: tuple[str, ...] = ("card", "direct_debit", "invoice")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")

PEGA = "domain.md, Pegasystems 2019"
VITAL = "domain.md, VitalSmarts"


def _param(default: Any, source: str) -> Any:
    return field(default=default, metadata={"source": source})


@dataclass(frozen=True)
class SimulationParams:
    """Every number behind the simulated world; the defaults are the sample world's."""

    # --- population --------------------------------------------------------------
    business_share: float = _param(
        0.2, "assumption: a mostly consumer base with a business minority"
    )
    plan_shares: tuple[float, float, float] = _param(
        (0.5, 0.35, 0.15), "assumption: cheaper plans are the most common (basic..premium)"
    )
    plan_monthly_revenue: tuple[float, float, float] = _param(
        (25.0, 45.0, 80.0), "assumption: typical consumer tariff prices per plan"
    )
    business_revenue_factor: float = _param(
        3.0, "assumption: business accounts pay for several lines"
    )
    annual_contract_share: tuple[float, float] = _param(
        (0.35, 0.6), "assumption: share on annual contracts (consumer, business)"
    )
    initial_tenure_mean_days: float = _param(
        1100.0, "assumption: mean tenure of the starting base, about 1/monthly churn"
    )
    arrivals_per_customer_day: float = _param(
        0.0008, "assumption: sign-ups that roughly replace churners (~2.4% a month)"
    )

    # --- contacts ----------------------------------------------------------------
    issue_rate_per_day: float = _param(
        0.018, "assumption: ~6 new problems a customer-year, ~8 contacts with follow-ups"
    )
    contact_propensity_shape: float = _param(
        2.0, "assumption: gamma spread of how often customers have problems (mean 1)"
    )
    business_issue_factor: float = _param(
        1.4, "assumption: business accounts have more lines, so more problems"
    )
    onboarding_days: int = _param(60, "assumption: the first two months bring set-up questions")
    onboarding_issue_factor: float = _param(1.8, "assumption: set-up questions double the rate")
    channel_shares: tuple[float, ...] = _param(
        (0.42, 0.22, 0.16, 0.05, 0.10, 0.05), "assumption: phone-led channel mix"
    )
    preferred_channel_probability: float = _param(
        0.7, "assumption: a new problem usually goes to the customer's usual channel"
    )
    followup_channel_switch_probability: float = _param(
        0.45, f"{PEGA}: 76% have to repeat themselves across channels, so switches are common"
    )
    topic_shares: tuple[float, ...] = _param(
        (0.30, 0.35, 0.15, 0.05, 0.10, 0.05), "assumption: billing and technical dominate"
    )
    topic_difficulty: tuple[float, ...] = _param(
        (0.0, 0.5, 0.3, 0.2, 0.8, 0.1), "assumption: logit penalty on resolution per topic"
    )

    # --- daily load and waits ----------------------------------------------------
    weekday_load: tuple[float, ...] = _param(
        (1.25, 1.10, 1.05, 1.0, 1.0, 0.75, 0.55), "assumption: Monday peak, quiet weekend"
    )
    daily_load_sigma: float = _param(0.15, "assumption: day-to-day noise of contact volume")
    incident_probability: float = _param(
        0.015, "assumption: an outage or billing run about every two months"
    )
    incident_load: float = _param(1.8, "assumption: an incident nearly doubles contact volume")
    incident_mean_days: float = _param(2.0, "assumption: incidents last a couple of days")
    wait_load_exponent: float = _param(
        2.0,
        "assumption: queue waits grow faster than load (Erlang-C shape); "
        f"{PEGA}: long waits are the top frustration (82%)",
    )
    wait_median_seconds: tuple[float, ...] = _param(
        (150.0, 60.0, 14400.0, 3600.0, 240.0, 600.0),
        "assumption: median wait on a normal day per channel (email/social: first reply)",
    )
    wait_sigma: float = _param(0.9, "assumption: log-normal spread of waits")
    wait_tolerance_seconds: tuple[float, ...] = _param(
        (300.0, 120.0, 86400.0, 21600.0, 600.0, 900.0),
        f"assumption: wait a customer accepts per channel; beyond it the wait hurts ({PEGA}: 82%)",
    )
    patience_median_seconds: float = _param(
        2400.0, "assumption: median patience in a live queue (Erlang-A abandonment)"
    )
    patience_channel_factor: tuple[float, ...] = _param(
        (1.0, 1.3, 4.0, 4.0, 4.0, 4.0),
        "assumption: chat runs beside other work and a "
        "shop queue is visible, so people wait longer there (email/social never abandon)",
    )
    patience_sigma: float = _param(0.7, "assumption: log-normal spread of patience")
    same_day_retry_probability: float = _param(
        0.45, "assumption: after hanging up, many try again the same day"
    )
    later_retry_probability: float = _param(0.35, "assumption: others try again within days")

    # --- agents ------------------------------------------------------------------
    contacts_per_agent_day: float = _param(
        12.0, "assumption: contacts one agent handles a day beside back-office work (pool size)"
    )
    agent_annual_turnover: float = _param(
        0.45,
        "domain.md, why bad service persists / cycle of failure: high staff turnover "
        "(no number given; 45% a year is an assumption)",
    )
    agent_talent_beta: tuple[float, float] = _param(
        (6.0, 3.0),
        "domain.md, service standards: without standards service depends on "
        "the individual; talent spread is an assumption",
    )
    novice_skill_fraction: float = _param(
        0.5, "domain.md, cycles of service: untrained novices; the fraction is an assumption"
    )
    skill_ramp_days: float = _param(120.0, "assumption: agents learn over about four months")

    # --- outcomes ----------------------------------------------------------------
    resolve_intercept: float = _param(
        1.5, "assumption: about 70% first-contact resolution for an average agent"
    )
    resolve_skill_effect: float = _param(
        3.0, f"{PEGA}: agents' expertise makes service good (48%); slope is an assumption"
    )
    transfer_rate: float = _param(
        0.3, "assumption: mean transfers per contact for an average agent, more for novices"
    )
    transfer_resolve_penalty: float = _param(
        0.35, "assumption: each transfer lowers the odds of resolution"
    )
    open_status_shares: tuple[float, float, float] = _param(
        (0.40, 0.25, 0.35),
        "assumption: an unresolved contact ends pending, escalated or plainly unresolved",
    )
    backoffice_mean_days: tuple[float, float] = _param(
        (5.0, 10.0),
        f"assumption: back-office days for pending, escalated cases; {PEGA}: "
        "64% are frustrated by not knowing the status meanwhile",
    )
    checkin_mean_days: float = _param(
        6.0, "assumption: days before a customer asks about an open case"
    )
    return_probability: float = _param(
        0.85, f"{PEGA}: unresolved problems bring customers back (76% must repeat themselves)"
    )
    return_mean_days: float = _param(2.0, "assumption: days before an unresolved customer returns")
    handle_median_seconds: tuple[float, ...] = _param(
        (420.0, 600.0, 300.0, 240.0, 600.0, 400.0), "assumption: median handle time per channel"
    )
    csat_response_rate: float = _param(0.22, "assumption: share of served contacts surveyed")

    # --- experience weights ------------------------------------------------------
    weight_long_wait: float = _param(0.82, f"{PEGA}: long waits frustrate 82%")
    weight_repeat: float = _param(0.76, f"{PEGA}: repeating yourself frustrates 76%")
    weight_status_unknown: float = _param(0.64, f"{PEGA}: not knowing the status frustrates 64%")
    weight_fast_resolution: float = _param(0.59, f"{PEGA}: fast resolution makes it good (59%)")
    weight_expertise: float = _param(0.48, f"{PEGA}: agent expertise makes it good (48%)")
    weight_fast_response: float = _param(0.47, f"{PEGA}: fast response makes it good (47%)")
    status_unknown_daily_fraction: float = _param(
        0.08, "assumption: a day with an open case costs 8% of the status weight"
    )
    frustration_half_life_days: float = _param(
        45.0, "domain.md, what follows: customers erode over weeks; half-life is an assumption"
    )
    goodwill_half_life_days: float = _param(60.0, "assumption: good experiences fade slowly")

    # --- who reacts --------------------------------------------------------------
    segment_reaction: tuple[float, float] = _param(
        (1.0, 0.56),
        f"{VITAL}: 75% of B2C but 42% of B2B customers cut spending after bad "
        "service; business reaction = 42/75 of the consumer one (consumer, business)",
    )
    sensitivity_sigma: float = _param(
        0.35,
        "assumption: individual spread of sensitivity (hidden; kept moderate so "
        "history explains most of the risk)",
    )
    at_once_share: float = _param(
        0.44,
        f"{PEGA}: of those who would leave, 44% stop at once and switch "
        "(scaled by segment_reaction for business customers)",
    )
    severe_badness: float = _param(
        2.6, "assumption: badness of one contact that counts as a very bad experience"
    )
    at_once_leave_probability: float = _param(
        0.3, "assumption: chance an at-once leaver acts on one very bad experience"
    )

    # --- churn hazard ------------------------------------------------------------
    base_monthly_churn: float = _param(
        0.008, "assumption: churn without service effects, standard plan, monthly contract"
    )
    tenure_edges_days: tuple[int, int, int] = _param(
        (90, 365, 730), "assumption: tenure bands for the base hazard"
    )
    tenure_factors: tuple[float, float, float, float] = _param(
        (1.8, 1.3, 1.0, 0.75),
        "assumption: new customers leave more often (no bond yet, "
        "domain.md cycle of success: customers bond over time)",
    )
    plan_hazard_factors: tuple[float, float, float] = _param(
        (1.25, 1.0, 0.8), "assumption: cheaper plans churn more"
    )
    annual_contract_factor: float = _param(0.55, "assumption: contracts hold customers")
    business_base_factor: float = _param(0.8, "assumption: switching costs for businesses")
    frailty_sigma: float = _param(
        0.3, "assumption: hidden per-customer propensity to leave (price, competitors)"
    )
    frustration_hazard_coef: float = _param(
        1.25, f"{PEGA}: 75% would stop over bad service; strength is an assumption"
    )
    goodwill_hazard_coef: float = _param(
        0.45, f"{PEGA}: fast resolution is what makes service good; strength is an assumption"
    )
    daily_hazard_cap: float = _param(0.2, "assumption: bound on the erosion hazard per day")

    # --- kinds of customer a retention call meets ----------------------------------
    lost_cause_share: float = _param(
        0.05,
        "domain.md, retention calls (Ascarza 2018; the four kinds of customer): some "
        "leave for reasons service cannot touch (price, moving); the share is an assumption",
    )
    lost_cause_hazard_factor: float = _param(
        10.0,
        "assumption: a lost cause's base hazard (outside reasons) is ten times the usual, "
        "so lost causes are among the riskiest (Ascarza 2018: the riskiest are often not "
        "the ones a call helps)",
    )
    sleeping_dog_share: tuple[float, float] = _param(
        (0.25, 0.08),
        "domain.md, retention calls: a call reminds some content customers to shop "
        "around; shares on monthly and annual contracts (a contract holds them) are "
        "assumptions",
    )

    # --- the retention team ------------------------------------------------------
    retention_daily_share: float = _param(
        0.003, "assumption: the team picks 0.3% of active customers a day (~9 of 3,000)"
    )
    retention_random_share: float = _param(
        0.3,
        "assumption: share of the day's picks drawn at random among eligible customers "
        "(the rest by the team's own risk rule), so the picks cover every kind",
    )
    retention_control_share: float = _param(
        0.2,
        "domain.md, retention calls (Ascarza 2018): a randomised holdout measures what "
        "calls change; 20% of picks is an assumption",
    )
    retention_cooldown_days: int = _param(
        31,
        "assumption: nobody is picked again within 31 days (more than the horizon, so a "
        "control row's promise holds: no call from its day to the horizon after it)",
    )
    retention_reach_probability: float = _param(
        0.7, "assumption: share of treated customers the team reaches by phone"
    )
    retention_offer_probability: float = _param(
        0.6, "assumption: share of reached customers the team makes a retention offer"
    )
    retention_accept_base: float = _param(
        0.25, "assumption: chance an offer is accepted by a customer without frustration"
    )
    retention_accept_frustration: float = _param(
        0.4,
        "assumption: added chance of accepting, x tanh(frustration): unhappy customers "
        "welcome the call",
    )
    retention_relief: float = _param(
        0.5,
        "domain.md, what follows for retention calls: a call that takes ownership and "
        "says where a case stands works on not knowing the status (64%) and fast "
        "resolution (59%); share of frustration it removes on an open case is an assumption",
    )
    retention_decided_frustration: float = _param(
        2.5,
        "domain.md, retention calls (Ascarza 2018: some leave whatever the team does): "
        "a call's relief x 1 / (1 + (frustration / 2.5)^2), so a customer who has long "
        "made up their mind is moved less; the scale is an assumption",
    )
    retention_closed_case_factor: float = _param(
        0.4,
        "assumption: without an open case a call removes 40% as much frustration "
        "(it can only apologise for what went badly)",
    )
    retention_goodwill: float = _param(
        0.3, "assumption: goodwill a reached call adds (before segment reaction)"
    )
    retention_offer_goodwill: float = _param(
        0.6, "assumption: goodwill an accepted offer adds (before segment reaction)"
    )
    lost_cause_response: float = _param(
        0.1,
        "domain.md, what follows for retention calls: a lost cause leaves for reasons "
        "service cannot touch; a call has 10% of its usual effect on them (assumption)",
    )
    sleeping_dog_content_frustration: float = _param(
        0.3,
        "assumption: a sleeping dog is woken only while content: no open case and "
        "frustration below this",
    )
    sleeping_dog_lift: float = _param(
        2.0,
        "domain.md, retention calls: a call reminds a sleeping dog to leave; a woken "
        "dog's erosion hazard is x(1 + 2.0) (assumption)",
    )
    sleeping_dog_days: int = _param(
        45, "assumption: days a woken sleeping dog keeps shopping around"
    )

    # --- oracle ------------------------------------------------------------------
    oracle_replicates: int = _param(
        200, "assumption: Monte Carlo replicates per customer (Rao-Blackwellised)"
    )
    oracle_chunk_rows: int = _param(
        400_000, "assumption: rows simulated at once by the oracle (bounds memory)"
    )
    oracle_streams: int = _param(
        1,
        "assumption: independent replicate streams of oracle_replicates each for the "
        "true call effect; with 2 or more the oracle also writes each stream's effect "
        "(a benchmark picks the oracle's top K on one stream and judges it on another)",
    )
    oracle_horizons: tuple[int, ...] = _param(
        (),
        "assumption: extra horizons in days for the oracle's true probability, all from "
        "one forward run to the longest (the training horizon is always among them); "
        "empty: the training horizon only",
    )

    def __post_init__(self) -> None:
        for name, expected in (
            ("channel_shares", 6),
            ("wait_median_seconds", 6),
            ("wait_tolerance_seconds", 6),
            ("handle_median_seconds", 6),
            ("topic_shares", len(TOPICS)),
            ("topic_difficulty", len(TOPICS)),
            ("weekday_load", 7),
        ):
            if len(getattr(self, name)) != expected:
                raise ConfigError(
                    f"SimulationParams.{name} has {len(getattr(self, name))} "
                    f"values; expected {expected}"
                )
        for name in ("channel_shares", "topic_shares", "plan_shares", "open_status_shares"):
            total = sum(getattr(self, name))
            if abs(total - 1.0) > 1e-6:
                raise ConfigError(f"SimulationParams.{name} sums to {total:.4f}; expected 1")
        for name in (
            "lost_cause_share",
            "retention_daily_share",
            "retention_random_share",
            "retention_control_share",
            "retention_reach_probability",
            "retention_offer_probability",
            "retention_relief",
            "lost_cause_response",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"SimulationParams.{name}={getattr(self, name)}; expected a share from 0 to 1"
                )
        if self.oracle_streams < 1:
            raise ConfigError(
                f"SimulationParams.oracle_streams={self.oracle_streams}; expected at least 1"
            )
        for horizon in self.oracle_horizons:
            if isinstance(horizon, bool) or not isinstance(horizon, Integral) or horizon < 1:
                raise ConfigError(
                    f"SimulationParams.oracle_horizons has {horizon!r}; expected whole "
                    "days >= 1, e.g. (7, 30, 90)"
                )
        if self.oracle_replicates < 1:
            raise ConfigError(
                f"SimulationParams.oracle_replicates={self.oracle_replicates}; expected at least 1"
            )


def parameter_rows(params: SimulationParams | None = None) -> list[tuple[str, str, str]]:
    """(name, value, source) for every field, in declaration order."""
    params = params or SimulationParams()
    return [(f.name, repr(getattr(params, f.name)), f.metadata["source"]) for f in fields(params)]
