"""Per-feature shares of a model's raw score (log-odds), from one tree traversal per row.

``PathAttributions`` splits the booster's raw score into one share per feature, from the
path a row takes through each tree (Saabas' method: at every split, the change of the
node's expected value is credited to the split feature). The per-leaf shares are computed
once from the trees; scoring then costs one gather per tree and row, instead of exact
TreeSHAP's trees x leaves x depth^2 (see ``shared/perf-facts.md``). The shares add up
exactly to the raw score, and ``tests/serving/test_reasons_agreement.py`` checks that the
reasons they give agree with exact TreeSHAP's (``pred_contrib``) on a sample.

``BlendedAttributions`` adds the linear term's shares of a blended model (``Blend``),
each part scaled by its weight, so that ``bias + shares.sum(axis=1)`` is the blended
raw score either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from model.linear import Blend


@dataclass(frozen=True)
class PathAttributions:
    """Per-leaf feature shares of a LightGBM booster (Saabas), precomputed once.

    ``features[g, k]`` / ``deltas[g, k]``: the k-th split on the path to global leaf g
    (leaf ``l`` of tree ``t`` is ``g = offsets[t] + l``) and the change of expected value
    it brings; unused slots point at the dummy feature ``n_features`` with delta 0.
    ``bias`` is the sum of the trees' root values.
    """

    n_features: int
    offsets: np.ndarray
    features: np.ndarray
    deltas: np.ndarray
    bias: float
    num_iteration: int | None

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> PathAttributions:
        num_iteration = booster.best_iteration or None
        dump = booster.dump_model(num_iteration=num_iteration or -1)
        n_features = len(dump["feature_names"])
        paths_per_tree: list[list[list[tuple[int, float]]]] = []
        bias = 0.0
        for tree in dump["tree_info"]:
            root = tree["tree_structure"]
            leaves: dict[int, list[tuple[int, float]]] = {}
            if "leaf_value" in root and "split_feature" not in root:
                bias += float(root["leaf_value"])
                leaves[int(root.get("leaf_index", 0))] = []
            else:
                bias += float(root["internal_value"])
                stack: list[tuple[dict[str, Any], list[tuple[int, float]]]] = [(root, [])]
                while stack:
                    node, path = stack.pop()
                    parent_value = float(node["internal_value"])
                    feature = int(node["split_feature"])
                    for side in ("left_child", "right_child"):
                        child = node[side]
                        if "split_feature" in child:
                            value = float(child["internal_value"])
                            stack.append((child, [*path, (feature, value - parent_value)]))
                        else:
                            value = float(child["leaf_value"])
                            leaves[int(child["leaf_index"])] = [
                                *path,
                                (feature, value - parent_value),
                            ]
            paths_per_tree.append([leaves[i] for i in range(len(leaves))])
        sizes = [len(paths) for paths in paths_per_tree]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        depth = max((len(p) for paths in paths_per_tree for p in paths), default=0) or 1
        total = int(sum(sizes))
        features = np.full((total, depth), n_features, dtype=np.int32)
        deltas = np.zeros((total, depth), dtype=np.float64)
        g = 0
        for paths in paths_per_tree:
            for path in paths:
                for k, (feature, delta) in enumerate(path):
                    features[g, k] = feature
                    deltas[g, k] = delta
                g += 1
        return cls(n_features, offsets, features, deltas, bias, num_iteration)

    def contributions(self, leaves: np.ndarray) -> np.ndarray:
        """Per-feature shares of the raw score, (rows, features), from ``pred_leaf`` output."""
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        rows = len(leaves)
        width = self.n_features + 1
        g = leaves + self.offsets[None, : leaves.shape[1]]
        cells = self.features[g] + (np.arange(rows, dtype=np.int64) * width)[:, None, None]
        totals = np.bincount(cells.ravel(), weights=self.deltas[g].ravel(), minlength=rows * width)
        return totals.reshape(rows, width)[:, : self.n_features]

    def explain_rows(self, booster: lgb.Booster, x: Any) -> np.ndarray:
        """Shares for prepared features ``x`` (what ``booster.predict`` accepts)."""
        # One thread: rows are few per call, and OpenMP's spinning threads cost more than
        # they save on a shared 2-core machine (shared/perf-facts.md).
        leaves = booster.predict(x, num_iteration=self.num_iteration, pred_leaf=True, num_threads=1)
        return self.contributions(leaves)


@dataclass(frozen=True)
class BlendedAttributions:
    """``PathAttributions``' interface for a blended model: the trees' shares and the
    linear term's, each scaled by its weight, summed per feature; the bias likewise."""

    trees: PathAttributions
    blend: Blend

    @property
    def bias(self) -> float:
        return self.blend.tree_weight * self.trees.bias + self.blend.linear_weight * (
            self.blend.linear.bias
        )

    @property
    def num_iteration(self) -> int | None:
        return self.trees.num_iteration

    def explain_rows(self, booster: lgb.Booster, x: Any) -> np.ndarray:
        """Shares for prepared features or the feature matrix, rows x features."""
        return self.blend.tree_weight * self.trees.explain_rows(
            booster, x
        ) + self.blend.linear_weight * self.blend.linear.contributions(x)
