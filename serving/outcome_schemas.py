"""Request and response models of ``POST /retention-contacts`` and ``GET /report``.

A contact's fields are bounded text here; their values (a date, a known group, outcome and
channel) are checked by the contract's own rules (``churnml.validation``), whose answer
(422) names the row and the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from churnml.contract import CHANNELS, GROUPS, OUTCOMES

MAX_CONTACTS = 1000  # per request, as /score's customers
MAX_ID = 200
Word = Annotated[str, Field(max_length=32)]


class RetentionContact(BaseModel):
    """One pick of the retention team (contract v1.1's ``retention_contacts`` row)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=MAX_ID, description="The customer's id.")
    contacted_at: str = Field(
        min_length=1,
        max_length=32,
        description="The day the customer was picked (and, when treated, contacted): YYYY-MM-DD.",
        examples=["2026-06-10"],
    )
    group: Word | None = Field(
        default=None,
        description=f"One of {', '.join(GROUPS)}; empty: treated.",
        examples=["treated"],
    )
    outcome: Word | None = Field(
        default=None, description=f"One of {', '.join(OUTCOMES)}.", examples=["reached"]
    )
    channel: Word | None = Field(
        default=None, description=f"One of {', '.join(CHANNELS)}.", examples=["phone"]
    )

    @field_validator("*")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        """Text every database keeps: UTF-8 (no lone surrogate), no NUL (PostgreSQL
        refuses it)."""
        if value is None:
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid UTF-8 (no lone surrogates)") from None
        if "\x00" in value:
            raise ValueError("text must not hold a NUL character")
        return value


class StoredResponse(BaseModel):
    stored: int = Field(ge=0, description="Contacts written: new ones and updated ones.")
    new: int = Field(ge=0, description="Contacts not stored before.")
    updated: int = Field(
        ge=0, description="Contacts stored before whose outcome or channel changed."
    )
    unchanged: int = Field(ge=0, description="Contacts stored before exactly as sent.")


class Interval(BaseModel):
    value: float | None = Field(description="The estimate; null without data.")
    low: float | None = Field(description="Lower end of the 95% interval.")
    high: float | None = Field(description="Upper end of the 95% interval.")


class Share(BaseModel):
    n: int = Field(ge=0, description="Picks in the group whose outcome is known.")
    churned: int | None = Field(default=None, ge=0, description="Of them, churned.")
    rate: float | None = Field(description="Churned / n.")
    low: float | None = Field(description="Wilson 95% interval, lower end.")
    high: float | None = Field(description="Wilson 95% interval, upper end.")


class Realised(BaseModel):
    unknown: int = Field(ge=0, description="Picks not in the customers table (no outcome).")
    treated: Share
    control: Share
    difference: Interval = Field(description="Control churn minus treated churn.")
    customers_kept: Interval = Field(description="Difference x treated picks.")
    revenue_kept: Interval = Field(
        description="Difference x treated picks' monthly revenue x the list's revenue months."
    )
    precision_at_k: Share = Field(description="Share of the control picks that churned.")
    conclusive: bool = Field(description="Both groups have at least min_controls picks.")
    verdict: str


class BandOutcome(BaseModel):
    band: Literal["high", "medium", "low"]
    customers: int = Field(ge=0, description="Customers scored in the band.")
    predicted: float | None = Field(description="Their mean predicted probability.")
    expected_churners: float
    untreated: int | None = Field(
        default=None, description="Scored in the band, not treated, outcome known."
    )
    predicted_untreated: float | None = None
    realised: float | None = Field(default=None, description="Their realised churn.")
    realised_low: float | None = None
    realised_high: float | None = None


class ListOutcome(BaseModel):
    list_date: str
    model_version: str
    horizon_days: int
    ends: str = Field(description="list_date + horizon: when its outcomes are complete.")
    status: Literal["done", "pending"]
    pending_until: str | None
    picks: int = Field(description="Customers on the list (within capacity).")
    treated: int
    control: int
    not_logged: int = Field(description="Picks the team's log says nothing about.")
    expected_churners: float = Field(description="Sum of the picks' probabilities (estimate).")
    expected_precision_at_k: float | None = Field(
        description="Mean probability of the picks (estimate)."
    )
    realised: Realised | None = Field(description="Null while pending.")
    bands: list[BandOutcome]
    verdict: str


class Report(BaseModel):
    as_of: str
    interval_method: str
    precision_definition: str
    min_controls: int
    lists: list[ListOutcome] = Field(description="Newest first.")
