"""Limits on a request's head, enforced while uvicorn reads it, before any ASGI code runs.

A request line plus headers over ``MAX_HEAD_BYTES``, or more than ``MAX_HEADERS`` header
fields, is answered ``431`` and the connection closed. Without this, uvicorn's httptools
protocol buffered a head of any size: a 190 MiB header was read whole (83 s, +370 MB in
the worker) before the key check could answer 401. An ASGI middleware would come too late:
it runs only once the head has been read whole.

BentoML builds the worker's ``uvicorn.Config`` itself with ``http="auto"`` and offers no
option for this, so ``install()`` points uvicorn's ``auto`` protocol at
``LimitedHttpToolsProtocol``. It must run before the worker's server loads its config: the
service module calls it when it is imported (like ``add_asgi_middleware``). Without
httptools uvicorn uses h11, whose own 16 KiB limit on an incomplete head applies.

The body's limit (``CHURNML_MAX_BODY_BYTES``, ``413``) is enforced by the key gate, which
reads at most that many bytes of a chunked body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
PROTOCOL = "serving.limits:LimitedHttpToolsProtocol"

log = logging.getLogger("churnml.serving")

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn falls back to h11 and its own limit
    httptools = None
    HttpToolsProtocol = object  # type: ignore[assignment,misc]


class HeadTooLarge(Exception):
    """Raised inside the parser's callback to stop it reading the rest of the head."""


def head_refusal(reason: str) -> bytes:
    """The whole HTTP/1.1 response that refuses a head: 431, JSON, connection closed."""
    body = json.dumps({"error": reason, "detail": []}).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


def too_many_bytes(size: int) -> str:
    return (
        f"request headers: {size} bytes or more is over the limit of {MAX_HEAD_BYTES} bytes "
        "(request line and headers together)"
    )


def too_many_fields(count: int) -> str:
    return f"request headers: {count} fields or more is over the limit of {MAX_HEADERS}"


class LimitedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's httptools protocol, counting the bytes and fields of each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_fields = 0
        self._head_size = 0
        self._in_body = False
        self._refusal: str | None = None

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after this chunk: the bytes counted so far all belong to it.
        if not self._in_body and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(too_many_bytes(self._head_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_fields = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > MAX_HEADERS:
            self._stop(too_many_fields(self._head_fields))
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        """The parsed head's size: exact, for a head that arrived in one chunk."""
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            self._stop(too_many_bytes(self._head_size))

    def _stop(self, reason: str) -> None:
        self._refusal = reason
        raise HeadTooLarge(reason)

    def on_headers_complete(self) -> None:
        self._in_body = True
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers any parser error 400; the one raised by on_header is a 431.
        if self._refusal is not None:
            self._refuse(self._refusal)
        else:
            super().send_400_response(msg)

    def _refuse(self, reason: str) -> None:
        if self.transport.is_closing():
            return
        log.warning("431 %s from %s", reason, (self.client or ("?",))[0])
        self.transport.write(head_refusal(reason))
        self.transport.close()


def install() -> None:
    """Make uvicorn's ``auto`` HTTP protocol the limited one (when httptools is there)."""
    if httptools is None:
        return
    import uvicorn.config

    uvicorn.config.HTTP_PROTOCOLS["auto"] = PROTOCOL


# The service's BentoML APIs: their published request body is application/json only.
JSON_ROUTES = frozenset({"/score", "/score_ids", "/admin/reload"})


class JsonOnly:
    """ASGI middleware: a body of another type on a JSON API is a 415, not BentoML's 500.

    BentoML parses a form body itself, and a ``multipart/form-data`` without a boundary
    raised ``KeyError`` (500). No Content-Type is read as JSON, as BentoML does.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in JSON_ROUTES:
            media = _media_type(scope.get("headers", ()))
            if media not in (None, "", "application/json"):
                await _refuse_media(send, media)
                return
        await self.app(scope, receive, send)


def _media_type(headers: Any) -> str | None:
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return None


async def _refuse_media(send: Any, media: str) -> None:
    body = json.dumps(
        {"error": f"Content-Type {media[:100]!r}: send application/json", "detail": []}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 415,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
