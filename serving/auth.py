"""The door of the service: API keys and the body size limit, as one plain ASGI middleware.

* ``/healthz``, ``/livez``, ``/readyz`` and ``/metrics`` are open (probes and Prometheus),
  and so are the retention page ``/`` and its files under ``/ui/``: they hold no data, the
  page asks for a key and sends it with every call to the API.
* ``/admin/...`` needs an admin key; every other path (the API, the OpenAPI spec and
  its page) needs an API key or an admin key, as ``Authorization: Bearer KEY``.
  No or unknown key: 401; a known key without the scope: 403.
* Keys are compared in constant time against every configured key (``hmac.compare_digest``
  on each, no early exit), and never logged or echoed.
* A body over ``max_body_bytes`` is refused with 413 before it is read whole.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/"})
# The page's own files (no data: the page asks for a key and sends it to the API).
OPEN_PREFIX = "/ui/"
ADMIN_PREFIX = "/admin/"


class KeyRing:
    """The configured keys by scope; ``scope_of`` answers in constant time."""

    def __init__(self, api_keys: tuple[str, ...], admin_keys: tuple[str, ...]) -> None:
        self._keys = [(k.encode(), "admin") for k in admin_keys] + [
            (k.encode(), "api") for k in api_keys
        ]

    def scope_of(self, presented: bytes) -> str | None:
        found = None
        for key, scope in self._keys:
            # compare_digest against every key: the time does not tell which one matched.
            if hmac.compare_digest(key, presented) and found is None:
                found = scope
        return found


async def _answer(send: Send, status: int, error: str, headers: list | None = None) -> None:
    body = json.dumps({"error": error, "detail": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """ASGI middleware: authentication, authorisation and the body size limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing | None,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.keys is not None:
            presented = None
            for name, value in scope.get("headers", ()):
                if name == b"authorization":
                    presented = value
                    break
            if presented is None or not presented[:7].lower() == b"bearer ":
                await _answer(
                    send,
                    401,
                    "missing API key: send the header 'Authorization: Bearer KEY'",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
            scope_name = self.keys.scope_of(presented[7:].strip())
            if scope_name is None:
                await _answer(
                    send,
                    401,
                    "unknown API key",
                    [(b"www-authenticate", b'Bearer error="invalid_token"')],
                )
                return
            if path.startswith(ADMIN_PREFIX) and scope_name != "admin":
                await _answer(send, 403, "this key may not call admin endpoints; use an admin key")
                return
        await self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _answer(send, 400, "Content-Length is not a number")
                    return
                if declared > limit:
                    await _answer(send, 413, _too_big(declared, limit))
                    return
                await self.app(scope, receive, send)
                return
        # No Content-Length (chunked): read up to the limit, then hand the body on.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, _too_big(size, limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_big(size: int, limit: int) -> str:
    return (
        f"body: {size} bytes is over the limit of {limit} bytes; send fewer customers or "
        "interactions per request"
    )
