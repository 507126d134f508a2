"""Who is calling: the identity a bearer token stands for."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from onm.model.ids import HostId, TenantId


class PrincipalKind(enum.StrEnum):
    ADMIN = "admin"  # everything
    TENANT = "tenant"  # only its own tenant's objects
    HOST = "host"  # only what its own agent needs


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    tenant_id: TenantId | None = None
    host_id: HostId | None = None
    name: str = "admin"
    """How events name this caller: `admin`, `tenant:NAME`, `host:NAME`."""

    @property
    def is_admin(self) -> bool:
        return self.kind is PrincipalKind.ADMIN


ADMIN = Principal(PrincipalKind.ADMIN)
MANAGER = Principal(PrincipalKind.ADMIN, name="manager")
"""The manager acting on its own (a pool it detected from agents' claims), as events name it."""
