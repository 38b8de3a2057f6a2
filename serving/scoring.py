"""From a request's customers to scores with reasons: the work behind ``POST /score``.

``Scorer.score(customers, as_of)`` reads the request's values column by column in one
pass (``RequestColumns``), checks the rules across rows, builds the contract tables (typed
as ``churnml.validation`` types files) and the features with the same
``features.build_features`` code as training and batch scoring, and scores:

* the tables go to the feature builder as columns (``table_columns``: pyarrow text,
  float64 numbers, datetime64 times), not DataFrames: pandas' per-column overhead was
  most of a one-customer request;
* the rules across rows are checked on whole arrays; only a request that breaks one
  walks its customers one by one, to name every problem's field path (``check_rows``);
* contact times are converted to UTC once per request, for the whole column (pyarrow),
  not by a validator per contact;
* features go to the booster as one float matrix (categories as the booster's codes),
  made from the feature arrays without a DataFrame round trip (``Predictor.matrix_of``);
  the reasons read the columns they quote from the same arrays (``FeatureArrays.column``);
* one tree traversal per row gives both the probability and the reasons
  (``Predictor.explain``), as for the daily risk list.

Problems a caller can fix raise ``RequestProblems`` (answered 422 with every field path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churnml.io import TEXT
from churnml.validation import (
    ONE_DAY,
    all_distinct,
    churned_before_signup,
    contact_after_churn,
    contact_before_signup,
    first_copies,
)
from features.build import FeatureArrays, build_feature_arrays, visible_end
from features.reasons import REASONS_PER_CUSTOMER, next_step
from model.predictor import Prediction, Predictor
from model.schema import warned_fields
from serving.schemas import Customer, Interaction, as_utc

MAX_PROBLEMS = 20
_EPOCH = dt.date(1970, 1, 1)
_NAT = np.iinfo(np.int64).min  # numpy's NaT: the int64 times viewed as _NS
_NS = "datetime64[ns]"

# The request's own fields, in its order: a customer's, and a contact's.
_CUSTOMER_FIELDS = tuple(Customer.model_fields)
_CONTACT_FIELDS = tuple(Interaction.__annotations__)


@dataclass(frozen=True)
class Problem:
    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class RequestProblems(Exception):
    """Rules across rows that the request breaks; each names its field path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        where = ".".join(str(part) for part in first.loc)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{where}: {first.msg}{more}")


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class RequestColumns:
    """A request's values column by column, read from the pydantic objects in one pass.

    ``customer`` and ``contact`` map each field to its values (one per customer, one per
    contact with the customers' contacts in request order); ``sizes`` counts each
    customer's contacts. Times are int64 nanoseconds (``_NAT`` when missing): dates at
    midnight, contact times in UTC, converted for the whole column at once.
    """

    customers: Sequence[Customer]
    customer: dict[str, tuple[Any, ...]]
    contact: dict[str, tuple[Any, ...]]
    sizes: np.ndarray
    signup_ns: np.ndarray
    churn_ns: np.ndarray
    started_ns: np.ndarray

    @classmethod
    def read(cls, customers: Sequence[Customer]) -> RequestColumns:
        # Attribute by attribute, 13 comprehensions over 2,000 contacts cost ~2 ms; one
        # itemgetter per object over its field dict and one transpose cost ~0.8 ms.
        records = [customer.__dict__ for customer in customers]
        customer = _transpose(records, _CUSTOMER_FIELDS)
        groups = customer.pop("interactions")
        contacts = [contact for group in groups for contact in group]
        contact = _transpose(contacts, _CONTACT_FIELDS)
        started = pa.array(contact["started_at"], type=pa.timestamp("us"))  # aware -> UTC
        return cls(
            customers=customers,
            customer=customer,
            contact=contact,
            sizes=np.fromiter(map(len, groups), dtype=np.int64, count=len(groups)),
            signup_ns=_date_ns(customer["signup_date"]),
            churn_ns=_date_ns(customer["churned_at"]),
            started_ns=started.to_numpy(zero_copy_only=False)
            .astype("datetime64[ns]")
            .view(np.int64),
        )

    def owners(self) -> np.ndarray:
        """The position of each contact's customer."""
        return np.repeat(np.arange(len(self.sizes)), self.sizes)

    def breaks_rules(self, as_of: dt.date) -> bool:
        """Whether ``check_rows`` finds a problem, from whole arrays (a few numpy calls)."""
        ids, contact_ids = self.customer["customer_id"], self.contact["interaction_id"]
        if not (all_distinct(ids) and all_distinct(contact_ids)):
            return True
        day = np.datetime64((as_of - _EPOCH).days * 86_400 * 10**9, "ns")  # 5x np.datetime64(as_of)
        signup, churn = self.signup_ns.view(_NS), self.churn_ns.view(_NS)  # _NAT is NaT
        if (
            (signup > day).any()
            or (churn <= day).any()
            or churned_before_signup(churn, signup).any()
        ):
            return True
        if not len(self.started_ns):
            return False
        owners = self.owners()
        started = self.started_ns.view(_NS)
        return bool(
            (started >= day + ONE_DAY).any()
            or contact_before_signup(started, signup[owners]).any()
            or contact_after_churn(started, churn[owners]).any()
        )


def _transpose(
    records: list[dict[str, Any]], fields: tuple[str, ...]
) -> dict[str, tuple[Any, ...]]:
    columns = list(zip(*map(itemgetter(*fields), records), strict=True))
    if not columns:
        columns = [()] * len(fields)
    return dict(zip(fields, columns, strict=True))


def _date_ns(values: Sequence[dt.date | None]) -> np.ndarray:
    days = pa.array(values, type=pa.date32()).to_numpy(zero_copy_only=False)  # None -> NaT
    return days.astype("datetime64[ns]").view(np.int64)


# --------------------------------------------------------------------------- rules


def check_rows(
    customers: Sequence[Customer], as_of: dt.date, columns: RequestColumns | None = None
) -> list[Problem]:
    """The contract's rules across rows (``churnml.validation``'s unique ids and timeline
    rules, by its own predicates) plus the service's own: every customer active on as_of,
    no contact after it.

    Checked on whole arrays first (``columns``, read from ``customers`` when not given);
    only a request that breaks a rule is walked row by row to name each problem."""
    columns = columns or RequestColumns.read(customers)
    if not columns.breaks_rules(as_of):
        return []
    return _problems(customers, as_of, columns)


@dataclass(frozen=True)
class _Broken:
    """Where a request breaks the contract's rules across rows, by validation's predicates:
    per customer and per contact (contacts flat, in request order)."""

    first_customer: np.ndarray  # position of the first customer with the id
    churned_early: np.ndarray
    first_contact: np.ndarray  # flat position of the first contact with the id
    before_signup: np.ndarray
    after_churn: np.ndarray
    owners: np.ndarray
    starts: np.ndarray  # flat position of each customer's first contact

    @classmethod
    def find(cls, columns: RequestColumns) -> _Broken:
        signup, churn = columns.signup_ns.view(_NS), columns.churn_ns.view(_NS)
        owners = columns.owners()
        started = columns.started_ns.view(_NS)
        return cls(
            first_copies(columns.customer["customer_id"]),
            churned_before_signup(churn, signup),
            first_copies(columns.contact["interaction_id"]),
            contact_before_signup(started, signup[owners]),
            contact_after_churn(started, churn[owners]),
            owners,
            np.cumsum(columns.sizes) - columns.sizes,
        )


def _problems(
    customers: Sequence[Customer], as_of: dt.date, columns: RequestColumns | None = None
) -> list[Problem]:
    """Every problem of the rules across rows with its field path, in request order."""
    problems: list[Problem] = []
    columns = columns or RequestColumns.read(customers)
    broken = _Broken.find(columns)
    end_of_day = visible_end(as_of).to_pydatetime()
    for i, customer in enumerate(columns.customers):
        here = ("customers", i)
        problems += _customer_problems(customer, here, broken, as_of)
        for j, contact in enumerate(customer.interactions):
            at = (*here, "interactions", j)
            problems += _contact_problems(contact, at, broken, customer, end_of_day, as_of)
            if len(problems) >= MAX_PROBLEMS:
                return problems
    return problems


def _customer_problems(
    customer: Customer, here: tuple[str, int], broken: _Broken, as_of: dt.date
) -> list[Problem]:
    problems: list[Problem] = []
    i = here[1]
    first = int(broken.first_customer[i])
    if first != i:
        problems.append(
            Problem(
                (*here, "customer_id"),
                f"customer_id {customer.customer_id!r} repeats customers[{first}]; "
                "expected each customer_id once",
                "duplicate",
            )
        )
    signup, churned = customer.signup_date, customer.churned_at
    if broken.churned_early[i]:
        problems.append(
            Problem(
                (*here, "churned_at"),
                f"churned_at {churned} is before signup_date {signup}; expected "
                "churned_at on or after signup_date",
                "timeline",
            )
        )
    if signup > as_of:
        problems.append(
            Problem(
                (*here, "signup_date"),
                f"signup_date {signup} is after as_of {as_of}; the customer is "
                "not a customer yet on as_of",
                "not_active",
            )
        )
    if churned is not None and churned <= as_of:
        problems.append(
            Problem(
                (*here, "churned_at"),
                f"the customer left on {churned}, on or before as_of {as_of}; "
                "score only current customers",
                "not_active",
            )
        )
    return problems


def _contact_problems(
    contact: Interaction,
    at: tuple[str | int, ...],
    broken: _Broken,
    customer: Customer,
    end_of_day: dt.datetime,
    as_of: dt.date,
) -> list[Problem]:
    problems: list[Problem] = []
    k = int(broken.starts[at[1]]) + int(at[3])  # the contact's flat position
    first = int(broken.first_contact[k])
    if first != k:
        owner = int(broken.owners[first])
        problems.append(
            Problem(
                (*at, "interaction_id"),
                f"interaction_id {contact['interaction_id']!r} repeats "
                f"customers[{owner}].interactions[{first - int(broken.starts[owner])}]; "
                "expected each interaction_id once",
                "duplicate",
            )
        )
    started = as_utc(contact["started_at"])
    if started >= end_of_day:
        problems.append(
            Problem(
                (*at, "started_at"),
                f"started_at {started.isoformat()} is after as_of {as_of}; "
                "send contacts up to the end of the as_of day only",
                "after_as_of",
            )
        )
    if broken.before_signup[k]:
        problems.append(
            Problem(
                (*at, "started_at"),
                f"started_at {started.isoformat()} is before the customer's "
                f"signup_date {customer.signup_date}; expected started_at on or after it",
                "timeline",
            )
        )
    elif broken.after_churn[k]:
        problems.append(
            Problem(
                (*at, "started_at"),
                f"started_at {started.isoformat()} is after the customer's "
                f"churned_at day {customer.churned_at}",
                "timeline",
            )
        )
    return problems


# --------------------------------------------------------------------------- tables


def _numbers(values: Sequence[Any]) -> np.ndarray:
    # numpy reads None as NaN and a bool as 0/1, as float(v) does.
    return np.array(values, dtype=np.float64)


def _texts(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, type=pa.string())


def table_columns(
    customers: Sequence[Customer] | RequestColumns,
    profile_columns: Sequence[str],
    categorical_profile: set[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request as the contract's tables, column by column (``features.build.Table``):
    text as pyarrow strings, numbers as float64, times as datetime64[ns]. The feature
    builder reads them as it reads ``tables``' DataFrames, without pandas' overhead."""
    columns = customers if isinstance(customers, RequestColumns) else RequestColumns.read(customers)
    customer, contact = columns.customer, columns.contact
    ids = _texts(customer["customer_id"])
    customer_table: dict[str, Any] = {
        "customer_id": ids,
        "signup_date": columns.signup_ns.view("datetime64[ns]"),
        "churned_at": columns.churn_ns.view("datetime64[ns]"),
        "segment": _texts(customer["segment"]),
        "plan": _texts(customer["plan"]),
        "monthly_revenue": _numbers(customer["monthly_revenue"]),
    }
    if profile_columns:
        extras = [c.model_extra or {} for c in columns.customers]
        for name in profile_columns:
            values = [extra.get(name) for extra in extras]
            if name in categorical_profile:
                customer_table[name] = _texts(
                    [None if v is None else _profile_text(v) for v in values]
                )
            else:
                customer_table[name] = np.array(
                    [_profile_number(v) for v in values], dtype="float64"
                )
    interaction_table: dict[str, Any] = {
        "interaction_id": _texts(contact["interaction_id"]),
        "customer_id": ids.take(pa.array(columns.owners())),
        "started_at": columns.started_ns.view("datetime64[ns]"),
        "channel": _texts(contact["channel"]),
        "case_id": _texts(contact["case_id"]),
        "topic": _texts(contact["topic"]),
        "wait_seconds": _numbers(contact["wait_seconds"]),
        "handle_seconds": _numbers(contact["handle_seconds"]),
        "agent_id": _texts(contact["agent_id"]),
        "transfers": _numbers(contact["transfers"]),
        "abandoned": _numbers(contact["abandoned"]),
        "status": _texts(contact["status"]),
        "csat": _numbers(contact["csat"]),
    }
    return customer_table, interaction_table


def tables(
    customers: Sequence[Customer] | RequestColumns,
    profile_columns: Sequence[str],
    categorical_profile: set[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The request as the contract's typed tables (the dtypes of ``churnml.validation``)."""
    return tuple(  # type: ignore[return-value]
        pd.DataFrame(
            {
                name: pd.array(values, dtype=TEXT) if isinstance(values, pa.Array) else values
                for name, values in table.items()
            }
        )
        for table in table_columns(customers, profile_columns, categorical_profile)
    )


def _profile_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _profile_number(value: Any) -> float:
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return np.nan


# --------------------------------------------------------------------------- scoring


class Scorer:
    """Scores requests with one model's ``Predictor``; built once per loaded model."""

    def __init__(self, predictor: Predictor, *, name: str, version: str) -> None:
        model = predictor.model
        self.predictor = predictor
        self.name = name
        self.version = version
        self.feature_settings = model.build_settings
        self.profile_columns = tuple(self.feature_settings.profile_columns or ())
        self.categorical_profile = {
            c[len("profile_") :] for c in model.categories if c.startswith("profile_")
        }
        # Fields the model was trained on almost always having: a customer lacking one is
        # warned about (model.schema), with the same words each time.
        self.warned = {field.name: field.warning() for field in warned_fields(model.input_schema)}
        # Built now, when the model is loaded, not on the first request.
        self.attributions = predictor.attributions
        self.explainer = predictor.explainer

    def feature_arrays(
        self, customers: Sequence[Customer] | RequestColumns, as_of: dt.date
    ) -> FeatureArrays:
        customer_table, interaction_table = table_columns(
            customers, self.profile_columns, self.categorical_profile
        )
        return build_feature_arrays(
            customer_table, interaction_table, pd.Timestamp(as_of), self.feature_settings
        )

    def features(self, customers: Sequence[Customer], as_of: dt.date) -> pd.DataFrame:
        return self.feature_arrays(customers, as_of).frame()

    def checked_columns(self, customers: Sequence[Customer], as_of: dt.date) -> RequestColumns:
        """The request's columns; ``RequestProblems`` when it breaks a rule across rows."""
        columns = RequestColumns.read(customers)
        problems = check_rows(customers, as_of, columns)
        if problems:
            raise RequestProblems(problems)
        return columns

    def model_input(
        self, arrays: FeatureArrays, ids: list[str]
    ) -> tuple[np.ndarray | pd.DataFrame, pd.DataFrame | Callable[[str], np.ndarray]]:
        """The booster's input for the request's customers in request order, and their
        feature values for the reasons (a DataFrame, or a column getter)."""
        if self.predictor.matrix_ok and len(arrays.rows) == len(ids):
            # Every customer is active (checked before): the rows are the request's, in order.
            return self.predictor.matrix_of(arrays), arrays.column
        features = arrays.frame()
        features = features.reindex(pd.Index(ids, dtype=features.index.dtype))
        return self.predictor.matrix(features), features

    def warnings(self, columns: RequestColumns) -> list[list[dict[str, str]]]:
        """Per customer, in request order, a warning for each ``warned`` field it lacks
        (absent or null). The score treats the missing value as training did."""
        found: list[list[dict[str, str]]] = [[] for _ in columns.customers]
        for name, warning in self.warned.items():
            if name in columns.customer:  # a declared field: segment, plan, monthly_revenue
                values = columns.customer[name]
            else:
                values = [(c.model_extra or {}).get(name) for c in columns.customers]
            for row, value in enumerate(values):
                if value is None:
                    found[row].append(warning)
        return found

    def results(
        self,
        ids: list[str],
        prediction: Prediction,
        as_of: dt.date,
        warnings: list[list[dict[str, str]]] | None = None,
    ) -> list[dict[str, Any]]:
        """One answer per customer, in request order (``CustomerScore``'s fields)."""
        day = as_of.isoformat()
        warnings = warnings or [[] for _ in ids]
        curves = _curves(self.predictor, prediction, len(ids))
        return [
            {
                "customer_id": customer_id,
                "churn_probability": p,
                "risk_band": band,
                "thin_history": thin,
                "reasons": why,
                "warnings": lacks,
                "action": next_step([r["family"] for r in why], band),
                "horizons": curve,
                "model_name": self.name,
                "model_version": self.version,
                "as_of": day,
            }
            for customer_id, p, band, thin, why, lacks, curve in zip(
                ids,
                prediction.probability.tolist(),
                prediction.band.tolist(),
                _thin(prediction),
                prediction.reasons or [],
                warnings,
                curves,
                strict=True,
            )
        ]

    def score(
        self, customers: Sequence[Customer], as_of: dt.date, *, top: int = REASONS_PER_CUSTOMER
    ) -> list[dict[str, Any]]:
        """Scores with reasons, one per customer in request order.

        The steps are methods of their own so that ``benchmarks.serving_bench
        --profile-cpu`` can time each of them."""
        columns = self.checked_columns(customers, as_of)
        arrays = self.feature_arrays(columns, as_of)
        ids = list(columns.customer["customer_id"])
        x, values = self.model_input(arrays, ids)
        prediction = self.predictor.explain(x, values, top=top)
        return self.results(ids, prediction, as_of, self.warnings(columns))


def _curves(predictor: Predictor, prediction: Prediction, rows: int) -> list[Any]:
    """Per customer ``{"<H>": p}`` over the model's horizons, or None without them."""
    if prediction.curve is None or predictor.model.horizons is None:
        return [None] * rows
    keys = [str(h) for h in predictor.model.horizons.horizons]
    return [dict(zip(keys, row, strict=True)) for row in prediction.curve.tolist()]


def _thin(prediction: Prediction) -> list[bool]:
    """``prediction.thin_history`` as a list (all False when the model cannot tell)."""
    if prediction.thin_history is None:
        return [False] * len(prediction.probability)
    return prediction.thin_history.tolist()
