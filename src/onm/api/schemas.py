"""Request and response bodies of the REST API, and their conversion from the domain model.

Requests are loaded strictly (unknown fields are errors naming the field); lengths are bounded
so that no request can make the manager do unbounded work.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from onm.model import Event, Host, HostStatus, Network, Node, Resolution, Tenant
from onm.model.resolution import Verdict
from onm.model.snapshot import HostSnapshot
from onm.model.tenant import MAX_QUOTA, QuotaUse, TenantUsage

NUL = "\x00"
NO_NUL = "must not contain a NUL character"


def _no_nul(value: str) -> str:
    """No onm name, reference or address holds a NUL, and PostgreSQL text cannot: refuse it."""
    if NUL in value:
        raise ValueError(NO_NUL)
    return value


Name = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_no_nul)]
Ref = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Short = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]
MAX_INT64 = (1 << 63) - 1
"""The largest revision or event number the database's BIGINT columns can hold."""


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantCreate(Request):
    name: Name


class TenantOut(BaseModel):
    id: str
    name: str
    created_at: dt.datetime

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(id=tenant.id, name=tenant.name, created_at=tenant.created_at)


QuotaLimit = Annotated[int, Field(strict=True, ge=0, le=MAX_QUOTA)]
"""A quota limit as a request gives it: a JSON integer (no string, float or boolean)."""


class QuotaUpdate(Request):
    """New limits; a quota left out keeps its limit, null puts it back on the default."""

    networks: QuotaLimit | None = None
    nodes: QuotaLimit | None = None

    def changes(self) -> dict[str, int | None]:
        """The quotas the request names (null included), and their new limits."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class TenantUpdate(Request):
    """`PATCH /v1/tenants/{ref}` (admins only)."""

    quotas: QuotaUpdate = Field(default_factory=QuotaUpdate)


class QuotaOut(BaseModel):
    limit: int
    source: Literal["tenant", "default"]
    """`tenant`: the tenant's own limit; `default`: the manager's (`--quota-*`)."""
    used: int
    over: bool
    """The tenant holds more than the limit (lowered below the use: nothing new until under)."""

    @classmethod
    def of(cls, use: QuotaUse) -> QuotaOut:
        source: Literal["tenant", "default"] = "tenant" if use.own else "default"
        return cls(limit=use.limit, source=source, used=use.used, over=use.over)


class TenantDetail(TenantOut):
    """One tenant with its quotas: what `GET` and `PATCH /v1/tenants/{ref}` answer."""

    quotas: dict[str, QuotaOut]

    @classmethod
    def of_usage(cls, usage: TenantUsage) -> TenantDetail:
        quotas = {use.kind.value: QuotaOut.of(use) for use in usage.quotas}
        return cls(**dict(TenantOut.of(usage.tenant)), quotas=quotas)


class TenantCreated(BaseModel):
    tenant: TenantOut
    token: str


class NetworkCreate(Request):
    name: Name
    tenant: Ref | None = None
    cidrs: Annotated[list[Short], Field(min_length=1, max_length=32)]
    encoding: Short = "siit"


class NetworkOut(BaseModel):
    id: str
    name: str
    tenant_id: str
    vni: int
    cidrs: list[str]
    encoding: str
    gateway: str
    gateways: list[str]
    created_at: dt.datetime

    @classmethod
    def of(cls, network: Network) -> NetworkOut:
        return cls(
            id=network.id,
            name=network.name,
            tenant_id=network.tenant_id,
            vni=network.vni,
            cidrs=[str(c) for c in network.cidrs],
            encoding=network.encoding.value,
            gateway=str(network.gateway),
            gateways=[str(g) for g in network.gateways],
            created_at=network.created_at,
        )


class LocationIn(Request):
    locale: int
    area: int
    rack: int
    node: int


class HostCreate(Request):
    name: Name
    prefix: Short | None = None
    location: LocationIn | None = None


class LocationOut(BaseModel):
    locale: int
    area: int
    rack: int
    node: int


class HostPublic(BaseModel):
    """A host as a tenant sees it: what placing nodes and judging "nearest" need, no substrate
    details (docs/addressing.md)."""

    id: str
    name: str
    location: LocationOut
    created_at: dt.datetime

    @classmethod
    def of(cls, host: Host) -> HostPublic:
        loc = host.prefix.location
        return cls(
            id=host.id,
            name=host.name,
            location=LocationOut(locale=loc.locale, area=loc.area, rack=loc.rack, node=loc.node),
            created_at=host.created_at,
        )


class HostOut(HostPublic):
    """A host as admins and its own agent see it: with the substrate /64 it owns."""

    prefix: str

    @classmethod
    def of(cls, host: Host) -> HostOut:
        return cls(**dict(HostPublic.of(host)), prefix=str(host.prefix))


HostView = HostOut | HostPublic
"""What `GET /v1/hosts` answers with: `HostOut` for admins and hosts, `HostPublic` for tenants."""


def host_view(host: Host, shows_substrate: bool) -> HostView:
    return HostOut.of(host) if shows_substrate else HostPublic.of(host)


class HostCreated(BaseModel):
    host: HostOut
    token: str


class NodeCreate(Request):
    name: Name
    network: Ref
    host: Ref
    ip: Short
    interface: Short | None = None


class NodeOut(BaseModel):
    id: str
    name: str
    network_id: str
    host_id: str
    ip: str
    mac: str
    slot: int
    interface: str
    created_at: dt.datetime

    @classmethod
    def of(cls, node: Node) -> NodeOut:
        return cls(
            id=node.id,
            name=node.name,
            network_id=node.network_id,
            host_id=node.host_id,
            ip=str(node.ip),
            mac=node.mac,
            slot=node.slot,
            interface=node.interface,
            created_at=node.created_at,
        )


class ResolveRequest(Request):
    network: Ref
    requester: Ref
    ip: Short


class ResolutionOut(BaseModel):
    network_id: str
    requester_id: str
    target_ip: str
    target_id: str
    substrate_address: str
    mac: str
    expires_at: dt.datetime

    @classmethod
    def of(cls, r: Resolution) -> ResolutionOut:
        return cls(
            network_id=r.network_id,
            requester_id=r.requester_id,
            target_ip=str(r.target_ip),
            target_id=r.target_id,
            substrate_address=str(r.substrate_address),
            mac=r.mac,
            expires_at=r.expires_at,
        )


class VerifyRequest(Request):
    network: Ref
    ip: Short
    substrate_source: Short


class VerdictOut(BaseModel):
    valid: bool
    reason: str
    expected: str | None

    @classmethod
    def of(cls, verdict: Verdict) -> VerdictOut:
        expected = None if verdict.expected is None else str(verdict.expected)
        return cls(valid=verdict.valid, reason=verdict.reason, expected=expected)


class ReportIn(Request):
    applied_revision: int


class HostStatusOut(BaseModel):
    host: str
    desired_revision: int
    applied_revision: int
    lagging: bool
    silent: bool
    last_report_at: dt.datetime | None

    @classmethod
    def of(cls, status: HostStatus, now: dt.datetime, silence: dt.timedelta) -> HostStatusOut:
        last = status.last_report_at
        return cls(
            host=status.host.name,
            desired_revision=status.desired_revision,
            applied_revision=status.applied_revision,
            lagging=status.lagging,
            silent=last is None or now - last > silence,
            last_report_at=last,
        )


class StatusOut(BaseModel):
    revision: int
    hosts: list[HostStatusOut]


class LocalNodeOut(BaseModel):
    node: NodeOut
    substrate_address: str


class ResidentOut(BaseModel):
    network_id: str
    ip: str
    substrate_address: str
    mac: str


class SnapshotOut(BaseModel):
    revision: int
    host: HostOut
    networks: list[NetworkOut]
    nodes: list[LocalNodeOut]
    residents: list[ResidentOut]
    grants: list[ResolutionOut]

    @classmethod
    def of(cls, s: HostSnapshot) -> SnapshotOut:
        return cls(
            revision=s.revision,
            host=HostOut.of(s.host),
            networks=[NetworkOut.of(n) for n in s.networks],
            nodes=[
                LocalNodeOut(node=NodeOut.of(n.node), substrate_address=str(n.substrate_address))
                for n in s.nodes
            ],
            residents=[
                ResidentOut(
                    network_id=r.network_id,
                    ip=str(r.ip),
                    substrate_address=str(r.substrate_address),
                    mac=r.mac,
                )
                for r in s.residents
            ],
            grants=[ResolutionOut.of(g) for g in s.grants],
        )


class EventOut(BaseModel):
    seq: int
    revision: int
    at: dt.datetime
    actor: str
    kind: str
    object_id: str
    tenant_id: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(
            seq=e.seq,
            revision=e.revision,
            at=e.at,
            actor=e.actor,
            kind=e.kind,
            object_id=e.object_id,
            tenant_id=e.tenant_id,
            data=e.data,
        )


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
