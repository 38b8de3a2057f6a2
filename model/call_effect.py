"""The call-effect model as files: what ``training.uplift.fit`` makes and a scorer loads.

``CallEffectModel`` is plain data: the meta-learner's name, its LightGBM boosters (one per
role, see ``ROLES``), the feature list with the categories of the categorical features,
and the propensity the X-learner blends its two effect models with. ``predict`` gives the
call effect of the contract (v1.1): ``P(churn | no call) - P(churn | call)``, positive
where a call helps, negative where it harms.

On disk it is text only, like ``model.artifact.ChurnModel``: one LightGBM model file per
booster and ``call_effect.json``, which holds the boosters' sha256 (checked before
LightGBM parses a file: it aborts the process on a truncated one). No pickle: loading a
model runs no code from the data. It lives in ``model/`` so that serving can load it
without importing ``training``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.errors import DataError, ModelError
from model.artifact import sha256_of

SPEC_FILE = "call_effect.json"
FORMAT_VERSION = 1
# The boosters each learner predicts with. T: the churn probability without a call
# (``control``) and with one (``treated``); X: the effect models fitted on the control
# rows' and the treated rows' imputed effects, blended by the propensity; DR: one
# regression of the doubly robust pseudo-outcome.
ROLES = {
    "t": ("control", "treated"),
    "x": ("effect_control", "effect_treated"),
    "dr": ("effect",),
}


def booster_file(role: str) -> str:
    return f"call_effect_{role}.txt"


@dataclass
class CallEffectModel:
    """A fitted call-effect model; see the module."""

    learner: str
    boosters: dict[str, lgb.Booster]
    feature_names: list[str]
    # {categorical column: its categories in training}; a value outside them is missing.
    categories: dict[str, list[str]] = field(default_factory=dict)
    # The share of treated rows among the randomised picks (the X-learner's blend weight
    # of the effect model fitted on the control rows).
    propensity: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.learner not in ROLES:
            raise ModelError(
                f"call-effect learner {self.learner!r}: expected one of {', '.join(ROLES)}"
            )
        missing = [role for role in ROLES[self.learner] if role not in self.boosters]
        if missing:
            raise ModelError(
                f"call-effect model ({self.learner}-learner) lacks the booster(s) "
                f"{', '.join(missing)}; retrain it"
            )

    # -- predictions -------------------------------------------------------------------
    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The boosters' input of ``features`` (see ``feature_matrix``)."""
        return feature_matrix(features, self.feature_names, self.categories)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The call effect of each row: P(churn | no call) - P(churn | call), in [-1, 1]."""
        matrix = self.matrix(features)
        if self.learner == "t":
            effect = self._raw("control", matrix) - self._raw("treated", matrix)
        elif self.learner == "x":
            e = self.propensity
            effect = e * self._raw("effect_control", matrix) + (1 - e) * self._raw(
                "effect_treated", matrix
            )
        else:
            effect = self._raw("effect", matrix)
        return np.clip(effect, -1.0, 1.0)

    def _raw(self, role: str, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.boosters[role].predict(matrix), dtype="float64")

    # -- files -------------------------------------------------------------------------
    def save(self, folder: Path | str) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        checksums = {}
        for role, booster in self.boosters.items():
            path = folder / booster_file(role)
            booster.save_model(str(path))
            checksums[path.name] = sha256_of(path.read_bytes())
        spec = {
            "format_version": FORMAT_VERSION,
            "learner": self.learner,
            "roles": sorted(self.boosters),
            "checksums": checksums,
            "feature_names": self.feature_names,
            "categories": self.categories,
            "propensity": self.propensity,
            "metadata": self.metadata,
        }
        (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path | str, *, source: str | None = None) -> CallEffectModel:
        """The model saved in ``folder``; ``source`` names it in errors (default: the folder).
        Every booster file is parsed only once its sha256 matches ``call_effect.json``."""
        folder = Path(folder)
        where = source or str(folder)
        try:
            spec = json.loads((folder / SPEC_FILE).read_text())
            if spec.get("format_version") != FORMAT_VERSION:
                raise ModelError(
                    f"{where}: call-effect model format {spec.get('format_version')!r}, "
                    f"this churnml reads {FORMAT_VERSION}; retrain it"
                )
            boosters = {}
            for role in spec["roles"]:
                name = booster_file(role)
                data = (folder / name).read_bytes()
                if sha256_of(data) != spec["checksums"].get(name):
                    raise ModelError(
                        f"{where}: {name} does not match the sha256 saved in {SPEC_FILE} "
                        "(the file is truncated or damaged); restore the model's files or "
                        "retrain it"
                    )
                boosters[role] = lgb.Booster(model_str=data.decode("utf-8"))
            return cls(
                learner=spec["learner"],
                boosters=boosters,
                feature_names=list(spec["feature_names"]),
                categories={k: list(v) for k, v in spec["categories"].items()},
                propensity=float(spec["propensity"]),
                metadata=dict(spec.get("metadata") or {}),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise ModelError(f"{where}: not a churnml call-effect model ({error})") from None
        except lgb.basic.LightGBMError as error:
            raise ModelError(f"{where}: not a churnml call-effect model ({error})") from None


def feature_matrix(
    features: pd.DataFrame, feature_names: list[str], categories: dict[str, list[str]]
) -> np.ndarray:
    """The boosters' input: ``feature_names`` in order, each categorical column as the
    codes of its training ``categories`` (a category not seen in training is missing),
    all as float64."""
    absent = [name for name in feature_names if name not in features.columns]
    if absent:
        shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise DataError(
            f"call-effect features: {len(absent)} column(s) the model was trained on "
            f"are missing ({shown}); build the features with the model's settings"
        )
    columns = []
    for name in feature_names:
        values = features[name]
        if name in categories:
            codes = pd.Index(categories[name]).get_indexer(values.astype("string"))
            codes = codes.astype("float64")
            codes[codes < 0] = np.nan
            columns.append(codes)
            continue
        try:
            columns.append(pd.to_numeric(values, errors="raise").to_numpy("float64"))
        except (TypeError, ValueError):
            raise DataError(
                f"call-effect features: column {name} is not numeric (first value "
                f"{values.iloc[0]!r}); the model was trained on numbers there"
            ) from None
    if not columns:
        return np.empty((len(features), 0))
    return np.column_stack(columns)
