"""What a gateway host's kernel holds for its tenant networks, computed from a `GatewayPlan`
(no I/O here): one nftables table as libnftables JSON, policy routes, addresses and sysctls.

Theory of operation. Tenants reach the gateway's kernel on interfaces of their own; two tenants
may use one CIDR, so the kernel keeps them apart by three numbers derived from the VNI alone (so
a re-apply, or a tenant joining, never renumbers another):

- a **conntrack zone**: the same 5-tuple in two zones is two connections. Packets in from a
  tenant's interface get the tenant's zone by interface; packets in from the external network
  get it by destination address, since every tenant has its own SNAT address and public IPs are
  unique, so the external address names the tenant network. Both happen in a raw-priority
  prerouting chain, before conntrack looks the packet up.
- a **packet mark**, set in the same place: after conntrack has undone the SNAT of a reply its
  destination is a tenant address that several tenants may share; `ip rule fwmark M lookup M`
  sends it to the tenant's own routing table, which holds the tenant's CIDRs on its interface
  (and nothing else: no tenant CIDR is routed in the main table). An egress packet finds no
  route there and falls through to the main table, toward the external network.
- a **routing table** numbered like the mark.

Routed tenants (an edge pool with `nat: none`: links toward another site that routes the
tenant's CIDRs back through the pool) are kept apart by destination CIDR on the external side,
so no two routed tenants of one gateway may overlap. Their packets are not tracked (`notrack`):
the paths of a routed pool may be asymmetric (splitting spreads one pair's flows over gateways,
and the other site picks its own way back), so a reply may reach a gateway that never saw its
request; their rules match packet by packet, and the default lets the external side in to the
tenant's CIDRs (a router's default, `routed-allowed`, counted) unless a rule denies it.

NAT: packets leaving by the external interface are SNATed by mark, first to a node's public IP
(1:1), else to the tenant's SNAT address; conntrack keeps the binding (ports translated as the
kernel does). New connections from the external network to a public IP are DNATed to its node.
Filtering (forward hook): established and related packets pass; a tenant's packets may only
leave by the external interface and only from its own CIDRs; then the tenant's rules in order,
each with a named counter; then the defaults, also counted: egress allowed, ingress allowed
only to public IPs, otherwise dropped. Unsolicited packets to a SNAT address and a tenant's
packets to the gateway itself (other than ICMP) are dropped and counted.

The table is replaced as a whole in one transaction (`add table`, `flush table`, chains,
counters, rules): rules change atomically, named counters and conntrack state survive.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from onm.errors import InvalidInputError
from onm.model.edge_rule import PORTED as _PORTED
from onm.model.edge_rule import PORTS as PORTS
from onm.model.edge_rule import Action as Action
from onm.model.edge_rule import Direction as Direction
from onm.model.edge_rule import Proto as Proto

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


# --- what the kernel gets ---------------------------------------------------------------------

TABLE_FAMILY: Final = "inet"
TABLE_NAME: Final = "onm-gw"
"""onm's own nftables table; nothing else in the namespace's ruleset is touched."""

# Hook priorities: nft(8), "Table 6. Standard priority names"; the numbers are the kernel's
# (include/uapi/linux/netfilter_ipv4.h, enum nf_ip_hook_priorities).
PRIORITY_RAW: Final = -300
"""NF_IP_PRI_RAW: before conntrack (NF_IP_PRI_CONNTRACK, -200), where `ct zone set` must be."""
PRIORITY_DSTNAT: Final = -100
PRIORITY_FILTER: Final = 0
PRIORITY_SRCNAT: Final = 100

MAX_VNI: Final = (1 << 24) - 1
"""A virtual network id is 24 bits (DESIGN.md section 2, `onm.addressing`)."""
MAX_ZONE: Final = 0xFFFF
"""A conntrack zone id is 16 bits (include/net/netfilter/nf_conntrack_zones.h, u16 id); zone 0
is the default zone, every packet's before a rule sets another."""
MARK_BASE: Final = 1 << 24
"""A tenant's mark and table are MARK_BASE | VNI: bit 24 says "an onm tenant", so no mark or
table number another user of the namespace picks from the small numbers is taken, and none is
one of the kernel's reserved tables (253-255, include/uapi/linux/rtnetlink.h)."""
RULE_PRIORITY: Final = 10000
"""Priority of the `fwmark` policy rules: before the main table's rule (32766)."""
IFNAMSIZ: Final = 16
"""Interface names are at most IFNAMSIZ - 1 bytes (include/uapi/linux/if.h)."""

_RULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")


class Builtin(enum.Enum):
    """A tenant's counters besides its rules' ones (named `vniN.VALUE`; rule ids have no dot)."""

    EGRESS_ALLOWED = "egress-allowed"
    """No rule matched a new egress connection: allowed by default."""
    PUBLIC_ALLOWED = "public-allowed"
    """No rule matched a new connection to a public IP: allowed by default."""
    INGRESS_DROPPED = "ingress-dropped"
    """Unsolicited from the external network (to a node or to the SNAT address): dropped."""
    INVALID_DROPPED = "invalid-dropped"
    """Conntrack state invalid (it would leave untranslated): dropped."""
    SPOOFED_DROPPED = "spoofed-dropped"
    """From the tenant's interface but not from its CIDRs (or not IPv4): dropped."""
    MISROUTED_DROPPED = "misrouted-dropped"
    """Forwarded between a tenant's interface and anything but the external one: dropped."""
    GATEWAY_DROPPED = "gateway-dropped"
    """From the tenant to the gateway's own addresses, other than ICMP: dropped."""
    ROUTED_ALLOWED = "routed-allowed"
    """A routed tenant: no rule matched a packet from the external network: allowed."""


def zone_of(vni: int) -> int:
    """The conntrack zone of `vni`: the VNI itself up to 65535, folded into 1..65535 above
    (`realise` refuses two tenants of one gateway whose zones meet)."""
    return (vni - 1) % MAX_ZONE + 1


def mark_of(vni: int) -> int:
    """The packet mark, and routing table, of `vni`."""
    return MARK_BASE | vni


def rule_counter(vni: int, rule_id: str) -> str:
    """The named counter of one rule: `vni1-rule-3`."""
    return f"vni{vni}-{rule_id}"


def builtin_counter(vni: int, which: Builtin) -> str:
    """The named counter of one default or drop: `vni1.ingress-dropped`."""
    return f"vni{vni}.{which.value}"


@dataclass(frozen=True, slots=True)
class TenantRouting:
    """One tenant's policy routing: `ip rule fwmark MARK lookup TABLE`, and its CIDRs routed
    out of its interface in that table."""

    vni: int
    zone: int
    mark: int
    table: int
    interface: str
    cidrs: tuple[ipaddress.IPv4Network, ...]


@dataclass(frozen=True, slots=True)
class Counter:
    """One named counter of the table, and what it counts."""

    name: str
    vni: int
    rule_id: str | None
    """The rule it belongs to; None for a `Builtin`."""
    builtin: Builtin | None


@dataclass(frozen=True, slots=True)
class GatewayKernel:
    """Everything `realise` computed: apply it with `onm.netlink.gateway.apply`."""

    ruleset: str
    """libnftables JSON (one transaction) that replaces onm's table as a whole."""
    routing: tuple[TenantRouting, ...]
    external_interface: str
    addresses: tuple[ipaddress.IPv4Address, ...]
    """SNAT and public addresses, each a /32 on the external interface (so the gateway answers
    ARP for them there)."""
    sysctls: tuple[tuple[str, int], ...]
    counters: tuple[Counter, ...]


Json = dict[str, object]
"""One libnftables JSON object."""
_VERDICT: Final[dict[Action, Json]] = {Action.ALLOW: {"accept": None}, Action.DENY: {"drop": None}}
_REMOTE_FIELD: Final = {Direction.EGRESS: "daddr", Direction.INGRESS: "saddr"}
"""Which address of a rule's packets is the external side's."""


# --- validation -------------------------------------------------------------------------------


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


# --- the ruleset -----------------------------------------------------------------------------


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _match(left: Json, right: object, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _prefix(network: ipaddress.IPv4Network) -> Json:
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def _cidr_set(cidrs: Sequence[ipaddress.IPv4Network]) -> object:
    return _prefix(cidrs[0]) if len(cidrs) == 1 else {"set": [_prefix(c) for c in cidrs]}


def _counter(name: str) -> Json:
    return {"counter": name}


def _established() -> Json:
    return _match({"ct": {"key": "state"}}, ["established", "related"], "in")


def _invalid() -> Json:
    return _match({"ct": {"key": "state"}}, "invalid", "in")


def _jumps(key: Json, targets: Sequence[tuple[object, str]], verb: str = "goto") -> Json:
    return {"vmap": {"key": key, "data": {"set": [[k, {verb: {"target": c}}] for k, c in targets]}}}


def _rule_json(chain: str, *expr: Json) -> Json:
    return {
        "add": {
            "rule": {
                "family": TABLE_FAMILY,
                "table": TABLE_NAME,
                "chain": chain,
                "expr": list(expr),
            }
        }
    }


def _base_chain(name: str, kind: str, hook: str, priority: int) -> Json:
    return {
        "add": {
            "chain": {
                "family": TABLE_FAMILY,
                "table": TABLE_NAME,
                "name": name,
                "type": kind,
                "hook": hook,
                "prio": priority,
                "policy": "accept",
            }
        }
    }


def _chain(name: str) -> Json:
    return {"add": {"chain": {"family": TABLE_FAMILY, "table": TABLE_NAME, "name": name}}}


def _rule_matches(rule: FirewallRule) -> list[Json]:
    """The expressions that select a rule's packets (IPv4 only: the chains check that first)."""
    matches: list[Json] = []
    if rule.proto is not Proto.ANY:
        if rule.ports is not None:
            low, high = rule.ports
            port: object = low if low == high else {"range": [low, high]}
            matches.append(_match(_payload(rule.proto.value, "dport"), port))
        else:
            matches.append(_match(_meta("l4proto"), rule.proto.value))
    if rule.remote is not None:
        matches.append(_match(_payload("ip", _REMOTE_FIELD[rule.direction]), _prefix(rule.remote)))
    return matches


class _Chains:
    """The names of one tenant's regular chains."""

    def __init__(self, vni: int) -> None:
        self.classify = f"vni{vni}-classify"
        self.snat = f"vni{vni}-snat"
        self.egress = f"vni{vni}-egress"
        self.ingress = f"vni{vni}-ingress"
        self.gateway = f"vni{vni}-gateway"

    def all(self) -> tuple[str, ...]:
        return (self.classify, self.snat, self.egress, self.ingress, self.gateway)


# The base chains: name -> (type, hook, priority).
BASE_CHAINS: Final = {
    "prerouting-raw": ("filter", "prerouting", PRIORITY_RAW),
    "prerouting-nat": ("nat", "prerouting", PRIORITY_DSTNAT),
    "postrouting-nat": ("nat", "postrouting", PRIORITY_SRCNAT),
    "forward": ("filter", "forward", PRIORITY_FILTER),
    "input": ("filter", "input", PRIORITY_FILTER),
}


def _tenant_rules(plan: GatewayPlan, tenant: TenantEdge) -> list[Json]:
    chains = _Chains(tenant.vni)
    ext = plan.external_interface
    vni = tenant.vni

    def count(which: Builtin) -> Json:
        return _counter(builtin_counter(vni, which))

    drop: Json = {"drop": None}
    accept: Json = {"accept": None}
    cidrs = _cidr_set(tenant.cidrs)
    # `notrack` is ignored once `ct zone set` has attached a template (nft_ct.c,
    # nft_notrack_eval): a routed tenant, never tracked, gets no zone.
    track: Json = (
        {"notrack": None}
        if tenant.routed
        else {"mangle": {"key": {"ct": {"key": "zone"}}, "value": zone_of(vni)}}
    )
    out = [
        _rule_json(chains.classify, track),
        _rule_json(chains.classify, {"mangle": {"key": _meta("mark"), "value": mark_of(vni)}}),
    ]
    if tenant.public_ips:
        ones = [[str(p.node_ip), str(p.public_ip)] for p in tenant.public_ips]
        source = {"map": {"key": _payload("ip", "saddr"), "data": {"set": ones}}}
        out.append(_rule_json(chains.snat, {"snat": {"family": "ip", "addr": source}}))
    if not tenant.routed:
        snat: Json = {"snat": {"family": "ip", "addr": str(tenant.snat_ip)}}
        out.append(_rule_json(chains.snat, snat))

    ipv4_only = _match(_meta("nfproto"), "ipv4", "!=")
    out += [
        _rule_json(chains.egress, _invalid(), count(Builtin.INVALID_DROPPED), drop),
        _rule_json(chains.egress, ipv4_only, count(Builtin.SPOOFED_DROPPED), drop),
        _rule_json(
            chains.egress,
            _match(_payload("ip", "saddr"), cidrs, "!="),
            count(Builtin.SPOOFED_DROPPED),
            drop,
        ),
        _rule_json(
            chains.egress,
            _match(_meta("oifname"), ext, "!="),
            count(Builtin.MISROUTED_DROPPED),
            drop,
        ),
    ]
    ingress = [
        _rule_json(chains.ingress, _invalid(), count(Builtin.INVALID_DROPPED), drop),
        _rule_json(chains.ingress, ipv4_only, count(Builtin.MISROUTED_DROPPED), drop),
        _rule_json(
            chains.ingress,
            _match(_meta("iifname"), ext, "!="),
            count(Builtin.MISROUTED_DROPPED),
            drop,
        ),
    ]
    for rule in tenant.rules:
        chain = chains.egress if rule.direction is Direction.EGRESS else chains.ingress
        line = _rule_json(
            chain, *_rule_matches(rule), _counter(rule_counter(vni, rule.id)), _VERDICT[rule.action]
        )
        (out if rule.direction is Direction.EGRESS else ingress).append(line)
    out.append(_rule_json(chains.egress, count(Builtin.EGRESS_ALLOWED), accept))
    if tenant.public_ips:
        dnat = _match({"ct": {"key": "status"}}, "dnat", "in")
        ingress.append(_rule_json(chains.ingress, dnat, count(Builtin.PUBLIC_ALLOWED), accept))
    if tenant.routed:
        ingress.append(_rule_json(chains.ingress, count(Builtin.ROUTED_ALLOWED), accept))
    else:
        ingress.append(_rule_json(chains.ingress, count(Builtin.INGRESS_DROPPED), drop))
    out += ingress
    out += [
        _rule_json(chains.gateway, _match(_meta("l4proto"), "icmp"), accept),
        _rule_json(chains.gateway, count(Builtin.GATEWAY_DROPPED), drop),
    ]
    return out


def _counters(tenant: TenantEdge) -> list[Counter]:
    applies = {
        Builtin.PUBLIC_ALLOWED: bool(tenant.public_ips),
        Builtin.ROUTED_ALLOWED: tenant.routed,
    }
    builtins = [
        Counter(builtin_counter(tenant.vni, b), tenant.vni, None, b)
        for b in Builtin
        if applies.get(b, True)
    ]
    rules = [Counter(rule_counter(tenant.vni, r.id), tenant.vni, r.id, None) for r in tenant.rules]
    return rules + builtins


def _ruleset(plan: GatewayPlan, counters: Iterable[Counter]) -> Json:
    ext = plan.external_interface
    table = {"family": TABLE_FAMILY, "name": TABLE_NAME}
    commands: list[Json] = [{"add": {"table": dict(table)}}, {"flush": {"table": dict(table)}}]
    for name, (kind, hook, priority) in BASE_CHAINS.items():
        commands.append(_base_chain(name, kind, hook, priority))
    for tenant in plan.tenants:
        commands += [_chain(name) for name in _Chains(tenant.vni).all()]
    commands += [
        {"add": {"counter": {"family": TABLE_FAMILY, "table": TABLE_NAME, "name": c.name}}}
        for c in counters
    ]
    by_interface = [(t.interface, _Chains(t.vni)) for t in plan.tenants]
    by_address = [
        (str(address), _Chains(t.vni))
        for t in plan.tenants
        for address in (t.snat_ip, *(p.public_ip for p in t.public_ips))
    ]
    publics = [[str(p.public_ip), str(p.node_ip)] for t in plan.tenants for p in t.public_ips]
    if plan.tenants:
        commands += [
            _rule_json(
                "prerouting-raw",
                _jumps(_meta("iifname"), [(i, c.classify) for i, c in by_interface]),
            ),
            _rule_json(
                "prerouting-raw",
                _match(_meta("iifname"), ext),
                _jumps(_payload("ip", "daddr"), [(a, c.classify) for a, c in by_address]),
            ),
            _rule_json("forward", _established(), {"accept": None}),
            _rule_json(
                "forward", _jumps(_meta("iifname"), [(i, c.egress) for i, c in by_interface])
            ),
            _rule_json(
                "forward", _jumps(_meta("oifname"), [(i, c.ingress) for i, c in by_interface])
            ),
            _rule_json("input", _established(), {"accept": None}),
            _rule_json(
                "input", _jumps(_meta("iifname"), [(i, c.gateway) for i, c in by_interface])
            ),
        ]
    for tenant in plan.tenants:
        if tenant.routed:  # from the external network, a routed tenant's own addresses
            commands.append(
                _rule_json(
                    "prerouting-raw",
                    _match(_meta("iifname"), ext),
                    _match(_payload("ip", "daddr"), _cidr_set(tenant.cidrs)),
                    {"goto": {"target": _Chains(tenant.vni).classify}},
                )
            )
    translated = [(mark_of(t.vni), _Chains(t.vni).snat) for t in plan.tenants if not t.routed]
    if translated:
        commands.append(
            _rule_json(
                "postrouting-nat", _match(_meta("oifname"), ext), _jumps(_meta("mark"), translated)
            )
        )
    if publics:
        to_node = {"map": {"key": _payload("ip", "daddr"), "data": {"set": publics}}}
        commands.append(
            _rule_json(
                "prerouting-nat",
                _match(_meta("iifname"), ext),
                {"dnat": {"family": "ip", "addr": to_node}},
            )
        )
    for tenant in plan.tenants:
        commands.append(
            _rule_json(
                "input",
                _match(_meta("iifname"), ext),
                _match(_payload("ip", "daddr"), str(tenant.snat_ip)),
                _counter(builtin_counter(tenant.vni, Builtin.INGRESS_DROPPED)),
                {"drop": None},
            )
        )
        commands += _tenant_rules(plan, tenant)
    return {"nftables": commands}


def withdrawn(
    earlier: GatewayKernel, now: GatewayKernel
) -> tuple[tuple[TenantRouting, ...], tuple[ipaddress.IPv4Address, ...]]:
    """What `earlier` put in the kernel that `now` has not: the policy routing of tenants gone,
    and the external addresses no tenant holds any more (a gateway removed, or its address
    moved: left on the interface, the host would go on answering ARP for an address that may
    now be another host's, and take what arrives for it)."""
    kept = {t.mark for t in now.routing}
    held = set(now.addresses)
    return (
        tuple(t for t in earlier.routing if t.mark not in kept),
        tuple(a for a in earlier.addresses if a not in held),
    )


def realise(plan: GatewayPlan) -> GatewayKernel:
    """The kernel state for `plan`; InvalidInputError (naming the field) if it is refused."""
    validate(plan)
    counters = [c for t in plan.tenants for c in _counters(t)]
    routing = tuple(
        TenantRouting(
            t.vni, zone_of(t.vni), mark_of(t.vni), mark_of(t.vni), t.interface, tuple(t.cidrs)
        )
        for t in plan.tenants
    )
    # ip-sysctl.rst. Forwarding on. The reverse-path filter cannot tell two tenants with one
    # CIDR apart for ARP (an ARP request carries no mark, and the tenant's CIDR is in no table
    # looked up without one), so it is off on tenant interfaces (the kernel uses the larger of
    # `all` and the interface's value: `all` must be 0, or 2 with a default route); the
    # ruleset's spoof check stands in for it. src_valid_mark makes a loose `all` consult the
    # tenant's own table for its IPv4 packets.
    sysctls: list[tuple[str, int]] = [("net.ipv4.ip_forward", 1)]
    for t in plan.tenants:
        sysctls += [
            (f"net.ipv4.conf.{t.interface}.rp_filter", 0),
            (f"net.ipv4.conf.{t.interface}.src_valid_mark", 1),
        ]
    addresses = tuple(
        a for t in plan.tenants for a in (t.snat_ip, *(p.public_ip for p in t.public_ips))
    )
    return GatewayKernel(
        ruleset=json.dumps(_ruleset(plan, counters), separators=(",", ":")),
        routing=routing,
        external_interface=plan.external_interface,
        addresses=addresses,
        sysctls=tuple(sysctls),
        counters=tuple(counters),
    )
