"""The settings of the feature builders, logged with every model.

``FeatureSettings`` is frozen and round-trips through a plain JSON-friendly dict
(``to_dict`` / ``from_dict``), so that training logs exactly what it used and
serving rebuilds the same features, including the category lists of the
categorical columns (see ``FeatureSettings.freeze``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import pandas as pd

from churnml.contract import CHANNELS, STATUSES
from churnml.errors import ConfigError

# How long a customer waits before it counts as a long wait, per channel, in seconds.
# Pegasystems (2019): long waits are the first frustration of consumers (82%).
# Live channels (phone, store) are felt in minutes, written ones in hours:
# - phone 10 min: the customer is stuck on hold and can do nothing else;
# - chat 5 min: a live channel whose users expect an answer within minutes;
# - store 15 min: a queue in person, where some wait is expected;
# - email and social 24 h: the customer expects a reply the same or the next day;
# - other 1 h: unknown channels, between the live and the written ones.
DEFAULT_LONG_WAIT_SECONDS: tuple[tuple[str, float], ...] = (
    ("phone", 600.0),
    ("chat", 300.0),
    ("email", 86_400.0),
    ("social", 86_400.0),
    ("store", 900.0),
    ("other", 3_600.0),
)


@dataclass(frozen=True)
class FeatureSettings:
    """What the feature builders count and how.

    windows: the look-back windows in days; a window of w days as of D covers the
        contacts started in the w calendar days ending with D (D included).
    long_wait_seconds: (channel, seconds) for every channel of the contract; a wait
        strictly longer than the channel's threshold is a long wait.
    repeat_window_days: a contact without case_id repeats an earlier contact of the
        same customer on the same topic started at most this many days before it.
    bad_csat_max: a csat answer at or below it is a bad experience.
    bad_transfers_min: a contact passed on at least this many times is a bad experience.
    bad_statuses: contact statuses that make the contact a bad experience.
    trend_recent_days, trend_prior_days: the trend compares the last
        ``trend_recent_days`` with the ``trend_prior_days`` before them.
    exclude_profile_columns: extra customer columns never used as features.
    profile_columns: the extra customer columns to use, in order; ``None`` uses every
        extra column of the customers table. ``freeze`` pins them.
    categories: (column, categories) for categorical feature columns; a column not
        listed takes the sorted values seen in the customers table. ``freeze`` pins
        them so that serving encodes categories exactly as training did.
    """

    windows: tuple[int, ...] = (7, 30, 90)
    long_wait_seconds: tuple[tuple[str, float], ...] = DEFAULT_LONG_WAIT_SECONDS
    repeat_window_days: int = 7
    bad_csat_max: float = 2.0
    bad_transfers_min: float = 2.0
    bad_statuses: tuple[str, ...] = ("escalated", "unresolved")
    trend_recent_days: int = 30
    trend_prior_days: int = 60
    exclude_profile_columns: tuple[str, ...] = ()
    profile_columns: tuple[str, ...] | None = None
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        windows = tuple(int(w) for w in self.windows)
        if not windows or any(w <= 0 for w in windows) or len(set(windows)) != len(windows):
            raise ConfigError(
                f"feature windows {self.windows!r}: expected distinct positive day counts"
            )
        object.__setattr__(self, "windows", tuple(sorted(windows)))
        thresholds = {str(k): float(v) for k, v in self.long_wait_seconds}
        missing = [c for c in CHANNELS if c not in thresholds]
        unknown = [c for c in thresholds if c not in CHANNELS]
        if missing or unknown or any(v < 0 for v in thresholds.values()):
            raise ConfigError(
                f"long_wait_seconds {thresholds!r}: expected one threshold >= 0 for each "
                f"channel of {CHANNELS} (missing {missing}, unknown {unknown})"
            )
        object.__setattr__(self, "long_wait_seconds", tuple((c, thresholds[c]) for c in CHANNELS))
        bad = [s for s in self.bad_statuses if s not in STATUSES]
        if bad:
            raise ConfigError(f"bad_statuses {bad!r}: expected statuses of {STATUSES}")
        object.__setattr__(self, "bad_statuses", tuple(self.bad_statuses))
        for name in ("repeat_window_days", "trend_recent_days", "trend_prior_days"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)!r}: expected a positive integer")
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "exclude_profile_columns", tuple(self.exclude_profile_columns))
        if self.profile_columns is not None:
            object.__setattr__(self, "profile_columns", tuple(self.profile_columns))
        object.__setattr__(
            self,
            "categories",
            tuple((str(col), tuple(str(v) for v in cats)) for col, cats in self.categories),
        )

    def long_wait_threshold(self, channel: str) -> float:
        return dict(self.long_wait_seconds)[channel]

    def categories_of(self, column: str) -> tuple[str, ...] | None:
        """The pinned categories of a categorical feature column, or None."""
        return dict(self.categories).get(column)

    def freeze(self, features: pd.DataFrame) -> FeatureSettings:
        """These settings with the profile columns and categories of ``features`` pinned.

        Call it on the training feature frame and log ``to_dict()`` of the result with
        the model; serving then builds features with the same columns and category codes,
        whatever the customers it sees.
        """
        from features.columns import PROFILE_PREFIX

        categories = tuple(
            (column, tuple(str(v) for v in features[column].cat.categories))
            for column in features.columns
            if isinstance(features[column].dtype, pd.CategoricalDtype)
        )
        profile = tuple(
            c[len(PROFILE_PREFIX) :] for c in features.columns if c.startswith(PROFILE_PREFIX)
        )
        return replace(self, categories=categories, profile_columns=profile)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of lists, numbers and strings (JSON-friendly)."""
        raw = asdict(self)
        raw["windows"] = list(self.windows)
        raw["long_wait_seconds"] = dict(self.long_wait_seconds)
        raw["bad_statuses"] = list(self.bad_statuses)
        raw["exclude_profile_columns"] = list(self.exclude_profile_columns)
        raw["profile_columns"] = (
            None if self.profile_columns is None else list(self.profile_columns)
        )
        raw["categories"] = {col: list(cats) for col, cats in self.categories}
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSettings:
        """The settings ``to_dict`` wrote; keys left out take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"feature settings: unknown keys {unknown}; expected some of {sorted(known)}"
            )
        values = dict(raw)
        if "long_wait_seconds" in values and isinstance(values["long_wait_seconds"], Mapping):
            values["long_wait_seconds"] = tuple(values["long_wait_seconds"].items())
        if "categories" in values and isinstance(values["categories"], Mapping):
            values["categories"] = tuple(values["categories"].items())
        for name in ("windows", "bad_statuses", "exclude_profile_columns"):
            if name in values:
                values[name] = tuple(values[name])
        if values.get("profile_columns") is not None:
            values["profile_columns"] = tuple(values["profile_columns"])
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"feature settings: {error}") from None
