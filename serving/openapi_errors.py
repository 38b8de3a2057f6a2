"""The error answers of the BentoML APIs (``/score``, ``/score_ids``, ``/admin/reload``), as
the published OpenAPI spec describes them.

BentoML documents 400, 404 and 500 for every API with its own error schema, whose
``detail`` is a string; its own 400s, and every error this service answers, carry
``{"error": str, "detail": [{loc, msg, type}, ...]}`` (``serving.schemas.ErrorResponse``),
and the key gate, the body limits and the list store add statuses BentoML does not list.
schemathesis found the spec contradicting the answers. ``install()`` makes BentoML's table of
error responses (one for all its APIs) say what the service answers; the service module
calls it when it is imported, before any spec is built.
"""

from __future__ import annotations

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
    503: "The risk-list store cannot be read for now; the message says what to do.",
    504: "No answer within the service's timeout.",
}


def install() -> None:
    from _bentoml_sdk.service import openapi
    from bentoml._internal.service.openapi.specification import MediaType, Reference, Response

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
