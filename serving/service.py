"""The scoring service for CRM systems: one BentoML service, ``ChurnService``.

Run it with ``churnml serve [--port P]`` (or ``bentoml serve serving.service:ChurnService``).
Endpoints: ``POST /score``, ``POST /score_ids``, ``GET /model``, ``POST /admin/reload``,
``GET /risk-list``, ``GET /risk-list.csv``, ``GET /risk-list/customer`` (one customer's
detail), ``POST /retention-contacts`` (the team's picks and outcomes from the CRM),
``GET /report`` (how past lists did), the retention team's page at ``/``, and
BentoML's ``/healthz``, ``/livez``, ``/readyz``, ``/metrics``. See ``docs/serving.md``.

The model is loaded once per worker in ``__init__`` (``serving.loading``); each API method
is thin: validate (pydantic, then ``serving.scoring.check_rows``), build features, score,
wrap. ``/admin/reload`` loads the current champion in a thread and swaps it in with one
assignment: a request in flight keeps the model it started with. The reload names the
version it loaded in a small file under ``CHURNML_HOME/serving/`` (the signal); every other
worker of the same ``churnml serve`` loads that version (``models:/NAME/VERSION``, not the
alias again) as soon as it sees the file change: a poller looks every
``FOLLOW_EVERY_SECONDS``, and a request that finds a newer version named waits for it, so
every answer after a reload comes from the version it named (``model_version`` says which).
A worker that (re)starts during a serve loads the version the signal names, if any.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import gc
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import bentoml
import pandas as pd
from fastapi import Depends, FastAPI, Query
from pydantic import Field
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse

from churnml.contract import DEFAULT_HORIZON_DAYS
from churnml.errors import ChurnmlError
from serving import error_log, limits, metrics_labels, openapi_errors, timeouts
from serving.auth import AuthMiddleware, KeyRing
from serving.list_schemas import CustomerDetail, RiskListPage, ScoreIdsResponse
from serving.lists import Filters, Lists, NoList
from serving.loading import ServedModel, load_served_model
from serving.outcome_schemas import MAX_CONTACTS, Report, RetentionContact, StoredResponse
from serving.outcomes import Outcomes, breach_field, checked_contacts
from serving.schemas import (
    MAX_CUSTOMERS,
    Customer,
    Day,
    ErrorResponse,
    ModelInfo,
    ReloadResponse,
    ScoreResponse,
)
from serving.scoring import RequestProblems
from serving.settings import SERVICE_NAME, ServingSettings

log = logging.getLogger("churnml.serving")
FOLLOW_EVERY_SECONDS = 0.2  # how often an idle worker looks for a reload
MAX_PAGE = 1000
PAGE = Path(__file__).resolve().parent / "page"
PAGE_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


# The collector's first generation runs after 700 net new container objects by default:
# ~10 times per 100-customer request (~1 ms of its CPU), to find no garbage (a request's
# objects are freed by reference counting). 10,000 lets a request run without one.
GC_THRESHOLDS = (10_000, 10, 10)


def _freeze_heap() -> None:
    """Move the objects alive now (libraries, the model: ~400,000) out of the collector's
    reach. Without it, each full collection scanned them all and stalled a request for
    130-250 ms about every 15 batch requests: the p99 spikes of BentoML services in
    shared/perf-facts.md. After a reload the old model's objects are unfrozen and collected
    first (one such pause per reload)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _cannot_start(error: ChurnmlError) -> NoReturn:
    log.error("churnml serve: cannot start: %s", error)
    raise SystemExit(f"churnml serve: cannot start: {error}") from None


def _problem_response(status: int, error: str, detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


# Errors of the CSV endpoint are JSON, not its text/csv (FastAPI would document them so).
_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}

# GET endpoints live on a small FastAPI app mounted at the root (BentoML APIs are POST only);
# BentoML merges its OpenAPI into the service's spec.
info_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


# No worker count here: the module reads nothing at import. ``churnml serve`` validates
# ``ServingSettings.workers`` and hands it to BentoML (``ServingSettings.process_environment``).
@bentoml.service(
    name=SERVICE_NAME,
    traffic={"timeout": 60},
    # Access logs cost ~1 ms a request and hold nothing a caller needs; keys are never logged.
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(info_app, path="/")
class ChurnService:
    """Churn risk with reasons for customers sent by CRM systems."""

    def __init__(self) -> None:
        try:  # the settings are read when the service starts, never at import
            self.settings = ServingSettings.from_env()
        except ChurnmlError as error:
            _cannot_start(error)
        error_log.install()
        self._lock = asyncio.Lock()
        # The workers of one `churnml serve` share their parent (BentoML's arbiter): a signal
        # written in this run names the version every worker serves, a restarted one too.
        self._run = os.getppid()
        self._failed: str | None = None
        self._following: asyncio.Task | None = None
        self._poller: asyncio.Task | None = None
        try:
            self.served: ServedModel = self._load_at_start()
        except ChurnmlError as error:
            _cannot_start(error)
        log.info(
            "serving %s version %s (%s)", self.served.name, self.served.version, self.served.uri
        )
        self.lists = Lists(
            self.settings.home,
            self.settings.risk_store,
            grace_days=self.settings.freshness_grace_days,
        )
        self.outcomes = Outcomes(self.lists, self.settings.core.customers)
        _freeze_heap()
        gc.set_threshold(*GC_THRESHOLDS)

    # -- endpoints ---------------------------------------------------------------------------
    @bentoml.api(route="/score")
    async def score(
        self,
        customers: Annotated[
            list[Customer],
            Field(
                min_length=1,
                max_length=MAX_CUSTOMERS,
                description=f"The customers to score, 1 to {MAX_CUSTOMERS}, each with its "
                "profile and its service contacts.",
            ),
        ],
        as_of: Annotated[
            Day | None,
            Field(description="The day to score as of (YYYY-MM-DD); default: today (UTC)."),
        ] = None,
    ) -> ScoreResponse:
        """Calibrated churn probability, risk band, top 3 reasons and a next step per customer."""
        await self._follow_reloads()
        served = self.served  # this request keeps this model, whatever a reload does
        day = as_of or dt.datetime.now(dt.UTC).date()
        try:
            scores = served.scorer.score(customers, day)
        except RequestProblems as problems:
            return _problem_response(422, str(problems), [p.as_dict() for p in problems.problems])
        except ChurnmlError as error:
            return _problem_response(422, str(error), [])
        return ScoreResponse.model_validate({"scores": scores})

    @bentoml.api(route="/score_ids")
    async def score_ids(
        self,
        customer_ids: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=200)]],
            Field(
                min_length=1,
                max_length=MAX_CUSTOMERS,
                description="Customer ids to answer from the latest daily risk list.",
            ),
        ],
    ) -> ScoreIdsResponse:
        """Scores of known customers from the latest daily risk list (no contacts needed).

        Ids the latest list does not hold are returned in ``not_found``; with no list stored
        yet the answer is 404.
        """
        try:
            found = await asyncio.to_thread(self.lists.scores, customer_ids)
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return ScoreIdsResponse.model_validate(found)

    @info_app.get(
        "/risk-list",
        response_model=RiskListPage,
        tags=["Risk lists"],
        responses={
            404: {"model": ErrorResponse, "description": "No list for that day."},
            503: {"model": ErrorResponse, "description": "The store cannot be read for now."},
        },
    )
    async def risk_list(
        self,
        filters: Annotated[Filters, Depends(list_filters)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")] = 100,
    ) -> RiskListPage:
        """A page of a day's risk list: rows in rank order, changes, departures, drift."""
        try:
            page = await asyncio.to_thread(self.lists.page, filters, limit)
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return RiskListPage.model_validate(page)

    @info_app.get(
        "/risk-list.csv",
        tags=["Risk lists"],
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/csv": {}}, "description": "The matching rows as CSV."},
            404: {"content": _ERROR_JSON, "description": "No list for that day."},
            503: {"content": _ERROR_JSON, "description": "The store cannot be read for now."},
        },
    )
    async def risk_list_csv(
        self,
        filters: Annotated[Filters, Depends(list_filters)],
        limit: Annotated[
            int | None,
            Query(ge=1, le=MAX_PAGE, description="Rows at most; default: all that match."),
        ] = None,
    ) -> PlainTextResponse:
        """The same rows as ``GET /risk-list``, as a CSV file: the columns, order and
        rounding of ``churnml risk-list --out`` (``scope=all`` for everyone scored)."""
        try:
            name, text = await asyncio.to_thread(
                self.lists.csv, filters, limit, self.settings.currency
            )
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return PlainTextResponse(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @info_app.get(
        "/risk-list/customer",
        response_model=CustomerDetail,
        tags=["Risk lists"],
        responses={
            401: {"model": ErrorResponse, "description": "No API key, or an unknown one."},
            404: {
                "model": ErrorResponse,
                "description": "No list for that day, or the list does not hold the customer.",
            },
            503: {"model": ErrorResponse, "description": "The store cannot be read for now."},
        },
    )
    async def risk_list_customer(
        self,
        customer_id: Annotated[
            str,
            Query(
                alias="id",
                min_length=1,
                max_length=200,
                description="The customer's id, as on the list.",
            ),
        ],
        date: Annotated[
            dt.date | None,
            Query(description="The list's day (YYYY-MM-DD); default: the latest."),
        ] = None,
    ) -> CustomerDetail:
        """One customer on a day's list: the contacts and cases behind each reason, the
        probability over the last lists, the suggested action and the team's contacts."""
        day = date.isoformat() if date else None
        try:
            detail = await asyncio.to_thread(self.lists.customer, customer_id, day)
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return CustomerDetail.model_validate(detail)

    @bentoml.api(route="/retention-contacts")
    async def retention_contacts(
        self,
        contacts: Annotated[
            list[RetentionContact],
            Field(
                min_length=1,
                max_length=MAX_CONTACTS,
                description=f"The team's picks and outcomes, 1 to {MAX_CONTACTS}: whom it "
                "picked from a list on which day, treated or control, and what happened.",
            ),
        ],
    ) -> StoredResponse:
        """Store the retention team's picks and outcomes (the CRM reports them).

        Checked by the contract's rules for the table (a date, known group, outcome and
        channel, a control row's promise, also against the contacts stored before, one row
        per customer, day and group): any broken
        rule answers 422 naming the row (``contacts[i]``) and the field, and nothing is
        stored. The same customer, day and group sent again updates its outcome and channel.
        """
        raw = pd.DataFrame([c.model_dump() for c in contacts])
        try:
            stored = await asyncio.to_thread(
                self.outcomes.stored_of, [c.customer_id for c in contacts]
            )
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        checked, breaches = checked_contacts(
            raw,
            "contacts",
            customers=None,
            customers_source="",
            horizon_days=DEFAULT_HORIZON_DAYS,
            stored=stored,
        )
        if breaches:
            detail = [
                {
                    "loc": ["contacts", int(row), *([field] if field else [])],
                    "msg": breach.message(),
                    "type": breach.rule,
                }
                for breach in breaches
                for field in [breach_field(breach)]
                for row in breach.rows[:3]
            ]
            summary = "; ".join(b.message() for b in breaches)
            return _problem_response(422, f"nothing stored: {summary}", detail)
        try:
            counts = await asyncio.to_thread(self.outcomes.store, checked)
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return StoredResponse(
            stored=counts.stored, new=counts.new, updated=counts.updated, unchanged=counts.unchanged
        )

    @info_app.get(
        "/report",
        response_model=Report,
        tags=["Risk lists"],
        responses={
            401: {"model": ErrorResponse, "description": "No API key, or an unknown one."},
            404: {"model": ErrorResponse, "description": "No list is stored yet."},
            503: {
                "model": ErrorResponse,
                "description": "The store or the customers table cannot be read for now.",
            },
        },
    )
    async def report(
        self,
        as_of: Annotated[
            Day | None,
            Query(
                description="The day to report as of (YYYY-MM-DD); default: the latest day "
                "the customers table and the lists know."
            ),
        ] = None,
        horizon: Annotated[
            int | None,
            Query(
                ge=1,
                le=3650,
                description="Days after a list's day its outcomes count; "
                "default: the list's own horizon, else 30.",
            ),
        ] = None,
    ) -> Report:
        """How each stored list did: churn among treated against control picks with a 95%
        interval, customers and revenue kept, precision at K, predicted against realised
        churn per band; lists inside their horizon are pending (estimates only)."""
        try:
            found = await asyncio.to_thread(self.outcomes.report, as_of, horizon)
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return Report.model_validate(found)

    @info_app.get("/", include_in_schema=False)
    async def page(self) -> FileResponse:
        """The retention team's page (it holds no data: it asks for a key, then calls the API)."""
        return FileResponse(PAGE / "index.html", media_type="text/html; charset=utf-8")

    @info_app.get("/ui/{name}", include_in_schema=False)
    async def page_file(self, name: str) -> FileResponse:
        if name not in PAGE_FILES:
            return _problem_response(404, f"no file {name!r}", [])
        return FileResponse(PAGE / name, media_type=PAGE_FILES[name])

    @info_app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(self) -> JSONResponse:
        """The published OpenAPI spec (``serving.openapi_errors``), as ``/docs.json``."""
        return JSONResponse(ChurnService.openapi_spec.asdict())

    @info_app.get("/model", response_model=ModelInfo, tags=["Service APIs"])
    async def model(self) -> ModelInfo:
        """The model being served: name, version, alias, training date, test metrics, features."""
        await self._follow_reloads()
        return ModelInfo.model_validate(self.served.info)

    @bentoml.api(route="/admin/reload")
    async def reload(self) -> ReloadResponse:
        """Load the current model of the configured URI (the champion) and swap it in.

        Needs an admin key. Requests in flight finish on the old model. When the load fails,
        the old model keeps serving and the answer (409) says why.
        """
        async with self._lock:
            old = self.served
            try:
                new = await asyncio.to_thread(
                    load_served_model, self.settings.model_uri, self.settings.tracking_uri
                )
            except ChurnmlError as error:
                body = ReloadResponse(
                    reloaded=False,
                    message=f"kept version {old.version}: {error}",
                    model=ModelInfo.model_validate(old.info),
                )
                return JSONResponse(body.model_dump(mode="json"), status_code=409)
            self.served = new
            self._signal(new.version)
        message = (
            f"now serving version {new.version} (was {old.version})"
            if new.version != old.version
            else f"reloaded version {new.version} (unchanged)"
        )
        log.info("reload: %s", message)
        del old  # its objects are collected, not frozen, by:
        _freeze_heap()
        return ReloadResponse(
            reloaded=True, message=message, model=ModelInfo.model_validate(new.info)
        )

    # -- other workers follow a reload -------------------------------------------------------
    @bentoml.on_startup
    async def _start_polling(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    @bentoml.on_shutdown
    async def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()

    async def _poll(self) -> None:
        """Load a version another worker's reload named without waiting for a request."""
        while True:
            await asyncio.sleep(FOLLOW_EVERY_SECONDS)
            self._look_at_signal()

    async def _follow_reloads(self) -> None:
        """Before a request: if a reload named another version, wait until it is loaded (or
        failed to load, then this worker keeps its model and says so in each answer)."""
        self._look_at_signal()
        if self._following is not None and not self._following.done():
            await asyncio.shield(self._following)

    def _look_at_signal(self) -> None:
        mtime = self._signal_mtime()  # one stat(): cheap enough for every request
        if mtime != self._follow_mtime:
            self._follow_mtime = mtime
            self._named = self._read_signal().get("version") or self._named
            self._failed = None  # a new reload of a version that failed: try it again
        behind = self._named not in (None, self.served.version, self._failed)
        if behind and (self._following is None or self._following.done()):
            self._following = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        async with self._lock:
            while (named := self._named) not in (None, self.served.version, self._failed):
                try:
                    new = await asyncio.to_thread(
                        load_served_model,
                        self.settings.model_uri,
                        self.settings.tracking_uri,
                        version=named,
                    )
                except ChurnmlError as error:
                    log.warning(
                        "reload in another worker named version %s; this worker keeps version"
                        " %s: %s",
                        named,
                        self.served.version,
                        error,
                    )
                    self._failed = named
                    return
                self.served = new
                log.info("now serving version %s (a reload in another worker)", new.version)
                _freeze_heap()

    def _load_at_start(self) -> ServedModel:
        """The version this run's workers serve: the one a worker of this run named, else the
        champion, loaded and named by the first worker under an exclusive lock, so that a
        worker starting while the alias moves still serves what the others serve."""
        path = self._signal_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as error:
            log.warning("start: other workers not told (%s)", error)
            lock = None
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            self._follow_mtime = self._signal_mtime()
            signal = self._read_signal()
            self._named = signal.get("version") if signal.get("run") == self._run else None
            if self._named is None:  # the first worker of this run: load and name
                served = load_served_model(self.settings.model_uri, self.settings.tracking_uri)
                self._signal(served.version)
                return served
        finally:
            if lock is not None:
                os.close(lock)  # releases the lock
        return load_served_model(
            self.settings.model_uri, self.settings.tracking_uri, version=self._named
        )

    def _signal_path(self) -> Path:
        key = hashlib.sha256(
            f"{self.settings.tracking_uri}|{self.settings.model_uri}".encode()
        ).hexdigest()[:16]
        return self.settings.home / "serving" / f"reload-{key}.json"

    def _signal_mtime(self) -> tuple[int, int]:
        """The signal's identity: each write replaces the file, so a new inode or time."""
        try:
            stat = self._signal_path().stat()
        except OSError:
            return (0, 0)
        return (stat.st_ino, stat.st_mtime_ns)

    def _read_signal(self) -> dict[str, Any]:
        try:
            signal = json.loads(self._signal_path().read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(signal, dict) or not str(signal.get("version", "")).isdigit():
            return {}
        return {**signal, "version": str(signal["version"])}

    def _signal(self, version: str) -> None:
        """Name ``version`` to every worker of this run (written whole, then renamed)."""
        path = self._signal_path()
        body = {"version": version, "run": self._run, "pid": os.getpid(), "at": time.time()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(f"{path.name}.{os.getpid()}.part")
            part.write_text(json.dumps(body))
            os.replace(part, path)
            self._follow_mtime = self._signal_mtime()
            self._named = version
        except OSError as error:
            log.warning("reload: other workers not told (%s)", error)


def list_filters(
    date: Annotated[
        dt.date | None, Query(description="The list's day (YYYY-MM-DD); default: the latest.")
    ] = None,
    band: Annotated[
        Literal["high", "medium", "low"] | None, Query(description="Only this risk band.")
    ] = None,
    segment: Annotated[str | None, Query(max_length=200, description="Only this segment.")] = None,
    customer: Annotated[
        str | None, Query(max_length=200, description="Only customer ids containing this text.")
    ] = None,
    scope: Annotated[
        Literal["list", "all"],
        Query(description="list: the customers within capacity; all: everyone scored."),
    ] = "list",
    offset: Annotated[int, Query(ge=0, le=10**9, description="Rows to skip.")] = 0,
) -> Filters:
    """The query parameters shared by ``GET /risk-list`` and ``GET /risk-list.csv``."""
    return Filters(date.isoformat() if date else None, band, segment, customer, scope, offset)


def _gate_options() -> dict[str, Any]:
    settings = ServingSettings.from_env()
    keys = KeyRing(settings.api_keys, settings.admin_keys) if settings.auth else None
    return {"keys": keys, "max_body_bytes": settings.max_body_bytes}


class _LazyGate:
    """Builds the AuthMiddleware when BentoML builds the app (at start), not at import."""

    def __init__(self, app: Any) -> None:
        self.gate = AuthMiddleware(app, **_gate_options())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.gate(scope, receive, send)


ChurnService.add_asgi_middleware(_LazyGate)
ChurnService.add_asgi_middleware(limits.JsonOnly)
# These must be in place before BentoML builds a worker's server (see their modules).
limits.install()
timeouts.install()
openapi_errors.install()
metrics_labels.install(
    [api.route for api in ChurnService.apis.values()] + metrics_labels.paths_of(info_app.routes)
)
