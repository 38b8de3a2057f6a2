"""The served reasons (per-leaf path attributions, Saabas) agree with exact TreeSHAP.

When the model blends in a logistic regression (``model.linear.Blend``), both sides
add the same exact linear shares; only the trees' shares differ between the two.

The service words its reasons from ``features.reasons.PathAttributions``: one gather per
tree and row, about 15x cheaper than LightGBM's exact TreeSHAP (``pred_contrib``) on the
sample model (100 rows: ~0.8 ms against ~13 ms). This test takes 400 active customers
of the sample world, scores them with the champion trained on it, and words their
reasons twice through the same ``Explainer``: once from the path attributions, once
from exact TreeSHAP. It compares the reason codes (families) a caller would see.

Agreement measures, measured on the sample model (400 customers, 11 families; a reason
only where the customer's value is unusual in the risky direction, actions first), and
the bounds this test holds (each well below the measured value, none at it):

| measure | measured | bound |
|---|---|---|
| customers with at least one reason from TreeSHAP | 292 of 400 | >= 240 |
| served first reason is among TreeSHAP's (up to 3) | 100% (288) | >= 95% |
| TreeSHAP's first reason is among the served (up to 3) | 98.3% (292) | >= 92% |
| the two lists share >= 2 codes (208 customers with >= 2 on both sides, >= 180 held) | 100% | >= 95% |
| same first reason | 96.2% (288) | >= 88% |

Only families that raise the risk with unusual values are reasons, so a list may hold
fewer than 3 codes, and a customer whose values are all usual has none (most of the 108
without). Both lists read the same values, so they differ only where the two methods
weigh the features differently: when two families are close, they may order them
differently; the family still shows among the reasons.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from tests.serving.helpers import AS_OF, payload_customers

SAMPLE_CUSTOMERS = 400


@pytest.fixture(scope="module")
def both_reasons(registry_home: Path) -> tuple[list[list[str]], list[list[str]]]:
    from serving.loading import load_served_model
    from serving.schemas import Customer

    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )
    scorer = served.scorer
    customers = [
        Customer.model_validate(c) for c in payload_customers(SAMPLE_CUSTOMERS, min_contacts=1)
    ]
    features = scorer.features(customers, dt.date.fromisoformat(AS_OF))
    features = features.reindex([c.customer_id for c in customers])
    predictor = scorer.predictor
    x = predictor.matrix(features)
    cheap = predictor.shares(x)
    # The same linear shares on both sides when the model blends in a logistic regression.
    exact = predictor.exact_shares(x)
    # Both split the same raw score: the served shares + bias are it; TreeSHAP's shares
    # differ from them by a constant (its expected value instead of the trees' root values).
    raw = predictor.raw_score(x)
    assert np.allclose(cheap.sum(axis=1) + predictor.attributions.bias, raw)
    assert np.ptp(exact.sum(axis=1) - raw) < 1e-6
    served_codes = [
        [r["code"] for r in row] for row in scorer.explainer.explain(cheap, features, 3)
    ]
    exact_codes = [[r["code"] for r in row] for row in scorer.explainer.explain(exact, features, 3)]
    assert len(served_codes) == SAMPLE_CUSTOMERS
    return served_codes, exact_codes


def _share(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else 0.0


def test_the_exact_first_reason_is_among_the_served_reasons(both_reasons) -> None:
    served, exact = both_reasons
    flags = [e[0] in s for s, e in zip(served, exact, strict=True) if e]
    assert len(flags) >= 0.6 * SAMPLE_CUSTOMERS
    assert _share(flags) >= 0.92, f"TreeSHAP's first reason among the served: {_share(flags):.1%}"


def test_the_served_first_reason_is_among_the_exact_reasons(both_reasons) -> None:
    served, exact = both_reasons
    flags = [s[0] in e for s, e in zip(served, exact, strict=True) if s]
    assert _share(flags) >= 0.95, f"served first reason among TreeSHAP's 3: {_share(flags):.1%}"


def test_the_top_three_share_at_least_two_families(both_reasons) -> None:
    served, exact = both_reasons
    flags = [
        len(set(s) & set(e)) >= 2
        for s, e in zip(served, exact, strict=True)
        if len(s) >= 2 and len(e) >= 2
    ]
    assert len(flags) >= 0.45 * SAMPLE_CUSTOMERS
    assert _share(flags) >= 0.95, f"top-3 lists sharing >= 2 families: {_share(flags):.1%}"


def test_the_first_reason_mostly_agrees(both_reasons) -> None:
    served, exact = both_reasons
    flags = [s[0] == e[0] for s, e in zip(served, exact, strict=True) if s and e]
    assert _share(flags) >= 0.88, f"same first reason: {_share(flags):.1%}"
