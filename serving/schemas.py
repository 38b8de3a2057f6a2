"""What callers send and get back: the HTTP shapes of ``shared/contract.md`` as pydantic models.

Per-value rules (types, required fields, ``>= 0``, known channels and statuses, csat 1-5)
come from ``churnml.contract``, the same declaration ``churnml.validation`` checks files
against; pydantic rejects a breach with a 400 naming the field path. Rules across rows
(unique ids, contacts between signup and churn, nothing after as_of) are checked in
``serving.scoring`` and answered 422, also naming the field path.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails
from typing_extensions import TypedDict

from churnml.contract import CHANNELS, CSAT_RANGE, STATUSES
from model.schema import RARELY_MISSING_SHARE as RARELY

MAX_CUSTOMERS = 1000
MAX_INTERACTIONS_PER_CUSTOMER = 10_000
MAX_TEXT = 200
MAX_COUNT = 1_000_000
MAX_SECONDS = 10 * 365 * 86_400  # ten years: beyond it a wait is a data error, not a wait
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2200, 12, 31)


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid UTF-8 (no lone surrogates)") from None
    return value


def _in_range_date(value: dt.date) -> dt.date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"date {value.isoformat()} outside {EARLIEST} .. {LATEST}")
    return value


def as_utc(value: dt.datetime) -> dt.datetime:
    """A moment as a UTC-naive datetime (a moment without a zone is UTC already)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _in_range_moment(value: dt.datetime) -> dt.datetime:
    """Refuse a moment whose UTC date is outside EARLIEST .. LATEST; keep its zone.

    A zone's offset is under a day, so a year strictly between the bounds' years is in
    range whatever the zone; only the others are converted to check them.
    """
    if not EARLIEST.year < value.year < LATEST.year:
        _in_range_date(as_utc(value).date())
    return value


# Text must be valid UTF-8 (no lone surrogates). Over HTTP the JSON parser (pydantic's jiter)
# already refuses a lone surrogate, so the check runs once per customer, and only when
# the model is built from Python objects (``Customer._checks``): a validator per string
# cost ~3.5 ms per 100 customers with 2,000 contacts.
# A contact's started_at keeps the zone it was sent with (``as_utc`` converts one);
# ``serving.scoring`` converts the whole column to UTC at once: converting each contact's
# time here cost ~2.8 us a contact, ~5.5 ms per 100 customers with 2,000 contacts.
Id = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Day = Annotated[dt.date, AfterValidator(_in_range_date)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
ProfileValue = str | float | bool | None


class Interaction(TypedDict):
    """One service contact of the customer (the contract's interactions columns)."""

    # A dict, not a model: building 2,000 model objects cost ~2.5 ms per 100 customers.
    # Every rule but the date range of started_at runs in pydantic-core; that one is
    # checked once per customer (``Customer._checks``).
    __pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[misc]

    interaction_id: Annotated[
        Id, Field(description="Unique key of the contact, unique within the request.")
    ]
    started_at: Annotated[
        dt.datetime,
        Field(
            description="When the contact started, ISO 8601; without a zone it is UTC. "
            "Must be on or after the customer's signup_date and no later than the as_of day."
        ),
    ]
    channel: Annotated[Channel, Field(description="Contact channel: " + ", ".join(CHANNELS) + ".")]
    case_id: Annotated[
        Text | None,
        Field(None, description="Contacts about the same problem share it; empty when unknown."),
    ]
    topic: Annotated[
        Text | None, Field(None, description="Topic of the contact, e.g. billing, technical.")
    ]
    wait_seconds: Annotated[
        Seconds | None,
        Field(
            None,
            description="Seconds before an agent answered (email, social: until the first reply).",
        ),
    ]
    handle_seconds: Annotated[
        Seconds | None, Field(None, description="Seconds an agent spent on it.")
    ]
    agent_id: Annotated[
        Text | None, Field(None, description="Who handled it; empty when nobody did.")
    ]
    transfers: Annotated[
        int | None,
        Field(
            None,
            ge=0,
            le=MAX_COUNT,
            description="Times the contact was passed to another agent or team.",
        ),
    ]
    abandoned: Annotated[
        bool | None,
        Field(None, description="True when the customer gave up before being served."),
    ]
    status: Annotated[
        Status | None,
        Field(
            None,
            description="Status of the case when this contact ended: " + ", ".join(STATUSES) + ".",
        ),
    ]
    csat: Annotated[
        int | None,
        Field(
            None,
            ge=CSAT_RANGE[0],
            le=CSAT_RANGE[1],
            description=f"Satisfaction answer about this contact, {CSAT_RANGE[0]}-{CSAT_RANGE[1]}.",
        ),
    ]


class Customer(BaseModel):
    """A customer with profile fields and recent service contacts.

    Fields beyond the declared ones are profile attributes (text, number or boolean),
    as in the customers table; the model uses those it was trained with.
    """

    model_config = ConfigDict(extra="allow")

    customer_id: Id = Field(description="Unique key of the customer, unique within the request.")
    signup_date: Day = Field(description="Customer since (YYYY-MM-DD), on or before as_of.")
    churned_at: Day | None = Field(
        None,
        description="The day the customer left; empty while still a customer. A customer "
        "who left on or before as_of cannot be scored.",
    )
    segment: Text | None = Field(None, description="Customer segment, e.g. consumer, business.")
    plan: Text | None = Field(None, description="Product or tariff.")
    monthly_revenue: float | None = Field(
        None,
        ge=0,
        le=1e12,
        allow_inf_nan=False,
        description="Revenue per month, in the account's currency.",
    )
    interactions: list[Interaction] = Field(
        default_factory=list,
        max_length=MAX_INTERACTIONS_PER_CUSTOMER,
        description="The customer's service contacts up to as_of (at least the last 90 days "
        "for full features); without customer_id, which is this customer's.",
    )

    @model_validator(mode="after")
    def _checks(self, info: ValidationInfo) -> Customer:
        if info.mode != "json":
            _text_is_utf8(self)
        _moments_in_range(self.interactions)
        return self._profile_values_are_scalars()

    def _profile_values_are_scalars(self) -> Customer:
        for name, value in (self.model_extra or {}).items():
            _utf8(name)
            if value is None or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                if not math.isfinite(value) or abs(value) > 1e300:
                    raise ValueError(f"profile field {name!r}: expected a finite number")
                continue
            if isinstance(value, str):
                if len(value) > MAX_TEXT:
                    raise ValueError(f"profile field {name!r}: at most {MAX_TEXT} characters")
                _utf8(value)
                continue
            raise ValueError(
                f"profile field {name!r}: expected text, a number, a boolean or null, "
                f"got {type(value).__name__}"
            )
        return self

    def profile(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _text_is_utf8(customer: Customer) -> None:
    """The UTF-8 check of every text field, for customers built from Python objects."""
    for name in ("customer_id", "segment", "plan"):
        value = getattr(customer, name)
        if value is not None:
            _utf8_at(value, name)
    for j, contact in enumerate(customer.interactions):
        for name in ("interaction_id", "case_id", "topic", "agent_id"):
            value = contact[name]
            if value is not None:
                _utf8_at(value, f"interactions.{j}.{name}")


def _moments_in_range(contacts: list[Interaction]) -> None:
    """``_in_range_moment`` for each contact's started_at, answered as pydantic answers a
    field's own validator (type value_error, the contact's field path): one call per
    customer instead of one per contact (~1 ms per 100 customers with 2,000 contacts)."""
    errors = []
    for j, contact in enumerate(contacts):
        moment = contact["started_at"]
        try:
            _in_range_moment(moment)
        except ValueError as error:
            errors.append(
                InitErrorDetails(
                    type="value_error",
                    loc=("interactions", j, "started_at"),
                    input=moment,
                    ctx={"error": error},
                )
            )
    if errors:
        raise ValidationError.from_exception_data("Customer", errors)


def _utf8_at(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: text must be valid UTF-8 (no lone surrogates)") from None


class Reason(BaseModel):
    """One reason for the risk: a family of features, in plain words."""

    code: str = Field(
        description="Stable code of the reason's family, e.g. waiting, repeating_yourself, "
        "unresolved_case, transfers, satisfaction, profile; thin_history for the context "
        "line of a customer with little history."
    )
    family: str = Field(description="The family in words, e.g. 'repeating yourself'.")
    kind: Literal["action", "context"] = Field(
        description="action: something the team can act on (waits, repeats, open cases, "
        "transfers, ...), the action follows from these; context: a fact of the account "
        "(tenure, plan, segment, other profile fields), shown after the actions."
    )
    feature: str = Field(
        description="The feature that drives the reason most, e.g. wait_mean_seconds_30d."
    )
    text: str = Field(
        description="The reason in plain words with the customer's own numbers, e.g. 'waited "
        "14 minutes on average in the last 30 days, 3 times the usual'."
    )
    value: float | str | None = Field(description="The customer's value of that feature.")
    usual: float | None = Field(
        description="The usual value: the median over the customers the model was trained on."
    )
    contribution: float = Field(
        description="How much the family raises the risk, in log-odds (higher: stronger)."
    )


class FieldWarning(BaseModel):
    """A profile field the model needs that the customer lacks."""

    field: str = Field(
        description="The missing field, e.g. contract_type: one of the model's input_schema "
        f"(GET /model) that was missing in under {RARELY:.0%} of the training rows."
    )
    text: str = Field(
        description="What it means, in words: the score treats the value as unknown, as "
        "training did, and can move a lot once the field is sent."
    )


class CustomerScore(BaseModel):
    """The churn risk of one customer."""

    customer_id: str = Field(description="The customer's key, as sent.")
    churn_probability: float = Field(
        ge=0,
        le=1,
        description="Calibrated probability that the customer leaves within the "
        "model's horizon (30 days by default) after as_of.",
    )
    risk_band: Literal["low", "medium", "high"] = Field(
        description="high: at least twice the training churn rate; medium: above it; low: the rest."
    )
    thin_history: bool = Field(
        description="True when the customer has less history than the feature windows "
        "(joined fewer days before as_of than the longest window, 90 by default): the score "
        "rests on little data, and a context reason (code thin_history) says so."
    )
    reasons: list[Reason] = Field(
        description="Up to 3 reasons: families that raise the risk and whose values are "
        "unusual in the risky direction (never a missing value); those the team can act on "
        "first (kind action), then context, strongest first within each; empty when none. "
        "With thin_history the context line 'joined N days ago: little history yet' "
        "(code thin_history) follows the actions."
    )
    action: str = Field(
        description="Suggested next step for the retention agent, from the first reason of "
        "kind action; never from context."
    )
    warnings: list[FieldWarning] = Field(
        default_factory=list,
        description="Fields the model was trained on almost always having (missing in under "
        f"{RARELY:.0%} of training rows) that this customer lacks (absent or null); empty "
        "when none.",
    )
    horizons: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = Field(
        default=None,
        description="For a model trained with --horizons: the probability that the customer "
        'leaves within each trained horizon, keyed by its days ({"7": p7, "30": p30, '
        '"90": p90}); never decreasing as the horizon grows, the model\'s own horizon equal '
        "to churn_probability. null for a model without horizons.",
        examples=[{"7": 0.04, "30": 0.12, "90": 0.27}],
    )
    model_name: str = Field(description="Registered model name in MLflow.")
    model_version: str = Field(description="Registered model version that produced the score.")
    as_of: dt.date = Field(description="The day the score is as of.")


class ScoreResponse(BaseModel):
    scores: list[CustomerScore] = Field(description="One score per customer, in request order.")


class SchemaField(BaseModel):
    """One profile field the model was trained on (``model.schema``)."""

    name: str = Field(description="The customer field, as sent in a request, e.g. contract_type.")
    feature: str = Field(description="The feature column it becomes, e.g. profile_contract_type.")
    type: Literal["number", "category"] = Field(description="number or category (text).")
    categories: list[str] = Field(
        description="The categories the model knows (a category field); any other value "
        "is scored as unknown. Empty for a number."
    )
    missing_share: float | None = Field(
        ge=0,
        le=1,
        description="Share of the training rows that lacked it; null when the model did not "
        f"record it. A field missing in under {RARELY:.0%} of them is warned about when "
        "missing (a warning in the customer's score).",
    )


class ModelInfo(BaseModel):
    """The model being served."""

    name: str = Field(description="Registered model name in MLflow.")
    version: str = Field(description="Registered model version.")
    alias: str | None = Field(description="The alias it was loaded by (e.g. champion), if any.")
    uri: str = Field(description="The model URI the service loads.")
    trained_at: str | None = Field(description="When the model was registered (UTC, ISO 8601).")
    data_as_of: str | None = Field(description="The as_of day of the training data.")
    horizon_days: int | None = Field(description="Churn horizon of the label, in days.")
    contract_version: str = Field(description="Data contract version the model reads.")
    test_metrics: dict[str, float] = Field(
        description="Metrics on the held-out test fold (roc_auc, pr_auc, brier, ece, ...)."
    )
    features: list[str] = Field(description="The model's feature columns, in order.")
    input_schema: list[SchemaField] = Field(
        description="The profile fields the model was trained on, beyond the contract's "
        "required customer fields: type, known categories, missing share in training."
    )
    loaded_at: str = Field(description="When this process loaded the model (UTC, ISO 8601).")


class ReloadResponse(BaseModel):
    reloaded: bool = Field(description="True when a new model now serves.")
    message: str = Field(description="What happened, in words; on failure, why.")
    model: ModelInfo = Field(description="The model serving after the call.")


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(
        description="Path of the field, e.g. ['customers', 0, 'interactions', 2, 'wait_seconds']."
    )
    msg: str = Field(description="What is wrong and what is expected.")
    type: str = Field(description="Kind of problem.")


class ErrorResponse(BaseModel):
    error: str = Field(description="One-line summary.")
    detail: list[ErrorDetail] = Field(default_factory=list, description="One entry per problem.")
