"""Hand-built lists in a real store, for the tests of the report and of the contacts."""

from __future__ import annotations

from collections.abc import Sequence

from serving.store import ROW_COLUMNS, RiskListStore, encode_reasons

Row = tuple[str, float, str]  # customer_id, churn_probability, risk_band


def make_list(
    store: RiskListStore,
    day: str,
    *,
    picks: Sequence[Row],
    others: Sequence[Row],
    monthly_revenue: float = 50.0,
    revenue_months: float = 12.0,
    held_out: Sequence[str] = (),
) -> int:
    """Store a list of ``day``: ``picks`` on the list (rank order), ``others`` scored below;
    the picks in ``held_out`` are the list's own controls (``group``), the others treated."""
    rows = []
    for rank, (customer, probability, band) in enumerate([*picks, *others], start=1):
        row = {
            "customer_id": customer,
            "rank": rank,
            "segment": "consumer",
            "plan": "basic",
            "monthly_revenue": monthly_revenue,
            "churn_probability": probability,
            "risk_band": band,
            "thin_history": False,
            "revenue_at_risk": probability * monthly_revenue * revenue_months,
            "reasons": encode_reasons([]),
            "action": "call",
            "on_list": rank <= len(picks),
            "suppressed": False,
            "group": None
            if rank > len(picks)
            else ("control" if customer in held_out else "treated"),
        }
        rows.append(tuple(row.get(name) for name in ROW_COLUMNS))
    header = {
        "list_date": day,
        "created_at": f"{day}T06:00:00+00:00",
        "model_name": "churn-risk",
        "model_version": "7",
        "model_uri": "models:/churn-risk/7",
        "fingerprint": {},
        "scored": len(rows),
        "on_list": len(picks),
        "capacity": len(picks),
        "rank_by": "revenue",
        "revenue_months": revenue_months,
        "bands": {"thresholds": {"high": 0.4, "medium": 0.15}, "shares": {}},
        "drift": {"warnings": []},
        "drift_warning": False,
        "previous_date": None,
        "departures": 0,
    }
    return store.replace_list(header, rows, [])
