"""Bounded ``endpoint`` labels for BentoML's request metrics.

BentoML's traffic metrics middleware sits outside the key check and labels every series by
the raw request path, so each distinct path, even one answered 401, became new series that
stayed for the life of the worker: 20,000 random paths took a worker from 408 to 918 MB and
``/metrics`` from 56 KB to 83 MB. Here the label is the route's template (``/ui/{name}``)
for the service's own routes, and one label, ``UNKNOWN``, for every other path; the app
behind still sees the request's real path.

BentoML offers no option for the label (its docs list ``metrics.enabled``, ``namespace`` and
the duration buckets only) and imports ``RunnerTrafficMetricsMiddleware`` from its
``instruments`` module when it builds the app in each worker, so ``install()`` puts a
subclass there. The service module calls it when it is imported, before any app is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

UNKNOWN = "/{unknown}"

# BentoML's own routes (probes, metrics, the spec and its page's static files).
BENTOML_ROUTES = (
    "/",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/docs.json",
    "/schema.json",
    "/static_content/{path:path}",
)


class RouteLabels:
    """Maps a request path to a bounded label: a known route's template, else ``UNKNOWN``."""

    def __init__(self, templates: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for template in templates:
            if "{" in template:
                self.patterns.append((_compile(template), template))
            else:
                self.exact.add(template)

    def label(self, path: str) -> str:
        if path in self.exact:
            return path
        for pattern, template in self.patterns:
            if pattern.fullmatch(path):
                return template
        return UNKNOWN


def _compile(template: str) -> re.Pattern[str]:
    """``/ui/{name}`` matches one segment; ``/static/{path:path}`` matches the rest."""
    parts = re.split(r"(\{[^}]+\})", template)
    regex = ""
    for part in parts:
        if part.startswith("{"):
            regex += ".*" if part.endswith(":path}") else "[^/]+"
        else:
            regex += re.escape(part)
    return re.compile(regex)


class _RealPath:
    """Gives the app behind the metrics middleware the request's real path back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        real = scope.get("churnml.real_path")
        if real is not None:
            scope = {**scope, "path": real}
            del scope["churnml.real_path"]
        await self.app(scope, receive, send)


def route_labelled(base: type, labels: RouteLabels) -> type:
    """A subclass of BentoML's metrics middleware that sees the label as the path."""

    class RouteLabelledMetrics(base):  # type: ignore[misc,valid-type]
        def __init__(self, app: Any, **options: Any) -> None:
            super().__init__(_RealPath(app), **options)

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket"):
                label = labels.label(scope["path"])
                if label != scope["path"]:
                    scope = {**scope, "path": label, "churnml.real_path": scope["path"]}
            await super().__call__(scope, receive, send)

    return RouteLabelledMetrics


def paths_of(routes: Iterable[Any]) -> list[str]:
    """The path templates of Starlette/FastAPI routes, into included routers too."""
    found: list[str] = []
    for route in routes:
        if isinstance(getattr(route, "path", None), str):
            found.append(route.path)
        inner = getattr(route, "original_router", None) or getattr(route, "routes", None)
        if inner is not None:
            found += paths_of(getattr(inner, "routes", inner))
    return found


def install(routes: Iterable[str]) -> None:
    """Label BentoML's request metrics by these route templates (and BentoML's own)."""
    from bentoml._internal.server.http import instruments

    base = getattr(instruments.RunnerTrafficMetricsMiddleware, "churnml_base", None)
    base = base or instruments.RunnerTrafficMetricsMiddleware
    labelled = route_labelled(base, RouteLabels([*BENTOML_ROUTES, *routes]))
    labelled.churnml_base = base  # installing twice wraps BentoML's class once
    instruments.RunnerTrafficMetricsMiddleware = labelled
