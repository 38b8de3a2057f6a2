"""Test oracles: code the tests check churnml against, kept apart from churnml itself.

``world`` makes a synthetic, contract-valid world fast; ``reference_features`` computes
the feature set a second and a third way (pandas, DuckDB). The benchmarks import them
from here too (``python -m benchmarks.features_bench`` from the repository root), so
that the benchmark times the same work the tests check.
"""
