"""The one error tree of onm.

Every error a caller can act on derives from `OnmError` and carries the HTTP status a server
should answer with. Per-packet outcomes are never exceptions: they are values (see
`onm.packet.drop.DropReason`).

    OnmError (500)
     +-- InvalidInputError (400)   the caller gave a value that is out of range or malformed
     |    +-- AddressingError      ... in a substrate address, prefix or location
     |    +-- UnprocessableError (422)  well-formed, but the rules refuse it (a reserved CIDR)
     +-- UnauthorizedError (401)  no valid credentials
     +-- ForbiddenError (403)     valid credentials, not allowed to do that
     |    +-- QuotaExceededError  ... because the tenant holds as many objects as it may
     +-- NotFoundError (404)      no such object, or not visible to the caller
     +-- ConflictError (409)      contradicts existing state (duplicate name, address in use)
     +-- UnavailableError (503)   a service onm needs (the manager) cannot be reached
          +-- RateLimitedError (429)  ... for this caller now: too many requests; retry later
"""

from __future__ import annotations


class OnmError(Exception):
    """Root of every error onm raises on purpose."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(OnmError, ValueError):
    """A value given by the caller is invalid; `field` names it."""

    http_status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AddressingError(InvalidInputError):
    """A substrate address, host prefix or location does not fit the address layout."""


class UnprocessableError(InvalidInputError):
    """Well-formed, but a value the rules refuse: 422 (RFC 9110 section 15.5.21)."""

    http_status = 422


class UnauthorizedError(OnmError):
    """No credentials, or credentials that match nothing."""

    http_status = 401


class ForbiddenError(OnmError):
    """The caller is known but may not do this."""

    http_status = 403


class QuotaExceededError(ForbiddenError):
    """Creating one more object would take a tenant past a quota; `quota` names it."""

    def __init__(self, quota: str, limit: int, message: str) -> None:
        super().__init__(message)
        self.quota = quota
        self.limit = limit


class NotFoundError(OnmError, LookupError):
    """The object named does not exist (or is not visible to the caller)."""

    http_status = 404


class ConflictError(OnmError):
    """The request contradicts existing state (duplicate name, address in use, ...)."""

    http_status = 409

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnavailableError(OnmError):
    """A service onm needs (the manager, for a client or an agent) is unreachable or silent."""

    http_status = 503


class RateLimitedError(UnavailableError):
    """Too many requests from this caller: retry after `retry_after` whole seconds.

    A kind of unavailability, so that agents treat it like a manager that is briefly away
    (keep their state, retry later) rather than as an answer.
    """

    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
