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
        description="Day of the team's last contact (YYYY-MM-DD), from the suppression table."
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
    rank_by: Literal["revenue", "probability"] = Field(description="The ranking used.")
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
