"""What a gateway host is asked to serve (the plan `onm.netlink.gateway_plan.realise` takes):
its tenant networks, each with its firewall rules and public IPs; the numbers a tenant's VNI
gives it in the kernel (conntrack zone, packet mark, routing table: derived from the VNI alone,
so a re-apply or a tenant joining never renumbers another); and the checks a plan must pass
before anything reaches the kernel (`validate`: InvalidInputError naming the field).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from onm.errors import InvalidInputError
from onm.model.edge_rule import PORTED as _PORTED
from onm.model.edge_rule import PORTS, Action, Direction, Proto

# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """One of a tenant's firewall rules; rules are evaluated in order, the first match wins."""

    id: str
    """Shown in counters ("rule-3"); unique within its tenant."""
    direction: Direction
    action: Action
    proto: Proto = Proto.ANY
    ports: tuple[int, int] | None = None
    """Inclusive range of TCP/UDP destination ports (the tenant node's port for ingress)."""
    remote: ipaddress.IPv4Network | None = None
    """The external side's CIDR (destination for egress, source for ingress)."""


@dataclass(frozen=True, slots=True)
class PublicIp:
    """A tenant node's 1:1 address on the external network (DNAT in, SNAT out)."""

    node_ip: ipaddress.IPv4Address
    public_ip: ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class TenantEdge:
    """One tenant network as this gateway serves it."""

    vni: int
    """The tenant network id: gives the conntrack zone, the mark and the routing table."""
    interface: str
    """The gateway-side interface the tenant's IPv4 packets arrive on."""
    cidrs: tuple[ipaddress.IPv4Network, ...]
    snat_ip: ipaddress.IPv4Address
    """This gateway's external address for this tenant network (with `routed`, only the next
    hop the external network reaches the tenant's CIDRs by: nothing is translated to it)."""
    rules: tuple[FirewallRule, ...] = ()
    public_ips: tuple[PublicIp, ...] = ()
    routed: bool = False
    """An edge pool with `nat: none`: the tenant's CIDRs are routed as they are, statelessly."""


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    external_interface: str
    tenants: tuple[TenantEdge, ...]


# --- the numbers of a tenant ------------------------------------------------------------

MAX_VNI: Final = (1 << 24) - 1
"""A virtual network id is 24 bits (DESIGN.md section 2, `onm.addressing`)."""
MAX_ZONE: Final = 0xFFFF
"""A conntrack zone id is 16 bits (include/net/netfilter/nf_conntrack_zones.h, u16 id); zone 0
is the default zone, every packet's before a rule sets another."""
MARK_BASE: Final = 1 << 24
"""A tenant's mark and table are MARK_BASE | VNI: bit 24 says "an onm tenant", so no mark or
table number another user of the namespace picks from the small numbers is taken, and none is
one of the kernel's reserved tables (253-255, include/uapi/linux/rtnetlink.h)."""
IFNAMSIZ: Final = 16
"""Interface names are at most IFNAMSIZ - 1 bytes (include/uapi/linux/if.h)."""


def zone_of(vni: int) -> int:
    """The conntrack zone of `vni`: the VNI itself up to 65535, folded into 1..65535 above
    (`realise` refuses two tenants of one gateway whose zones meet)."""
    return (vni - 1) % MAX_ZONE + 1


def mark_of(vni: int) -> int:
    """The packet mark, and routing table, of `vni`."""
    return MARK_BASE | vni


# --- validation -------------------------------------------------------------------------------

_RULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")


def _interface(field: str, name: str) -> None:
    if not name or len(name.encode()) >= IFNAMSIZ:
        raise InvalidInputError(field, f"{name!r} is not 1 to {IFNAMSIZ - 1} bytes long")
    if name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name):
        raise InvalidInputError(field, f"{name!r} is not a valid interface name")


def _rule(field: str, rule: FirewallRule) -> None:
    if not _RULE_ID.fullmatch(rule.id):
        raise InvalidInputError(
            f"{field}.id", f"{rule.id!r}: letters, digits, '_' and '-', at most 48"
        )
    if rule.ports is not None:
        if rule.proto not in _PORTED:
            raise InvalidInputError(
                f"{field}.ports", f"ports need proto tcp or udp, not {rule.proto.value}"
            )
        low, high = rule.ports
        if not PORTS[0] <= low <= PORTS[1] or not PORTS[0] <= high <= PORTS[1]:
            raise InvalidInputError(f"{field}.ports", f"{low}-{high} is outside 1-65535")
        if low > high:
            raise InvalidInputError(f"{field}.ports", f"{low}-{high} is reversed")
    if rule.remote is not None and not isinstance(rule.remote, ipaddress.IPv4Network):
        raise InvalidInputError(f"{field}.remote", f"{rule.remote!r} is not an IPv4 network")


def _tenant(field: str, tenant: TenantEdge) -> None:
    if not 1 <= tenant.vni <= MAX_VNI:
        raise InvalidInputError(f"{field}.vni", f"{tenant.vni} is outside 1..{MAX_VNI}")
    _interface(f"{field}.interface", tenant.interface)
    if "." in tenant.interface:
        raise InvalidInputError(
            f"{field}.interface", f"{tenant.interface!r}: a dot would split its sysctl path"
        )
    if not tenant.cidrs:
        raise InvalidInputError(f"{field}.cidrs", "a tenant network needs at least one CIDR")
    for i, cidr in enumerate(tenant.cidrs):
        if not isinstance(cidr, ipaddress.IPv4Network):
            raise InvalidInputError(f"{field}.cidrs[{i}]", f"{cidr!r} is not an IPv4 network")
    seen: set[str] = set()
    for i, rule in enumerate(tenant.rules):
        _rule(f"{field}.rules[{i}]", rule)
        if rule.id in seen:
            raise InvalidInputError(f"{field}.rules[{i}].id", f"{rule.id!r} is used twice")
        seen.add(rule.id)
    if tenant.routed and tenant.public_ips:
        raise InvalidInputError(
            f"{field}.public_ips", "a routed tenant (nat none) translates nothing: no public IPs"
        )
    nodes: set[ipaddress.IPv4Address] = set()
    for i, public in enumerate(tenant.public_ips):
        if not any(public.node_ip in cidr for cidr in tenant.cidrs):
            raise InvalidInputError(
                f"{field}.public_ips[{i}].node_ip",
                f"{public.node_ip} is in none of the tenant's CIDRs",
            )
        if public.node_ip in nodes:
            raise InvalidInputError(
                f"{field}.public_ips[{i}].node_ip", f"{public.node_ip} has a public IP already"
            )
        nodes.add(public.node_ip)


def validate(plan: GatewayPlan) -> None:
    """Refuse a plan the kernel could not keep apart: InvalidInputError naming the field."""
    _interface("external_interface", plan.external_interface)
    firsts: dict[str, tuple[str, object]] = {}  # unique keys -> (field that took it, value)

    def claim(kind: str, value: object, field: str, what: str) -> None:
        key = f"{kind}:{value}"
        if key in firsts:
            raise InvalidInputError(field, f"{what} {value} is also {firsts[key][0]}")
        firsts[key] = (field, value)

    claim("interface", plan.external_interface, "external_interface", "interface")
    routed: list[tuple[str, ipaddress.IPv4Network]] = []
    for t, tenant in enumerate(plan.tenants):
        field = f"tenants[{t}]"
        _tenant(field, tenant)
        claim("vni", tenant.vni, f"{field}.vni", "vni")
        claim("zone", zone_of(tenant.vni), f"{field}.vni", "conntrack zone")
        claim("interface", tenant.interface, f"{field}.interface", "interface")
        claim("address", tenant.snat_ip, f"{field}.snat_ip", "address")
        for i, public in enumerate(tenant.public_ips):
            claim("address", public.public_ip, f"{field}.public_ips[{i}].public_ip", "address")
        for i, cidr in enumerate(tenant.cidrs if tenant.routed else ()):
            other = next((f for f, c in routed if c.overlaps(cidr)), None)
            if other is not None:
                raise InvalidInputError(
                    f"{field}.cidrs[{i}]",
                    f"{cidr} overlaps routed {other}: the gateway could "
                    "not tell their packets from the external network apart",
                )
            routed.append((f"{field}.cidrs[{i}]", cidr))
