"""Rate limits at the API's door (pure ASGI middleware over `onm.manager.ratelimit`).

For each request under /v1, in this order:
1. the client address has failed authentication too often (its `auth` bucket is empty) and
   the request's token has not earned a success lately: 429, the token is not even looked up;
2. the token's bucket for the route's operation class is empty: 429;
3. otherwise the request goes on; a 401 answer is counted against the client address (and its
   token loses any trust), a 2xx answer vouches for the token.
Every 429 carries `Retry-After` (whole seconds, RFC 6585 section 4, RFC 9110 section 10.2.3) and
the API's one error shape. Every answer is counted in the metrics by route template and status.
Routes are classified by `CLASSES` (method and path template), else by method: reads are GET.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import Final

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onm.api.schemas import ErrorOut
from onm.manager.api import errors
from onm.manager.metrics import ManagerMetrics
from onm.manager.ratelimit import Limiter, OperationClass, client_key, retry_after

# Routes that are not plain reads and writes: what agents do all day, and event streams.
CLASSES: Final[dict[tuple[str, str], OperationClass]] = {
    ("POST", "/v1/resolve"): OperationClass.RESOLVE,
    ("POST", "/v1/verify"): OperationClass.RESOLVE,
    ("GET", "/v1/hosts/{ref}/snapshot"): OperationClass.SYNC,
    ("GET", "/v1/hosts/{ref}/snapshot/stream"): OperationClass.SYNC,
    ("POST", "/v1/hosts/{ref}/report"): OperationClass.SYNC,
    ("POST", "/v1/hosts/{ref}/health"): OperationClass.SYNC,
    ("POST", "/v1/hosts/{ref}/gateways"): OperationClass.SYNC,
    ("GET", "/v1/events/stream"): OperationClass.SYNC,
}
READS: Final = frozenset({"GET", "HEAD"})
RESPONSE: Final[dict[str, object]] = {
    "model": ErrorOut,
    "description": "Too many requests (rate limit): retry after `Retry-After` seconds",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying (RFC 9110 section 10.2.3)",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
"""The 429 answer as the OpenAPI document shows it on every route."""
OTHER: Final = "other"
"""The route label of requests that match no route (bounded label values)."""


def classify(method: str, route: str) -> OperationClass:
    found = CLASSES.get((method, route))
    if found is not None:
        return found
    return OperationClass.READ if method in READS else OperationClass.WRITE


def _bearer(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


def token_key(token: str) -> str:
    """Buckets are keyed by the token's hash: the limiter never holds a token in clear."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class Throttle:
    """The middleware; `routes` are the app's (to know a request's route before routing)."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: Callable[[], Limiter],
        metrics: Callable[[], ManagerMetrics],
        clock: Callable[[], dt.datetime],
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.metrics = metrics
        self.clock = clock
        self.routes = routes

    def _route(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", OTHER))
        return OTHER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, route = scope["method"], self._route(scope)
        metrics = self.metrics()
        if not scope["path"].startswith("/v1/"):
            await self._counted(scope, receive, send, metrics, route, None, None)
            return
        limiter, now = self.limiter(), self.clock().timestamp()
        peer = scope.get("client")
        client = client_key(peer[0]) if peer else OTHER
        token = _bearer(scope)
        key = None if token is None else token_key(token)
        wait = limiter.auth_wait(client, key, now)
        if wait > 0:
            metrics.throttled(OperationClass.AUTH)
            message = (
                f"too many failed authentications from {client}: retry in {retry_after(wait)} s"
            )
            await self._refuse(send, metrics, route, method, message, wait)
            return
        if key is not None:
            op = classify(method, route)
            wait = limiter.admit(key, op, now)
            if wait > 0:
                metrics.throttled(op)
                rate = limiter.limits.rates[op]
                message = (
                    f"too many {op.value} requests with this token (at most {rate.per_second:g}"
                    f" per second, {rate.burst} at once): retry in {retry_after(wait)} s"
                )
                await self._refuse(send, metrics, route, method, message, wait)
                return
        status = await self._counted(scope, receive, send, metrics, route, limiter, key)
        if status == 401:
            metrics.auth_failed()
            limiter.failed(client, key, now)

    async def _counted(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        metrics: ManagerMetrics,
        route: str,
        limiter: Limiter | None,
        key: str | None,
    ) -> int:
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                metrics.request(route, scope["method"], status)
                # Vouch as soon as a stream starts, not when it ends (it may never end).
                if limiter is not None and key is not None and 200 <= status < 300:
                    limiter.vouch(key)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:  # answered 500 by the server error handler outside this middleware
            if not status:
                metrics.request(route, scope["method"], 500)
            raise
        return status

    async def _refuse(
        self,
        send: Send,
        metrics: ManagerMetrics,
        route: str,
        method: str,
        message: str,
        wait: float,
    ) -> None:
        metrics.request(route, method, 429)
        response = errors.body(429, "rate_limited", message, retry_after=retry_after(wait))
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})
