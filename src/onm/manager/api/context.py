"""What every route shares: the manager's context (store, clock, limits, metrics) with its one
transaction per request, and the bearer token dependency."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from onm.errors import UnauthorizedError
from onm.manager import tokens
from onm.manager.metrics import ManagerMetrics
from onm.manager.quota import Quotas
from onm.manager.ratelimit import Limiter
from onm.manager.store import Store, Tx
from onm.model import Principal, PrincipalKind
from onm.model.clock import utcnow
from onm.model.resolution import RESOLUTION_TTL

T = TypeVar("T")
NOBODY = Principal(PrincipalKind.TENANT, name="anonymous")


@dataclass
class Context:
    store: Store
    clock: Callable[[], dt.datetime] = utcnow
    silence: dt.timedelta = field(default=dt.timedelta(seconds=60))
    poll_interval: float = 0.2
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the server begins to shut down: long polls and streams end at once."""
    limiter: Limiter = field(default_factory=Limiter)
    """Token buckets per token and operation class, failed authentications per address."""
    quotas: Quotas = field(default_factory=Quotas)
    metrics: ManagerMetrics = field(default_factory=ManagerMetrics)
    resolution_ttl: dt.timedelta = RESOLUTION_TTL
    """How long an answer to a resolution lives (`onm manager serve --resolution-ttl`)."""

    def write(self, token: str, work: Callable[[Tx], T]) -> T:
        with self.store.write(NOBODY, self.clock()) as tx:
            tx.actor = tokens.authenticate(tx, token)
            return work(tx)

    def read(self, token: str, work: Callable[[Tx], T]) -> T:
        with self.store.read(NOBODY, self.clock()) as tx:
            tx.actor = tokens.authenticate(tx, token)
            return work(tx)


_bearer = HTTPBearer(auto_error=False, description="An admin, tenant or host token")


def _token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The bearer token; a request without one is refused before its body is even validated."""
    if credentials is None or not credentials.credentials:
        raise UnauthorizedError("a bearer token is required")
    return credentials.credentials


Token = Annotated[str, Depends(_token)]
