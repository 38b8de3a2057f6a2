"""The trained churn model as files: what training makes and every scorer loads.

``ChurnModel`` is plain data (no MLflow): the LightGBM booster, the calibrator, the
optional ``Blend`` with a logistic regression, the feature list and categories, the
frozen feature settings (or, for a model trained on a customer table, the table's
schema), the training base rate the risk bands stand on, and what reasons and drift
checks compare with. MLflow carries it as files (``booster.txt`` and ``spec.json``, which
holds the booster's sha256, see ``save``/``load``); ``model.loading`` finds and opens them;
``model.predictor.Predictor`` turns features into probabilities, bands and reasons with it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.contract import CONTRACT_VERSION
from churnml.errors import DataError, ModelError
from features.build import build_features
from features.reasons import reference_statistics
from features.settings import FeatureSettings
from model.linear import Blend
from model.schema import SchemaField, profile_schema

if TYPE_CHECKING:
    from model.call_effect import CallEffectModel
    from model.horizons import HorizonModel

EPS = 1e-6
BOOSTER_FILE = "booster.txt"
SPEC_FILE = "spec.json"
CHECKSUMS = "checksums"  # spec.json's {file name: sha256} of the files parsed natively
# The call-effect head's folder inside the model's (``model.call_effect``); its
# call_effect.json's sha256 is in spec.json's checksums, and that file holds the sha256 of
# each of its boosters: the whole head is checked before LightGBM parses any of it.
CALL_EFFECT_FOLDER = "call_effect"
# The time-to-churn model's folder (``model.horizons``), checked the same way: its
# horizons.json's sha256 is in spec.json's checksums, and it holds its booster's.
HORIZONS_FOLDER = "horizons"
RANK_BY_SAVED_REVENUE = "saved-revenue"
RANK_BY_RISK = "risk"
KIND_INTERACTIONS = "interactions"
KIND_TABLE = "table"
# A model trained on a customer table has no feature families: its columns' families are
# guessed from their names (first hint found), else "profile". Reason codes of table models
# ("volume" for number_customer_service_calls) come from here.
_TABLE_FAMILY_HINTS = (
    ("wait", "waiting"),
    ("repeat", "repeating"),
    ("unresolved", "unresolved"),
    ("escalat", "unresolved"),
    ("transfer", "transfers"),
    ("csat", "satisfaction"),
    ("satisf", "satisfaction"),
    ("abandon", "abandoned"),
    ("channel", "channel"),
    ("contact", "volume"),
    ("call", "volume"),
)


@dataclass
class ChurnModel:
    """Everything a scorer needs of a trained model; see the module."""

    kind: str
    booster: lgb.Booster
    calibrator: Calibrator
    feature_names: list[str]
    categories: dict[str, list[str]]
    base_rate: float
    feature_settings: dict[str, Any] | None = None
    table_schema: dict[str, Any] | None = None
    families: dict[str, str] = field(default_factory=dict)
    family_words: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # Usual values of the numeric features over the training rows ({column: {median, p90}}),
    # for reasons such as "3 times the usual"; see features.reasons.reference_statistics.
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    # The training rows' share in the bins of every feature, for drift checks (PSI) of the
    # daily lists; see features.drift. Empty for models trained before it existed.
    distribution: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A logistic regression stacked in log-odds: raw = (1 - w) * booster's raw score
    # + w * linear's (see Blend). None: the booster alone.
    blend: Blend | None = None
    # The profile fields the model was trained on: type, categories, missing share in
    # training (model.schema). Recorded at training; derived at load for older models.
    input_schema: list[SchemaField] = field(default_factory=list)
    # The call-effect head (``training.call_effect_fit``), None without one, and the gate's
    # record of it: {"rank_by": "saved-revenue" | "risk", "promoted": bool, "reason": text,
    # and the evaluation's numbers}. A head that did not pass is kept (scores carry its
    # call_effect), but the list must keep ranking by risk, for the reason recorded.
    call_effect: CallEffectModel | None = None
    call_effect_gate: dict[str, Any] | None = None
    # The time-to-churn model (``training.horizons``: churn within each of its horizons,
    # ``--horizons``), None without one, and the gate's record of it ({"passed": bool,
    # "reason": text}): the run's gate required it to pass.
    horizons: HorizonModel | None = None
    horizons_gate: dict[str, Any] | None = None

    # -- what the model was trained on -------------------------------------------------
    @cached_property
    def build_settings(self) -> FeatureSettings:
        """The feature settings frozen at training, to build this model's features with
        (the defaults for a model that carries none)."""
        return FeatureSettings.from_dict(self.feature_settings or {})

    def family_of(self, column: str) -> str:
        """The family a feature's reasons are grouped in (see ``_TABLE_FAMILY_HINTS``)."""
        if column in self.families:
            return self.families[column]
        lowered = column.lower()
        for hint, family in _TABLE_FAMILY_HINTS:
            if hint in lowered:
                return family
        return "profile"

    @staticmethod
    def reference_statistics(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
        """The usual feature values of training rows, for ``reference`` (median and p90)."""
        return reference_statistics(frame)

    def features_from_tables(
        self, customers: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp
    ) -> pd.DataFrame:
        """This model's features of the customers active on ``as_of``."""
        if self.kind != KIND_INTERACTIONS:
            raise ModelError(
                "this model was trained on a customer table; score it with --table, "
                "or pass a model trained on interaction logs"
            )
        return build_features(customers, interactions, as_of, self.build_settings)

    def features_from_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """This model's features of every row of a customer table."""
        if self.kind != KIND_TABLE or self.table_schema is None:
            raise ModelError(
                "this model was trained on interaction logs; score it with "
                "--customers/--interactions, or pass a model trained on a customer table"
            )
        return table_features(table, self.table_schema)

    # -- bands -------------------------------------------------------------------------
    @property
    def band_thresholds(self) -> dict[str, float]:
        """high: at least twice the training churn rate; medium: at least the rate."""
        return {"high": 2 * self.base_rate, "medium": self.base_rate}

    def risk_band(self, probability: np.ndarray) -> np.ndarray:
        """Each probability's band: "high", "medium" or "low" (``band_thresholds``)."""
        thresholds = self.band_thresholds
        return np.where(
            probability >= thresholds["high"],
            "high",
            np.where(probability >= thresholds["medium"], "medium", "low"),
        )

    # -- files -------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        # Checked by ``load`` before LightGBM parses the file (see ``_booster_text``).
        checksums = {BOOSTER_FILE: sha256_of((folder / BOOSTER_FILE).read_bytes())}
        if self.call_effect is not None:
            head = self.call_effect.save(folder / CALL_EFFECT_FOLDER)
            checksums[_call_effect_spec()] = sha256_of((head / _head_spec_name()).read_bytes())
        if self.horizons is not None:
            curve = self.horizons.save(folder / HORIZONS_FOLDER)
            checksums[_horizons_spec()] = sha256_of((curve / _horizons_spec_name()).read_bytes())
        spec = {
            CHECKSUMS: checksums,
            "kind": self.kind,
            "calibrator": self.calibrator.to_dict(),
            "feature_names": self.feature_names,
            "categories": self.categories,
            "base_rate": self.base_rate,
            "feature_settings": self.feature_settings,
            "table_schema": self.table_schema,
            "families": self.families,
            "family_words": self.family_words,
            "metadata": {"contract_version": CONTRACT_VERSION, **self.metadata},
            "reference": self.reference,
            "distribution": self.distribution,
            "blend": None if self.blend is None else self.blend.to_dict(),
            "input_schema": [f.to_dict() for f in self.input_schema],
            "call_effect": None
            if self.call_effect is None and self.call_effect_gate is None
            else {
                "folder": None if self.call_effect is None else CALL_EFFECT_FOLDER,
                "gate": self.call_effect_gate or {},
            },
            "horizons": None
            if self.horizons is None
            else {"folder": HORIZONS_FOLDER, "gate": self.horizons_gate or {}},
        }
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path | str, *, source: str | None = None) -> ChurnModel:
        """The model saved in ``folder``; ``source`` names it in errors (default: the folder).

        ``booster.txt`` is parsed only once its sha256 matches the one ``save`` wrote in
        ``spec.json``: LightGBM aborts the whole process on a truncated file instead of
        raising. A model saved before checksums is parsed in a child process first."""
        folder = Path(folder)
        where = source or str(folder)
        try:
            spec = json.loads((folder / SPEC_FILE).read_text())
            text = _booster_text(folder / BOOSTER_FILE, spec, where)
            booster = lgb.Booster(model_str=text)
        except (OSError, ValueError, TypeError, AttributeError, lgb.basic.LightGBMError) as error:
            raise ModelError(f"{where}: not a churnml model ({error})") from None
        contract = spec.get("metadata", {}).get("contract_version")
        if contract != CONTRACT_VERSION:
            raise ModelError(
                f"{folder}: the model was trained for data contract v{contract}, this churnml "
                f"reads v{CONTRACT_VERSION}; retrain it with `churnml train`"
            )
        model = cls(
            kind=spec["kind"],
            booster=booster,
            calibrator=Calibrator.from_dict(spec["calibrator"]),
            feature_names=list(spec["feature_names"]),
            categories={k: list(v) for k, v in spec["categories"].items()},
            base_rate=float(spec["base_rate"]),
            feature_settings=spec.get("feature_settings"),
            table_schema=spec.get("table_schema"),
            families=dict(spec.get("families") or {}),
            family_words=dict(spec.get("family_words") or {}),
            metadata=dict(spec.get("metadata") or {}),
            reference={k: dict(v) for k, v in (spec.get("reference") or {}).items()},
            distribution=dict(spec.get("distribution") or {}),
            blend=Blend.from_dict(spec["blend"]) if spec.get("blend") else None,
        )
        if spec.get("call_effect"):
            if spec["call_effect"].get("folder"):
                model.call_effect = _load_head(folder, spec, where)
            model.call_effect_gate = dict(spec["call_effect"].get("gate") or {})
        if spec.get("horizons"):
            model.horizons = _load_horizons(folder, spec, where)
            model.horizons_gate = dict(spec["horizons"].get("gate") or {})
        if "input_schema" in spec:
            model.input_schema = [SchemaField.from_dict(f) for f in spec["input_schema"]]
        else:  # saved before the schema was recorded: derived from what the model stores
            model.input_schema = model.derived_input_schema()
        return model

    def derived_input_schema(self) -> list[SchemaField]:
        """The input schema from the features, categories and drift distribution (missing
        shares None when the model has no distribution); training records it so."""
        return profile_schema(
            self.feature_names,
            self.categories,
            self.distribution,
            table=self.kind == KIND_TABLE,
        )

    @property
    def rank_by(self) -> str:
        """What the day's list ranks by under this model: "saved-revenue" when its
        call-effect head passed the gate, else "risk" (``call_effect_gate``'s reason)."""
        gate = self.call_effect_gate or {}
        if self.call_effect is not None and gate.get("rank_by") == RANK_BY_SAVED_REVENUE:
            return RANK_BY_SAVED_REVENUE
        return RANK_BY_RISK


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _head_spec_name() -> str:
    from model.call_effect import SPEC_FILE as HEAD_SPEC

    return HEAD_SPEC


def _call_effect_spec() -> str:
    return f"{CALL_EFFECT_FOLDER}/{_head_spec_name()}"


def _load_head(folder: Path, spec: dict[str, Any], where: str) -> CallEffectModel:
    """The call-effect head saved with the model (``CallEffectModel.load`` then checks each
    booster's sha256)."""
    from model.call_effect import CallEffectModel

    _check_part(folder, spec, where, _call_effect_spec(), "the call-effect head", "retrain it")
    return CallEffectModel.load(folder / CALL_EFFECT_FOLDER, source=f"{where} (call effect)")


def _horizons_spec_name() -> str:
    from model.horizons import SPEC_FILE as HORIZONS_SPEC

    return HORIZONS_SPEC


def _horizons_spec() -> str:
    return f"{HORIZONS_FOLDER}/{_horizons_spec_name()}"


def _load_horizons(folder: Path, spec: dict[str, Any], where: str) -> HorizonModel:
    """The time-to-churn model saved with the model (``HorizonModel.load`` then checks its
    booster's sha256)."""
    from model.horizons import HorizonModel

    _check_part(
        folder, spec, where, _horizons_spec(), "the horizons model", "retrain with --horizons"
    )
    return HorizonModel.load(folder / HORIZONS_FOLDER, source=f"{where} (horizons)")


def _check_part(
    folder: Path, spec: dict[str, Any], where: str, name: str, what: str, fix: str
) -> None:
    """A part saved with the model is there and its file matches the sha256 in spec.json."""
    try:
        data = (folder / name).read_bytes()
    except OSError as error:
        raise ModelError(f"{where}: {what} is missing ({error}); {fix}") from None
    if sha256_of(data) != (spec.get(CHECKSUMS) or {}).get(name):
        raise ModelError(
            f"{where}: {name} does not match the sha256 saved in {SPEC_FILE} with the model "
            "(the file is truncated or damaged); restore the model's files or retrain it"
        )


def _booster_text(path: Path, spec: dict[str, Any], where: str) -> str:
    """The booster file's text, once it is known to parse without killing the process."""
    data = path.read_bytes()
    expected = (spec.get(CHECKSUMS) or {}).get(BOOSTER_FILE)
    if expected is None:
        _parse_in_a_child(data, where)
    elif sha256_of(data) != expected:
        raise ModelError(
            f"{where}: {BOOSTER_FILE} does not match the sha256 saved in {SPEC_FILE} with the "
            "model (the file is truncated or damaged); restore the model's files or retrain "
            "it with `churnml train`"
        )
    return data.decode("utf-8")


# A model saved before checksums existed has no sha256 to check: LightGBM parses its booster
# in a child process first, where a damaged file can only kill the child. Refusing such
# models instead would stop every champion registered before this release until retrained.
_PARSE = "import sys, lightgbm; lightgbm.Booster(model_str=sys.stdin.read())"
PARSE_SECONDS = 120


def _parse_in_a_child(data: bytes, where: str) -> None:
    try:
        child = subprocess.run(
            [sys.executable, "-c", _PARSE],
            input=data,
            capture_output=True,
            timeout=PARSE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ModelError(f"{where}: cannot check {BOOSTER_FILE} ({error})") from None
    if child.returncode != 0:
        raise ModelError(
            f"{where}: {BOOSTER_FILE} cannot be parsed by LightGBM (the file is truncated or "
            "damaged); restore the model's files or retrain it with `churnml train`"
        )


@dataclass(frozen=True)
class Calibrator:
    """Maps raw booster probabilities to calibrated ones; plain numbers, JSON-serialisable."""

    method: str  # "isotonic" or "platt"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0

    def predict(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype="float64")
        if self.method == "isotonic":
            calibrated = np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        else:
            calibrated = 1.0 / (1.0 + np.exp(-(self.slope * logit(raw) + self.intercept)))
        return np.clip(calibrated, EPS, 1 - EPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "x": list(self.x),
            "y": list(self.y),
            "slope": self.slope,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Calibrator:
        return cls(
            method=values["method"],
            x=tuple(values["x"]),
            y=tuple(values["y"]),
            slope=float(values["slope"]),
            intercept=float(values["intercept"]),
        )


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def table_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64").map(lambda v: None if pd.isna(v) else repr(float(v)))
    text = values.astype("object").map(lambda v: None if pd.isna(v) else str(v).strip())
    return text.where(text != "", None)


def table_features(table: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """The feature frame of a table under ``schema``: floats and categoricals."""
    missing = [c for c in [*schema["numeric"], *schema["categorical"]] if c not in table.columns]
    if missing:
        raise DataError(
            f"the table lacks column {missing[0]!r} the model was trained with; "
            "score a table with the training table's columns"
        )
    frame = pd.DataFrame(index=table.index)
    for column in schema["numeric"]:
        frame[column] = pd.to_numeric(table_text(table[column]), errors="coerce").astype("float64")
    for column, categories in schema["categorical"].items():
        frame[column] = pd.Categorical(table_text(table[column]), categories=categories)
    return frame
