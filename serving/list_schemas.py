"""Shapes of the risk-list endpoints (``GET /risk-list``, ``POST /score_ids``), for the
OpenAPI spec: every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from serving.schemas import CustomerScore


class ListReason(BaseModel):
    code: str = Field(description="Stable code of the reason's family, e.g. waiting.")
    text: str = Field(description="The reason in plain words with the customer's own numbers.")


class ListRow(BaseModel):
    """One customer on a day's list."""

    rank: int = Field(description="Position in the day's ranking, 1 = call first.")
    customer_id: str = Field(description="The customer's key.")
    segment: str | None = Field(description="The customer's segment, if known.")
    plan: str | None = Field(description="The customer's plan, if known.")
    monthly_revenue: float | None = Field(description="Monthly revenue, if known.")
    churn_probability: float = Field(
        description="Calibrated probability of leaving within the model's horizon."
    )
    risk_band: Literal["low", "medium", "high"] = Field(
        description="high: at least twice the training churn rate; medium: at least it."
    )
    revenue_at_risk: float | None = Field(
        description="churn_probability x monthly_revenue x the configured months; empty "
        "without a revenue figure."
    )
    thin_history: bool = Field(
        description="Less history than the feature windows (joined fewer days before the "
        "list's day than the longest window, 90 by default): the score rests on little "
        "data, and the first reason says so."
    )
    likely_within_days: int | None = Field(
        default=None,
        description="A model trained with --horizons: the earliest trained horizon (days) by "
        "which the churn probability reaches half of the longest horizon's: if the customer "
        "leaves within the longest horizon, it is at least as likely as not within this many "
        "days. null without horizons. Not part of the ranking.",
    )
    horizons: dict[str, float] | None = Field(
        default=None,
        description='A model trained with --horizons: P(churn within H) by horizon {"7": p7, '
        '"30": p30, "90": p90}, never decreasing; null without horizons.',
    )
    reasons: list[ListReason] = Field(description="Up to 3 reasons, strongest first.")
    action: str = Field(description="Suggested next step for the retention agent.")
    on_list: bool = Field(
        description="True for the customers within the team's daily capacity (the list)."
    )
    change: Literal["new", "risen", "fallen", "steady"] | None = Field(
        description="Against the previous list (on-list rows only): new on it, probability "
        "risen or fallen by at least the tolerance, or steady."
    )
    previous_rank: int | None = Field(description="Rank on the previous list, if scored then.")
    previous_probability: float | None = Field(
        description="Probability on the previous list, if scored then."
    )
    suppressed: bool = Field(
        description="Contacted by the retention team recently: shown, but not counted "
        "against the capacity."
    )
    last_contacted: str | None = Field(
        description="Day of the team's last contact (YYYY-MM-DD), from the retention contacts."
    )
    group: Literal["treated", "control"] | None = Field(
        description="The day's pick: treated (to be called) or control (a random holdout, "
        "not to be called: it measures what calls change). Empty off the list, for "
        "suppressed customers, and on lists stored before churnml kept controls."
    )
    call_effect: float | None = Field(
        description="The drop in churn probability within the horizon a call buys (negative: "
        "a call may do harm). Empty without a call-effect head."
    )
    saved_revenue: float | None = Field(
        description="The revenue a call is expected to keep: call_effect x monthly_revenue x "
        "the configured months. Empty without a call-effect head or a revenue figure."
    )
    not_listed_because: str | None = Field(
        description="Why this customer is not picked: for a high-risk customer whose call "
        "effect is below the floor (ranking by saved revenue), 'likely to leave whatever we "
        "do' or 'a call may do harm'; for one held out as a control on an earlier list, "
        "until when."
    )


class Departure(BaseModel):
    """A customer on the previous list who is not on this one."""

    customer_id: str = Field(description="The customer's key.")
    previous_rank: int = Field(description="Rank on the previous list.")
    previous_probability: float = Field(description="Probability on the previous list.")
    rank: int | None = Field(description="Rank today, if still scored.")
    churn_probability: float | None = Field(description="Probability today, if still scored.")
    why: str = Field(description="Why the customer left the list, in words.")


class Drift(BaseModel):
    warning: bool = Field(description="True when any drift threshold was crossed.")
    warnings: list[str] = Field(description="What crossed a threshold, in words.")
    psi_over: list[str] = Field(description="Features whose PSI is over the warning level.")
    psi_warning: float = Field(description="PSI warning level.")


class RiskListPage(BaseModel):
    """A page of one day's risk list."""

    date: str = Field(description="The list's as-of day (YYYY-MM-DD).")
    created_at: str = Field(description="When the list was stored (UTC, ISO 8601).")
    model_name: str = Field(description="Registered model that scored the list.")
    model_version: str = Field(description="Its version.")
    previous_date: str | None = Field(description="The list the changes are against.")
    capacity: int = Field(description="Customers the team can call a day.")
    rank_by: Literal["saved-revenue", "revenue", "probability"] = Field(
        description="The ranking used."
    )
    rank_by_reason: str | None = Field(
        description="Why the list ranks so, in one line (e.g. the call-effect head did not "
        "pass its gate). Empty for lists stored before churnml recorded it."
    )
    control_share: float | None = Field(
        description="The share of the day's picks held out as controls (not to be called)."
    )
    scored: int = Field(description="Customers scored that day.")
    on_list: int = Field(description="Customers on the list (capacity plus suppressed ones).")
    data_through: str | None = Field(
        description="The last day the list's data covers (YYYY-MM-DD): the last contact day "
        "of the tables, or the list's day when they go on past it. Empty for lists stored "
        "before churnml recorded it."
    )
    data_lag_days: int | None = Field(
        description="Days between data_through and the list's day (0: up to date)."
    )
    data_stale: bool = Field(
        description="True when the data ends more than the grace days "
        "(CHURNML_FRESHNESS_GRACE_DAYS) before the list's day: the page warns."
    )
    lacking_fields: dict[str, int] = Field(
        description="How many scored customers lacked each profile field the model was "
        "trained on almost always having (the model's input_schema at GET /model), e.g. "
        '{"contract_type": 8}; their scores treat it as unknown. Empty when none did, and for '
        "lists stored before churnml counted it."
    )
    band_thresholds: dict[str, float] = Field(
        description="Lowest probability of each band: high and medium."
    )
    band_shares: dict[str, float] = Field(description="Share of scored customers in each band.")
    drift: Drift = Field(description="The day's drift check.")
    total: int = Field(description="Rows matching the filters.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Rows skipped.")
    rows: list[ListRow] = Field(description="The page of rows, in rank order.")
    departures: list[Departure] = Field(description="Customers who left the list since then.")
    dates: list[str] = Field(description="Days with a stored list, newest first (up to 60).")
    segments: list[str] = Field(description="The segments on the day's list, for filters.")


class ScoreIdsResponse(BaseModel):
    list_date: str = Field(description="The day of the list the scores come from.")
    scores: list[CustomerScore] = Field(
        description="One score per known customer id, in request order."
    )
    not_found: list[str] = Field(
        description="Ids that the latest list does not hold (not active that day, or unknown)."
    )


class DetailReason(BaseModel):
    """A reason of the customer's row, with what stands behind it."""

    code: str = Field(description="Stable code of the reason's family, e.g. waiting.")
    text: str = Field(description="The reason in plain words with the customer's own numbers.")
    family: str = Field(description="The reason's feature family, e.g. waiting.")
    kind: Literal["action", "context"] = Field(
        description="action: the team can act on it; context: a fact of the account."
    )
    contacts: list[str] = Field(
        description="interaction_id of the recent contacts behind the reason (in contacts)."
    )
    cases: list[str] = Field(description="case_id of the cases behind the reason (in cases).")


class DetailContact(BaseModel):
    """One of the customer's recent service contacts, as the list saw it."""

    interaction_id: str | None = Field(description="The contact's key.")
    started_at: str = Field(description="When it started (UTC, ISO 8601).")
    channel: str | None = Field(description="phone, chat, email, social, store or other.")
    topic: str | None = Field(description="The contact's topic, if known.")
    case_id: str | None = Field(description="The case it belongs to, if any.")
    status: str | None = Field(description="The case's status when the contact ended.")
    wait_seconds: float | None = Field(description="Time before an agent answered.")
    handle_seconds: float | None = Field(description="Time an agent spent on it.")
    transfers: float | None = Field(description="Times it was passed to another agent.")
    csat: float | None = Field(description="The customer's rating of it, 1 to 5, if given.")
    abandoned: bool = Field(description="The customer gave up before being served.")
    long_wait: bool = Field(description="The wait was over the channel's long-wait limit.")
    repeat: bool = Field(description="The case had an earlier contact: the customer came back.")
    transferred: bool = Field(description="Passed on at least once.")
    low_csat: bool = Field(description="Rated 2 out of 5 or less.")


class DetailCase(BaseModel):
    """One of the customer's cases with a contact in the window."""

    case_id: str = Field(description="The case's key.")
    topic: str | None = Field(description="The topic of its first contact.")
    first_contact: str = Field(description="Day of its first contact (YYYY-MM-DD).")
    last_contact: str = Field(description="Day of its last contact up to the list's day.")
    contacts: int = Field(description="Its contacts up to the list's day.")
    status: str | None = Field(description="Its status after the last contact.")
    open: bool = Field(description="Not resolved on the list's day.")
    age_days: int = Field(description="Days from its first contact to the list's day.")


class HistoryPoint(BaseModel):
    """The customer on one of the last lists."""

    list_date: str = Field(description="The list's day (YYYY-MM-DD).")
    rank: int = Field(description="Rank on that list.")
    churn_probability: float = Field(description="Probability on that list.")
    risk_band: Literal["low", "medium", "high"] = Field(description="Band on that list.")
    on_list: bool = Field(description="Within the capacity that day.")


class RetentionContact(BaseModel):
    """A contact of the retention team with the customer, from its log."""

    contacted_at: str = Field(description="The day the customer was picked (YYYY-MM-DD).")
    group: str | None = Field(description="treated or control.")
    outcome: str | None = Field(description="reached, not_reached, accepted_offer or declined.")
    channel: str | None = Field(description="How the team reached out.")


class CustomerDetail(BaseModel):
    """One customer on a day's list, with what stands behind the score (the page's detail
    view)."""

    date: str = Field(description="The list's day (YYYY-MM-DD).")
    customer_id: str = Field(description="The customer's key.")
    model_name: str = Field(description="Registered model that scored the list.")
    model_version: str = Field(description="Its version.")
    data_through: str | None = Field(description="The last day the list's data covers.")
    data_lag_days: int | None = Field(description="Days between data_through and the list's day.")
    data_stale: bool = Field(description="The data ends more than the grace days before it.")
    band_thresholds: dict[str, float] = Field(
        description="Lowest probability of each band: high and medium."
    )
    row: ListRow = Field(description="The customer's row on the list.")
    reasons: list[DetailReason] = Field(description="The row's reasons, each with its evidence.")
    action: str = Field(description="Suggested next step for the retention agent.")
    evidence_kept: bool = Field(
        description="Contacts and cases were kept with the list for this customer (for the "
        "customers on the list and in the high and medium bands)."
    )
    evidence_note: str | None = Field(description="Why no contacts are shown, when none were kept.")
    window_days: int | None = Field(description="The window the contacts are from, in days.")
    contacts_in_window: int | None = Field(description="The customer's contacts in the window.")
    contacts: list[DetailContact] = Field(
        description="The last contacts in the window (at most 10), newest first."
    )
    cases: list[DetailCase] = Field(
        description="Cases with a contact in the window (at most 5): open ones first, oldest "
        "first, then the last closed ones."
    )
    history: list[HistoryPoint] = Field(
        description="The customer on the last lists up to this day (at most 12), newest first."
    )
    retention_contacts_recorded: bool = Field(
        description="False while the store holds no retention contact at all (none imported "
        "or sent to POST /retention-contacts yet)."
    )
    retention_contacts: list[RetentionContact] = Field(
        description="The team's contacts with the customer, newest first (at most 12)."
    )
