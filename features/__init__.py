"""Point-in-time features per customer from the contract's tables.

``build_features(customers, interactions, as_of, settings)`` is the one entry point
for training, batch scoring and the online endpoint; ``feature_columns`` lists its
columns and ``feature_family`` / ``FEATURE_FAMILIES`` group them into the families
the reasons speak of; ``visible_end(D)`` is the one point-in-time cut (what day D
sees started before it). See ``docs/features.md``.
"""

from features.build import (
    ContactHistory,
    build_feature_snapshots,
    build_features,
    parse_as_of,
    thin_history,
    visible_end,
)
from features.columns import (
    FAMILY_DESCRIPTIONS,
    FEATURE_FAMILIES,
    feature_columns,
    feature_families,
    feature_family,
)
from features.settings import FeatureSettings

__all__ = [
    "FAMILY_DESCRIPTIONS",
    "FEATURE_FAMILIES",
    "ContactHistory",
    "FeatureSettings",
    "build_feature_snapshots",
    "build_features",
    "feature_columns",
    "feature_families",
    "feature_family",
    "parse_as_of",
    "thin_history",
    "visible_end",
]
