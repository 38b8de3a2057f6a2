"""The scoring service for CRM systems: one BentoML service, ``ChurnService``.

Run it with ``churnml serve [--port P]`` (or ``bentoml serve serving.service:ChurnService``).
Endpoints: ``POST /score``, ``POST /score_ids``, ``GET /model``, ``POST /admin/reload``,
``GET /risk-list``, ``GET /risk-list.csv``, the retention team's page at ``/``, and
BentoML's ``/healthz``, ``/livez``, ``/readyz``, ``/metrics``. See ``docs/serving.md``.

The model is loaded once per worker in ``__init__`` (``serving.loading``); each API method
is thin: validate (pydantic, then ``serving.scoring.check_rows``), build features, score,
wrap. ``/admin/reload`` loads the current champion in a thread and swaps it in with one
assignment: a request in flight keeps the model it started with. Other worker processes
follow through a small file under ``CHURNML_HOME/serving/`` that they check at most once
a second.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import bentoml
from fastapi import Depends, FastAPI, Query
from pydantic import Field
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse

from churnml.errors import ChurnmlError
from serving import error_log, limits, metrics_labels, openapi_errors, timeouts
from serving.auth import AuthMiddleware, KeyRing
from serving.list_schemas import RiskListPage, ScoreIdsResponse
from serving.lists import Filters, Lists, NoList
from serving.loading import ServedModel, load_served_model
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
FOLLOW_EVERY_SECONDS = 1.0
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
        self._follow_at = 0.0
        self._follow_mtime = self._signal_mtime()
        self._following: asyncio.Task | None = None
        try:
            self.served: ServedModel = load_served_model(
                self.settings.model_uri, self.settings.tracking_uri
            )
        except ChurnmlError as error:
            _cannot_start(error)
        log.info(
            "serving %s version %s (%s)", self.served.name, self.served.version, self.served.uri
        )
        self.lists = Lists(self.settings.home, self.settings.risk_store)
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
        self._follow_reloads()
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
        """The same rows as ``GET /risk-list``, as a CSV file (reasons as text columns)."""
        try:
            name, text = await asyncio.to_thread(self.lists.csv, filters, limit)
        except NoList as error:
            return _problem_response(error.status, str(error), [])
        return PlainTextResponse(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @info_app.get("/", include_in_schema=False)
    async def page(self) -> FileResponse:
        """The retention team's page (it holds no data: it asks for a key, then calls the API)."""
        return FileResponse(PAGE / "index.html", media_type="text/html; charset=utf-8")

    @info_app.get("/ui/{name}", include_in_schema=False)
    async def page_file(self, name: str) -> FileResponse:
        if name not in PAGE_FILES:
            return _problem_response(404, f"no file {name!r}", [])
        return FileResponse(PAGE / name, media_type=PAGE_FILES[name])

    @info_app.get("/model", response_model=ModelInfo, tags=["Service APIs"])
    async def model(self) -> ModelInfo:
        """The model being served: name, version, alias, training date, test metrics, features."""
        self._follow_reloads()
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
    def _signal_path(self) -> Path:
        key = hashlib.sha256(
            f"{self.settings.tracking_uri}|{self.settings.model_uri}".encode()
        ).hexdigest()[:16]
        return self.settings.home / "serving" / f"reload-{key}.json"

    def _signal_mtime(self) -> float:
        try:
            return self._signal_path().stat().st_mtime
        except OSError:
            return 0.0

    def _signal(self, version: str) -> None:
        path = self._signal_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"version": version, "pid": os.getpid(), "at": time.time()}))
            self._follow_mtime = path.stat().st_mtime
        except OSError as error:
            log.warning("reload: other workers not told (%s)", error)

    def _follow_reloads(self) -> None:
        now = time.monotonic()
        if now < self._follow_at:
            return
        self._follow_at = now + FOLLOW_EVERY_SECONDS
        mtime = self._signal_mtime()
        if mtime == self._follow_mtime or (self._following and not self._following.done()):
            return
        self._follow_mtime = mtime
        self._following = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        async with self._lock:
            try:
                new = await asyncio.to_thread(
                    load_served_model, self.settings.model_uri, self.settings.tracking_uri
                )
            except ChurnmlError as error:
                log.warning("reload in another worker; this one keeps its model: %s", error)
                return
            self.served = new
            _freeze_heap()


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
