"""BentoML's request timeout, with its timer cancelled when the request is done.

BentoML's ``TimeoutMiddleware`` (``traffic={"timeout": 60}``) sits outside the key check
and starts a 60 s timer for every request that it never cancels: each timer holds the
request's context (its scope, its tracing span) until it fires. A flood of requests, even
unauthenticated ones answered 401, thus held a minute of requests in memory: 20,000
requests in 10 s grew a worker by ~100 MB. This subclass behaves the same and cancels the
timer as soon as the request is over.

BentoML imports the class from its ``traffic`` module when it builds each worker's app, so
``install()`` puts the subclass there; the service module calls it when it is imported.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse

BentoTimeout = getattr(traffic.TimeoutMiddleware, "churnml_base", traffic.TimeoutMiddleware)


class CancellingTimeout(BentoTimeout):  # type: ignore[misc,valid-type]
    """A 504 when no response has started within the timeout, as BentoML's; no timer left."""

    churnml_base = BentoTimeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def started(message: Any) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        request = asyncio.ensure_future(self.app(scope, receive, started))
        try:
            await waiter
        except TimeoutError:
            if request.cancel():
                answer = JSONResponse(
                    {"error": f"Not able to process the request in {self.timeout} seconds"},
                    status_code=504,
                )
                await answer(scope, receive, send)
        else:
            await request
        finally:
            timer.cancel()


def install() -> None:
    """Make BentoML build its timeout middleware from ``CancellingTimeout``."""
    traffic.TimeoutMiddleware = CancellingTimeout
