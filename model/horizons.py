"""The time-to-churn model as files: what ``training.horizons.fit_horizon_model`` makes and
a scorer loads.

A discrete-time hazard model. The sorted horizons H1 < H2 < ... cut the time after a day D
into periods (0, H1], (H1, H2], ...; one LightGBM booster gives the hazard of period k,
``P(churn in period k | active at its start)``, from the customer's features on D and the
period (``PERIOD_FEATURE``: the period's last day). The survival to Hk is the product of
``1 - hazard`` over the periods up to k, and ``P(churn within Hk) = 1 - S(Hk)``: it never
decreases with the horizon, for every customer, by construction.

Each horizon has a calibrator fitted on validation rows (``model.artifact.Calibrator``).
Calibrating horizons one by one could break the order (two isotonic maps of two curves),
so the calibrated probabilities are made monotone again with a cumulative maximum over
the horizons: a customer's calibrated ``p_Hk`` is ``max(cal_1(p_H1), ..., cal_k(p_Hk))``.

On disk it is text only, like ``model.call_effect.CallEffectModel``: ``horizons.txt``
(the booster) and ``horizons.json`` (the horizons, features, categories, calibrators and
the booster's sha256, checked before LightGBM parses the file). No pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.errors import DataError, ModelError
from model.artifact import Calibrator, sha256_of
from model.call_effect import feature_matrix

SPEC_FILE = "horizons.json"
BOOSTER_FILE = "horizons.txt"
FORMAT_VERSION = 1
PERIOD_FEATURE = "horizon__period_end_days"
SINGLE_THREAD_PAIRS = 20_000  # (row, period) pairs up to which the booster runs on one thread


def periods(horizons: Sequence[int]) -> list[tuple[int, int]]:
    """The periods ``(start, end]`` in days that sorted ``horizons`` cut time into."""
    ends = sorted(int(h) for h in horizons)
    return list(zip([0, *ends[:-1]], ends, strict=True))


def period_matrix(matrix: np.ndarray, period_end: int) -> np.ndarray:
    """``matrix`` with the period's column appended (the booster's input for one period)."""
    return np.column_stack([matrix, np.full(len(matrix), float(period_end))])


@dataclass
class HorizonModel:
    """A fitted time-to-churn model; see the module."""

    booster: lgb.Booster
    horizons: tuple[int, ...]
    feature_names: list[str]
    # {categorical column: its categories in training}; a value outside them is missing.
    categories: dict[str, list[str]] = field(default_factory=dict)
    # {horizon: calibrator}; a horizon without one is served uncalibrated.
    calibrators: dict[int, Calibrator] = field(default_factory=dict)
    training_horizon: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.horizons = tuple(sorted(int(h) for h in self.horizons))
        if (
            not self.horizons
            or self.horizons[0] < 1
            or len(set(self.horizons)) != len(self.horizons)
        ):
            raise ModelError(
                f"horizons {list(self.horizons)}: expected distinct whole days >= 1; retrain"
            )
        self.calibrators = {int(h): c for h, c in self.calibrators.items()}

    # -- predictions -------------------------------------------------------------------
    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The booster's input of ``features`` without the period column."""
        try:
            return feature_matrix(features, self.feature_names, self.categories)
        except DataError as error:  # the shared builder names the call-effect model
            raise DataError(
                str(error).replace("call-effect features", "horizon model features")
            ) from None

    def hazards(self, matrix: np.ndarray) -> np.ndarray:
        """The hazard of each period for each row, shape (rows, periods): one booster call
        over every (row, period) pair (one call per period would pay LightGBM's per-call
        cost once per horizon, which dominates for one customer)."""
        rows, count = len(matrix), len(self.horizons)
        if rows == 0:
            return np.empty((0, count))
        ends = np.asarray([end for _, end in periods(self.horizons)], dtype=np.float64)
        pairs = np.empty((rows * count, matrix.shape[1] + 1), dtype=np.float64)
        pairs[:, :-1] = np.repeat(matrix, count, axis=0)  # row-major: row i's periods together
        pairs[:, -1] = np.tile(ends, rows)
        # One thread for small inputs (the service's one customer): OpenMP's threads on a
        # busy machine made the 99th percentile of one row 15 ms instead of 0.2 ms.
        threads = {"num_threads": 1} if len(pairs) <= SINGLE_THREAD_PAIRS else {}
        hazard = self.booster.predict(pairs, **threads).reshape(rows, count)
        return np.clip(hazard.astype("float64"), 0.0, 1.0)

    def raw_curve(self, matrix: np.ndarray) -> np.ndarray:
        """``P(churn within H)`` for every trained H, before calibration: 1 - the product
        of ``1 - hazard`` up to H. Shape (rows, horizons); non-decreasing along a row."""
        return 1.0 - np.cumprod(1.0 - self.hazards(matrix), axis=1)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` (from ``raw_curve``) through each horizon's calibrator, then the
        cumulative maximum over the horizons, so that the order holds again."""
        out = np.array(raw, dtype="float64", copy=True)
        for k, horizon in enumerate(self.horizons):
            calibrator = self.calibrators.get(horizon)
            if calibrator is not None:
                out[:, k] = calibrator.predict(raw[:, k])
        return np.maximum.accumulate(out, axis=1)

    def curve(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated ``P(churn within H)`` for every trained H, shape (rows, horizons)."""
        return self.curve_of_matrix(self.matrix(features))

    def curve_of_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """``curve`` of the booster's input without the period column (``matrix``)."""
        return self.calibrated(self.raw_curve(matrix))

    def anchored(self, curve: np.ndarray, churn_probability: np.ndarray) -> np.ndarray:
        """``curve`` with the training horizon's column set to the churn model's own
        probability (the contract: ``churn_probability_<H>d`` of the model's horizon equals
        ``churn_probability``), the curve's shape kept: each row's cumulative hazard
        ``-log(1 - p)`` is scaled by one factor so that it passes through the anchor. A
        positive factor keeps the order, so the curve still never decreases, and the
        shorter and longer horizons move with the anchor instead of being cut flat at it
        (what capping them would do when the two models disagree). A row whose curve is 0
        at the training horizon (nothing to scale) is capped and raised to the anchor."""
        if self.training_horizon not in self.horizons:
            return curve
        k = self.horizons.index(self.training_horizon)
        anchor = np.clip(np.asarray(churn_probability, dtype="float64"), 0.0, 1.0)
        curve = np.clip(np.asarray(curve, dtype="float64"), 0.0, 1.0 - 1e-12)
        hazard = -np.log1p(-curve)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = -np.log1p(-np.minimum(anchor, 1.0 - 1e-12)) / hazard[:, k]
        scalable = np.isfinite(factor) & (hazard[:, k] > 0)
        out = np.array(curve, copy=True)
        out[scalable] = -np.expm1(-hazard[scalable] * factor[scalable, None])
        out[:, k] = anchor
        # Rounding (and the rows left unscaled) must not break the order around the anchor.
        out[:, :k] = np.minimum(out[:, :k], anchor[:, None])
        out[:, k + 1 :] = np.maximum(out[:, k + 1 :], anchor[:, None])
        return np.maximum.accumulate(out, axis=1)

    def predict(
        self, features: pd.DataFrame, horizons: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """The calibrated curve at ``horizons`` (default: every trained one), one column
        ``churn_probability_<H>d`` per horizon, indexed like ``features``."""
        chosen = self.horizons if horizons is None else self.check_horizons(horizons)
        curve = self.curve(features)
        positions = [self.horizons.index(h) for h in chosen]
        return pd.DataFrame(
            curve[:, positions],
            index=features.index,
            columns=[column_name(h) for h in chosen],
        )

    def check_horizons(self, horizons: Sequence[int]) -> tuple[int, ...]:
        """``horizons`` when the model was trained on each of them, else a one-line error."""
        wanted = tuple(int(h) for h in horizons)
        unknown = [h for h in wanted if h not in self.horizons]
        if unknown or not wanted:
            raise DataError(
                f"--horizons {','.join(map(str, horizons)) or '(empty)'}: the model was "
                f"trained on the horizons {','.join(map(str, self.horizons))}; pick among "
                "them or retrain with --horizons"
            )
        return wanted

    # -- files -------------------------------------------------------------------------
    def save(self, folder: Path | str) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / BOOSTER_FILE
        self.booster.save_model(str(path))
        spec = {
            "format_version": FORMAT_VERSION,
            "horizons": list(self.horizons),
            "training_horizon": self.training_horizon,
            "checksums": {BOOSTER_FILE: sha256_of(path.read_bytes())},
            "feature_names": self.feature_names,
            "categories": self.categories,
            "calibrators": {str(h): c.to_dict() for h, c in self.calibrators.items()},
            "metadata": self.metadata,
        }
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path | str, *, source: str | None = None) -> HorizonModel:
        """The model saved in ``folder``; ``source`` names it in errors (default: the folder).
        The booster file is parsed only once its sha256 matches ``horizons.json``."""
        folder = Path(folder)
        where = source or str(folder)
        try:
            spec = json.loads((folder / SPEC_FILE).read_text())
            if spec.get("format_version") != FORMAT_VERSION:
                raise ModelError(
                    f"{where}: horizon model format {spec.get('format_version')!r}, this "
                    f"churnml reads {FORMAT_VERSION}; retrain it"
                )
            data = (folder / BOOSTER_FILE).read_bytes()
            if sha256_of(data) != spec["checksums"].get(BOOSTER_FILE):
                raise ModelError(
                    f"{where}: {BOOSTER_FILE} does not match the sha256 saved in {SPEC_FILE} "
                    "(the file is truncated or damaged); restore the model's files or retrain it"
                )
            booster = lgb.Booster(model_str=data.decode("utf-8"))
            return cls(
                booster=booster,
                horizons=tuple(int(h) for h in spec["horizons"]),
                feature_names=list(spec["feature_names"]),
                categories={k: list(v) for k, v in spec["categories"].items()},
                calibrators={
                    int(h): Calibrator.from_dict(c) for h, c in spec["calibrators"].items()
                },
                training_horizon=spec.get("training_horizon"),
                metadata=dict(spec.get("metadata") or {}),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise ModelError(f"{where}: not a churnml horizon model ({error})") from None
        except lgb.basic.LightGBMError as error:
            raise ModelError(f"{where}: not a churnml horizon model ({error})") from None


def column_name(horizon: int) -> str:
    """The score column of one horizon (shared/contract.md v1.1)."""
    return f"churn_probability_{int(horizon)}d"


def likely_within(curve: np.ndarray, horizons: Sequence[int]) -> np.ndarray:
    """Per row of ``curve`` (``P(churn within H)`` over the sorted ``horizons``, never
    decreasing), the earliest horizon by which the probability reaches half of the longest
    horizon's: "if they leave within the longest horizon, it is at least as likely as not
    within this many days" (the median time to churn among the ways the customer leaves
    within the longest horizon, in the horizons' steps). NaN where the longest horizon's
    probability is 0 (no churn to place in time)."""
    curve = np.asarray(curve, dtype="float64")
    days = np.asarray(sorted(int(h) for h in horizons), dtype="float64")
    if curve.size == 0:
        return np.empty(len(curve))
    longest = curve[:, -1]
    reached = curve >= 0.5 * longest[:, None]
    first = np.argmax(reached, axis=1)  # the last column always reaches it
    return np.where(longest > 0, days[first], np.nan)
