"""Request and response bodies of the REST API (their conversion to and from the domain model
is `onm.api.codec`).

Requests are loaded strictly (unknown fields are errors naming the field); lengths are bounded
so that no request can make the manager do unbounded work.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from onm.model.tenant import MAX_QUOTA

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


class TenantDetail(TenantOut):
    """One tenant with its quotas: what `GET` and `PATCH /v1/tenants/{ref}` answer."""

    quotas: dict[str, QuotaOut]


class TenantCreated(BaseModel):
    tenant: TenantOut
    token: str


class NetworkCreate(Request):
    name: Name
    tenant: Ref | None = None
    cidrs: Annotated[list[Short], Field(min_length=1, max_length=32)]
    encoding: Short = "siit"
    auto_pools: Short = "propose"


class NetworkUpdate(Request):
    auto_pools: Short | None = None


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
    auto_pools: str = "propose"


class LocationIn(Request):
    locale: int
    area: int
    rack: int
    node: int


class HostCreate(Request):
    name: Name
    prefix: Short | None = None
    location: LocationIn | None = None
    role: Short = "node"
    external: Ref | None = None


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


class HostOut(HostPublic):
    """A host as admins and its own agent see it: with the substrate /64 it owns."""

    prefix: str
    role: str = "node"
    external_id: str | None = None


HostView = HostOut | HostPublic
"""What `GET /v1/hosts` answers with: `HostOut` for admins and hosts, `HostPublic` for tenants."""


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


Seconds = Annotated[float, Field(strict=False, allow_inf_nan=False)]


class CheckIn(Request):
    """A health check as a request gives it; a value left out takes its default."""

    kind: Short | None = None
    port: int | None = None
    path: Ref | None = None
    interval: Seconds | None = None
    timeout: Seconds | None = None
    rise: int | None = None
    fall: int | None = None

    def given(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class ActionIn(Request):
    """`{on: "healthy<2", webhook: URL, secret: S}` or `{on: ..., run: COMMAND}`."""

    on: Short
    webhook: Annotated[str, Field(max_length=2000)] | None = None
    run: Annotated[str, Field(max_length=2000)] | None = None
    secret: Annotated[str, Field(max_length=200)] | None = None


class PoolSettings(Request):
    """What `PATCH /v1/pools/{ref}` may change (and `POST /v1/pools` may set); `actions`
    replaces the whole list."""

    policy: Short | None = None
    scope: Short | None = None
    all_down: Short | None = None
    check: CheckIn | None = None
    rotate_packets: int | None = None
    rotate_seconds: Seconds | None = None
    actions: Annotated[list[ActionIn], Field(max_length=16)] | None = None
    add_actions: Annotated[list[ActionIn], Field(max_length=16)] | None = None
    """Actions to add to those the pool has (secrets are never read back, so `actions` would
    have to be given whole again)."""

    def given(self) -> dict[str, object]:
        found: dict[str, object] = {}
        for name in sorted(self.model_fields_set):
            if name == "check" and self.check:
                found[name] = self.check.given()
            elif name in ("actions", "add_actions") and getattr(self, name) is not None:
                found[name] = [a.model_dump(exclude_none=True) for a in getattr(self, name)]
            else:
                found[name] = getattr(self, name)
        return found


class PoolCreate(PoolSettings):
    name: Name
    network: Ref
    ip: Short
    members: Annotated[list[Ref], Field(max_length=64)] = Field(default_factory=list)


class MemberHealthIn(Request):
    pool: Short
    node: Short
    health: Short
    load: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0


class HealthReportIn(Request):
    """`POST /v1/hosts/{ref}/health`: an agent's word on the members it hosts."""

    members: Annotated[list[MemberHealthIn], Field(max_length=4096)]


class ClaimIn(Request):
    node: Short
    ip: Short


class ClaimsReportIn(Request):
    """`POST /v1/hosts/{ref}/claims`: addresses the host's nodes use that are not their own."""

    claims: Annotated[list[ClaimIn], Field(max_length=256)]


class ClaimOut(BaseModel):
    node: str
    ip: str
    verdict: str


class MemberAdd(Request):
    node: Ref
    rank: int | None = None


class ResolveRequest(Request):
    network: Ref
    requester: Ref
    ip: Short


class AlternativeOut(BaseModel):
    node_id: str
    substrate_address: str


class ResolutionOut(BaseModel):
    network_id: str
    requester_id: str
    target_ip: str
    target_id: str
    substrate_address: str
    mac: str
    expires_at: dt.datetime
    pool_id: str | None = None
    alternatives: list[AlternativeOut] = Field(default_factory=list)


class VerifyRequest(Request):
    network: Ref
    ip: Short
    substrate_source: Short


class VerdictOut(BaseModel):
    valid: bool
    reason: str
    expected: str | None


class ReportIn(Request):
    applied_revision: int


class HostStatusOut(BaseModel):
    host: str
    desired_revision: int
    applied_revision: int
    lagging: bool
    silent: bool
    last_report_at: dt.datetime | None


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


class HealthCheckOut(BaseModel):
    kind: str
    port: int | None
    path: str
    interval: float
    timeout: float
    rise: int
    fall: int


class RotationOut(BaseModel):
    packets: int | None
    seconds: float | None


class PoolOut(BaseModel):
    id: str
    network_id: str
    name: str
    ip: str
    mac: str
    policy: str
    scope: str
    all_down: str
    check: HealthCheckOut
    rotation: RotationOut
    state: str
    created_at: dt.datetime


class MemberOut(BaseModel):
    node_id: str
    node: str
    """The member node's name."""
    host_id: str
    rank: int
    health: str
    since: dt.datetime
    reported_at: dt.datetime | None
    load: float
    selections: int
    """Requesters whose grant has this member first (their agents steer there while it is up)."""


class ActionOut(BaseModel):
    on: str
    kind: str
    target: str
    signed: bool
    """A webhook signed with its secret (which is never shown)."""


class PoolDetail(PoolOut):
    """A pool with its members: what `GET /v1/pools/{ref}` and the changes to it answer."""

    network: str
    members: list[MemberOut]
    actions: list[ActionOut] = Field(default_factory=list)


class MemberViewOut(BaseModel):
    node_id: str
    host_id: str
    substrate_address: str
    health: str


class PoolViewOut(BaseModel):
    pool: PoolOut
    members: list[MemberViewOut]


class EventOut(BaseModel):
    seq: int
    revision: int
    at: dt.datetime
    actor: str
    kind: str
    object_id: str
    tenant_id: str | None
    data: dict[str, Any]


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


# --- edge pools (issue #10; onm.model.edge_pool) ----------------------------------------------


class ExternalCreate(Request):
    name: Name
    cidr: Short


class ExternalOut(BaseModel):
    id: str
    name: str
    cidr: str
    created_at: dt.datetime


class EdgePoolSettings(Request):
    """What `PATCH /v1/edge-pools/{ref}` may change (and `POST /v1/edge-pools` may set)."""

    nat: Short | None = None
    hash: Annotated[list[Short], Field(min_length=1, max_length=5)] | None = None
    choice: Short | None = None
    mode: Short | None = None
    split_above: Annotated[float, Field(allow_inf_nan=False)] | None = None
    probe_interval: Annotated[float, Field(allow_inf_nan=False)] | None = None

    def given(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class EdgePoolCreate(EdgePoolSettings):
    name: Name
    network: Ref


class GatewayOut(BaseModel):
    id: str
    pool_id: str
    name: str
    host_id: str
    external_ip: str
    state: str
    created_at: dt.datetime


class EdgePoolOut(BaseModel):
    id: str
    network_id: str
    name: str
    nat: str
    hash_fields: list[str]
    choice: str
    mode: str
    split_above: float | None
    probe_interval: float
    created_at: dt.datetime
    rebalance: int = 0
    """The pool's rebalance generation (`onm edge-pool rebalance`)."""


class GatewayViewOut(BaseModel):
    gateway: GatewayOut
    prefix: str


class EdgeRuleCreate(Request):
    """A firewall rule of an edge pool (`onm.model.edge_rule.parse_rule` reads the text)."""

    direction: Short
    action: Short
    proto: Short = "any"
    ports: Short | None = None
    """`25` or `1000-2000` (TCP and UDP only)."""
    remote: Short | None = None
    """The external side's CIDR."""
    position: Annotated[int, Field(strict=True)] | None = None
    """1 is evaluated first; default: last."""


class EdgeRuleOut(BaseModel):
    id: str
    pool_id: str
    position: int
    direction: str
    proto: str
    ports: list[int] | None
    remote: str | None
    action: str
    created_at: dt.datetime


class EdgeRuleCountedOut(EdgeRuleOut):
    """A rule with the packets (of new connections) it matched, summed over the pool's
    gateways since each gateway's counters started (`onm.manager.rule_counts`)."""

    packets: int = 0


class DefaultCountOut(BaseModel):
    """Packets no rule matched, by the default verdict or drop that took them."""

    verdict: str
    packets: int


class PublicIpCreate(Request):
    edge_pool: Ref
    ip: Short


class PublicIpOut(BaseModel):
    id: str
    pool_id: str
    node_id: str
    external_id: str
    ip: str
    created_at: dt.datetime


class PublicIpDetailOut(PublicIpOut):
    """A public IP with its node and the gateway that holds it (None: no active gateway)."""

    node: str
    node_ip: str
    pool: str
    gateway: str | None
    gateway_id: str | None


class PublicIpViewOut(BaseModel):
    public_ip: PublicIpOut
    node_ip: str
    owner: str | None


class EdgePoolViewOut(BaseModel):
    pool: EdgePoolOut
    gateways: list[GatewayViewOut]
    rules: list[EdgeRuleOut] = Field(default_factory=list)
    public_ips: list[PublicIpViewOut] = Field(default_factory=list)
    anycast: str | None = None


class EdgePoolDetail(EdgePoolOut):
    network: str
    gateways: list[GatewayOut]
    rules: list[EdgeRuleCountedOut] = Field(default_factory=list)
    """In evaluation order."""
    defaults: list[DefaultCountOut] = Field(default_factory=list)
    """What no rule matched, per default verdict (summed like the rules' packets)."""
    public_ips: list[PublicIpDetailOut] = Field(default_factory=list)
    anycast: str | None = None
    """In anycast mode, the /64 its gateways share: shown to admins only (the substrate's)."""


Counter = Annotated[int, Field(strict=True, ge=0, le=MAX_INT64)]
"""A count an agent reports: a JSON integer that fits the database's BIGINT."""


class RuleCountIn(Request):
    """What one firewall rule matched on a gateway the reporting host runs."""

    rule: Short
    packets: Counter


class DefaultCountIn(Request):
    """What one default verdict (or drop) took on a gateway the reporting host runs."""

    verdict: Short
    packets: Counter


class GatewayFiguresIn(Request):
    """One gateway as a host's agent sees it (onm.manager.gateway_health); `rules` and
    `defaults` only for a gateway that host runs (its firewall counters)."""

    gateway: Short
    alive: bool
    pinned: Counter = 0
    flows: Counter = 0
    packets: Counter = 0
    bytes: Counter = 0
    rules: Annotated[list[RuleCountIn], Field(max_length=256)] = Field(default_factory=list)
    """At most a pool's rules (`onm.manager.edge_rules.MAX_RULES`)."""
    defaults: Annotated[list[DefaultCountIn], Field(max_length=16)] = Field(default_factory=list)


class GatewayReportIn(Request):
    """`POST /v1/hosts/{ref}/gateways`: every gateway the agent probes or serves."""

    gateways: Annotated[list[GatewayFiguresIn], Field(max_length=4096)]


class GatewayLoadOut(BaseModel):
    """One gateway's load as the other senders make it."""

    gateway: str
    flows: int
    """Flows pinned to it now by every other fresh reporter."""


class GatewayReportOut(BaseModel):
    """The answer to `POST /v1/hosts/{ref}/gateways`."""

    accepted: int
    """Gateways reported."""
    loads: list[GatewayLoadOut] = Field(default_factory=list)
    """Every gateway of the `least-loaded` pools reported on (onm.agent.flows)."""


class GatewayHeardOut(BaseModel):
    """One reporter's last word on a gateway."""

    host: str
    alive: bool
    pinned: int
    flows: int
    packets: int
    bytes: int
    reported_at: dt.datetime


class GatewayHealthOut(BaseModel):
    """A gateway of an edge pool: its state, the manager's verdict on its health (why, and
    since when), and its traffic summed over the agents that report it."""

    id: str
    name: str
    host: str
    external_ip: str
    state: str
    health: str
    since: dt.datetime | None
    why: str
    pinned: int
    flows: int
    packets: int
    bytes: int
    heard: list[GatewayHeardOut]


class GatewayAdd(Request):
    name: Name
    host: Ref
    external_ip: Short


class GatewayUpdate(Request):
    state: Short | None = None
    external_ip: Short | None = None


class RouteCreate(Request):
    network: Ref
    prefix: Short
    edge_pool: Ref


class RouteOut(BaseModel):
    id: str
    network_id: str
    prefix: str
    edge_pool_id: str
    created_at: dt.datetime


class SnapshotOut(BaseModel):
    revision: int
    host: HostOut
    networks: list[NetworkOut]
    nodes: list[LocalNodeOut]
    residents: list[ResidentOut]
    grants: list[ResolutionOut]
    pools: list[PoolViewOut] = Field(default_factory=list)
    routes: list[RouteOut] = Field(default_factory=list)
    edge_pools: list[EdgePoolViewOut] = Field(default_factory=list)
