"""The words of reasons: the customer's own numbers, in plain language."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.reasons import Explainer, describe


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("long_waits_30d", 1.0, "had 1 long wait in the last 30 days"),
        ("long_waits_30d", 3.0, "had 3 long waits in the last 30 days"),
        ("open_cases", 1.0, "has 1 case still open"),
        ("open_cases", 2.0, "has 2 cases still open"),
        ("transfers_7d", 1.0, "was transferred once in the last 7 days"),
        ("bad_experiences_90d", 1.0, "had 1 bad experience (long wait"),
        ("days_since_last_bad_experience", 0.0, "had a bad experience today"),
        ("days_since_last_bad_experience", 1.0, "had a bad experience 1 day ago"),
        ("days_since_last_contact", 0.2, "last contacted service today"),
    ],
)
def test_counts_read_as_plain_words(column, value, text):
    assert describe(column, value).startswith(text)


def test_a_value_far_above_the_usual_says_how_many_times():
    reference = {"wait_mean_seconds_30d": {"median": 280.0}}
    text = describe("wait_mean_seconds_30d", 840.0, reference)
    assert text.startswith("waited 14 minutes on average in the last 30 days")
    assert "3 times the usual" in text


def test_a_row_alone_gets_the_reasons_and_numbers_it_gets_inside_a_batch() -> None:
    # Dense shares over many features, as a booster stacked with a linear term gives.
    rng = np.random.default_rng(11)
    bases = ["contacts", "transfers", "wait_mean_seconds", "repeat_contacts", "csat_mean"]
    names = [f"{base}_{window}d" for base in bases for window in range(1, 19)]
    families = {name: name.rsplit("_", 1)[0] for name in names}
    explainer = Explainer.build(names, families)
    shares = rng.normal(0, 0.3, (300, len(names)))
    values = pd.DataFrame(rng.integers(0, 5, (300, len(names))).astype(float), columns=names)
    batch = explainer.explain(shares, values)
    for row in range(0, 300, 7):
        assert explainer.explain(shares[row : row + 1], values.iloc[row : row + 1]) == [batch[row]]
