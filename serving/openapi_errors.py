"""The published OpenAPI spec (``GET /openapi.json``, also ``/docs.json`` and the ``/docs``
page): usable as is by a client generator, with the service's name and version in ``info``,
a ``bearer`` security scheme on every operation that needs a key, and the error answers
each operation can give.

BentoML documents 400, 404 and 500 for every API with its own error schema, whose
``detail`` is a string; its own 400s, and every error this service answers, carry
``{"error": str, "detail": [{loc, msg, type}, ...]}`` (``serving.schemas.ErrorResponse``),
and the key gate, the body limits and the list store add statuses BentoML does not list.
schemathesis found the spec contradicting the answers. ``install()`` makes BentoML's table of
error responses (one for all its APIs) say what the service answers; the service module
calls it when it is imported, before any spec is built. It also wraps BentoML's spec
generator so that every spec it builds is ``published``: BentoML's own ``info`` (its
version "None", its team as contact) becomes the service's, every operation but the open
probes gets the ``bearer`` scheme and the 401, 403, 413, 422 and 503 answers the key gate,
the body limits, validation and the store can give.
"""

from __future__ import annotations

from typing import Any

from churnml import __version__

ERROR_SCHEMA = "#/components/schemas/ErrorResponse"  # from the mounted FastAPI app
ERRORS = {
    400: "The body is not valid JSON or does not fit the schema; detail names the fields.",
    401: "No API key, or an unknown one.",
    403: "The key may not call this endpoint (admin endpoints need an admin key).",
    404: "Nothing to answer from (for /score_ids: no daily risk list is stored yet).",
    409: "The reload failed; the old model keeps serving (for /admin/reload).",
    413: "The body is over the configured limit (CHURNML_MAX_BODY_BYTES).",
    415: "The body is not application/json.",
    422: "The customers or their contacts break the data contract; detail names them.",
    429: "Too many requests at once.",
    500: "An unexpected error; the server log says more.",
    503: "The service cannot answer for now (the risk-list store cannot be read, or the "
    "service is not ready); the message says what to do.",
    504: "No answer within the service's timeout.",
}


# Open to anyone (serving.auth.OPEN_PATHS): probes and Prometheus.
OPEN_OPERATIONS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})
# What every operation behind the key gate can answer besides its own statuses.
GATED = (401, 403, 413, 422, 503)
SCHEME = "bearer"
TITLE = "churnml"
DESCRIPTION = (
    "Churn risk with reasons for customers sent by CRM systems, and the daily risk lists. "
    "Every operation but the probes and /metrics needs an API key as "
    "`Authorization: Bearer KEY` (CHURNML_API_KEYS; /admin/reload: CHURNML_ADMIN_KEYS)."
)


def published(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's spec (as a dict) as the service publishes it; see the module."""
    spec["info"] = {"title": TITLE, "version": __version__, "description": DESCRIPTION}
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the service (at least 16 characters).",
    }
    for path, item in spec.get("paths", {}).items():
        if path in OPEN_OPERATIONS:
            continue
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operation["security"] = [{SCHEME: []}]
            responses = operation.setdefault("responses", {})
            for status in GATED:
                responses.setdefault(
                    str(status),
                    {
                        "description": ERRORS[status],
                        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}},
                    },
                )
    return spec


class _Published:
    """BentoML's spec object, whose ``asdict()`` (what ``/docs.json`` serves) is
    ``published``."""

    def __init__(self, spec: Any) -> None:
        self._spec = spec

    def asdict(self) -> dict[str, Any]:
        return published(self._spec.asdict())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spec, name)


def install() -> None:
    from _bentoml_sdk.service import openapi
    from bentoml._internal.service.openapi.specification import MediaType, Reference, Response

    if not getattr(openapi.generate_spec, "churnml_published", False):
        generate = openapi.generate_spec

        def generate_spec(*args: Any, **kwargs: Any) -> _Published:
            return _Published(generate(*args, **kwargs))

        generate_spec.churnml_published = True  # type: ignore[attr-defined]
        openapi.generate_spec = generate_spec

    openapi.error_responses.clear()
    openapi.error_responses.update(
        {
            status: Response(
                description=description,
                content={"application/json": MediaType(schema=Reference(ERROR_SCHEMA))},
            )
            for status, description in ERRORS.items()
        }
    )
