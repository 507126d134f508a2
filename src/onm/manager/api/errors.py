"""How errors become HTTP answers: one JSON shape, the status from the error tree, no traces."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from onm.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OnmError,
    QuotaExceededError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
)

log = logging.getLogger("onm.manager.api")

# Error class -> the stable `code` clients can branch on.
CODES: dict[type[OnmError], str] = {
    InvalidInputError: "invalid_input",
    UnauthorizedError: "unauthorized",
    ForbiddenError: "forbidden",
    NotFoundError: "not_found",
    ConflictError: "conflict",
    QuotaExceededError: "quota_exceeded",
    UnavailableError: "unavailable",
    RateLimitedError: "rate_limited",
}


def body(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    retry_after: int | None = None,
) -> JSONResponse:
    """The one error shape; a 401 names the scheme, a 429 says when to retry (RFC 6585 4)."""
    content = {"error": {"status": status, "code": code, "message": message, "field": field}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:  # delay-seconds, RFC 9110 section 10.2.3
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(content, status_code=status, headers=headers or None)


def _code(error: OnmError) -> str:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return "error"


def install(app: FastAPI, seen: Callable[[OnmError], None] = lambda _error: None) -> None:
    """Answer errors in the one shape; `seen` hears of every error of the tree (metrics)."""

    @app.exception_handler(OnmError)
    async def onm_error(_request: Request, error: OnmError) -> JSONResponse:
        seen(error)
        field = getattr(error, "field", None)
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        return body(error.http_status, _code(error), error.message, field, retry_after)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":  # loc is ("body", character position)
            reason = first.get("ctx", {}).get("error", "malformed")
            message = f"not valid JSON ({reason}) at character {loc[-1]}"
            return body(400, "invalid_input", f"body: {message}", "body")
        location = [str(p) for p in loc if p not in ("body", "query", "path")]
        # An error about the body as a whole (missing, not an object) names the body.
        field = ".".join(location) or ("body" if loc[:1] == ("body",) else None)
        message = str(first.get("msg", "invalid request"))
        return body(400, "invalid_input", f"{field}: {message}" if field else message, field)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return body(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return body(500, "internal", "internal error (see the manager's log)")
