"""A caller's mistake is one WARNING line in the log, never a traceback or the request.

BentoML logs every body it cannot validate as an ERROR with the whole traceback, and
pydantic's message in it quotes the values it refused (customer ids, profile values).
``CallerMistakes``, a filter on that logger, turns such a record into one line with the
status, the method, the path and the fields, and keeps real errors (5xx) as they were.
"""

from __future__ import annotations

import logging

BENTOML_LOGGER = "bentoml._internal.server.http_app"
MAX_FIELDS = 5


def _fields(error: BaseException) -> str:
    """The refused fields and why, by location and pydantic's error type: no values."""
    found = [
        f"{'.'.join(map(str, e['loc'])) or '(body)'} ({e['type']})"
        for e in error.errors(include_input=False, include_context=False, include_url=False)
    ]
    more = f" and {len(found) - MAX_FIELDS} more" if len(found) > MAX_FIELDS else ""
    return ", ".join(found[:MAX_FIELDS]) + more


def _status(error: BaseException) -> int | None:
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return 400
    code = getattr(getattr(error, "error_code", None), "value", None)
    return code if isinstance(code, int) and code < 500 else None


class CallerMistakes(logging.Filter):
    """Rewrites the ERROR-with-traceback of a 4xx into one WARNING line; lets others pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = None if error is None else _status(error)
        if status is None:
            return True
        path, method = (record.args or ("?", "?"))[:2]  # "Exception on %s [%s]"
        why = _fields(error) if status == 400 else type(error).__name__
        record.msg = "%s %s %s: %s"
        record.args = (status, method, path, why)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install() -> None:
    """Add the filter to BentoML's request logger (once; called when a worker starts)."""
    logger = logging.getLogger(BENTOML_LOGGER)
    if not any(isinstance(f, CallerMistakes) for f in logger.filters):
        logger.addFilter(CallerMistakes())
