"""The model's input schema: the profile fields it was trained on, as a caller sends them.

A profile field is a customer column the model reads beyond the contract's required ones
(``customer_id``, ``signup_date``): the contract's optional ``segment``, ``plan`` and
``monthly_revenue``, and every extra column of the customers table (the sample world's
``contract_type``, ``region``, ``payment_method``, features ``profile_<name>``). A model
trained on a customer table reads every column of it as such a field.

Each field has its type ("number" or "category"), the categories the model knows and the
share of training rows that lacked it, recorded at training from the drift distribution
of the training rows (``features.drift.distribution``: its "missing" bin). A field missing
in under ``RARELY_MISSING_SHARE`` of the training rows is one the model leans on as if it
were always there: a caller who leaves it out gets a warning naming it (``warnings``).
Missing values are scored as training scored them (LightGBM's missing branch); the
warning only says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from features.columns import CATEGORICAL_FEATURES, PROFILE_PREFIX

# A field missing in fewer training rows than this share is warned about when it is missing.
RARELY_MISSING_SHARE = 0.05
NUMBER = "number"
CATEGORY = "category"
# The contract's optional customer columns the interaction-log features read as they are.
_CONTRACT_PROFILE = (*CATEGORICAL_FEATURES, "monthly_revenue")


@dataclass(frozen=True)
class SchemaField:
    """One profile field of the model's input; see the module."""

    name: str  # the customers column / request field
    feature: str  # the feature column it becomes
    type: str  # NUMBER or CATEGORY
    categories: tuple[str, ...] = ()
    missing_share: float | None = None  # None: not recorded (a model saved before drift bins)

    @property
    def rarely_missing(self) -> bool:
        """Whether training rows almost always had it (missing in < RARELY_MISSING_SHARE)."""
        return self.missing_share is not None and self.missing_share < RARELY_MISSING_SHARE

    def warning(self) -> dict[str, str]:
        """The warning of a customer that lacks this field: ``{"field", "text"}``."""
        share = self.missing_share or 0.0
        return {
            "field": self.name,
            "text": (
                f"{self.name} is missing, but the model was trained on customers who almost "
                f"always had it (missing in {share:.1%} of training rows); the score treats "
                f"it as unknown, which can move it a lot: send {self.name} for a reliable score"
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature": self.feature,
            "type": self.type,
            "categories": list(self.categories),
            "missing_share": self.missing_share,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SchemaField:
        share = values.get("missing_share")
        return cls(
            name=str(values["name"]),
            feature=str(values["feature"]),
            type=str(values["type"]),
            categories=tuple(str(c) for c in values.get("categories") or ()),
            missing_share=None if share is None else float(share),
        )


def profile_features(feature_names: Iterable[str], *, table: bool) -> list[tuple[str, str]]:
    """(field, feature column) of every profile field among a model's features (``table``:
    a model trained on a customer table, whose every feature is a column of it)."""
    if table:
        return [(name, name) for name in feature_names]
    pairs = []
    for column in feature_names:
        if column in _CONTRACT_PROFILE:
            pairs.append((column, column))
        elif column.startswith(PROFILE_PREFIX):
            pairs.append((column[len(PROFILE_PREFIX) :], column))
    return pairs


def profile_schema(
    feature_names: Iterable[str],
    categories: Mapping[str, list[str]],
    distribution: Mapping[str, Mapping[str, Any]],
    *,
    table: bool = False,
) -> list[SchemaField]:
    """The profile fields of a model from what it stores: its features, their categories
    and the training rows' drift distribution (missing shares; None where it has none)."""
    fields = []
    for name, feature in profile_features(feature_names, table=table):
        known = categories.get(feature)
        fields.append(
            SchemaField(
                name=name,
                feature=feature,
                type=NUMBER if known is None else CATEGORY,
                categories=tuple(known or ()),
                missing_share=_missing_share(distribution.get(feature)),
            )
        )
    return fields


def _missing_share(bins: Mapping[str, Any] | None) -> float | None:
    """The "missing" bin of a feature's drift distribution (a number's last share)."""
    if not bins:
        return None
    if bins.get("kind") == "category":
        return float(bins.get("missing", 0.0))
    shares = bins.get("shares") or []
    return float(shares[-1]) if shares else None


def warned_fields(schema: Iterable[SchemaField]) -> list[SchemaField]:
    """The fields a caller is warned about when they are missing (``rarely_missing``)."""
    return [field for field in schema if field.rarely_missing]


def rows_lacking(schema: Iterable[SchemaField], customers: Any) -> dict[str, int]:
    """How many rows of a customers frame lack (do not have, or hold null in) each warned
    field, for the fields some row lacks."""
    counts: dict[str, int] = {}
    for field in warned_fields(schema):
        if field.name in customers.columns:
            count = int(customers[field.name].isna().sum())
        else:
            count = len(customers)
        if count:
            counts[field.name] = count
    return counts


def lacking_line(counts: Mapping[str, int], total: int) -> str | None:
    """The batch commands' one terminal line of how many of ``total`` rows lacked each field
    of ``counts`` (``rows_lacking``); None when no row lacked any."""
    if not counts:
        return None
    rows = "row" if total == 1 else "rows"
    each = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    return (
        f"warning: of {total:,} {rows} scored, lacking a field the model was trained on "
        f"almost always having (scored as unknown): {each}; send these fields for "
        "reliable scores"
    )
