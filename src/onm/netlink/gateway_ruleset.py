"""The nftables table of a gateway host, as libnftables JSON (no I/O here): base chains that
classify each packet to its tenant (conntrack zone and mark, by interface from the tenant side
and by destination address from the external side), the NAT, and each tenant's filter chains.

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

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

from onm.model.edge_rule import Action, Direction, Proto
from onm.netlink.gateway_counters import Builtin, Counter, builtin_counter, rule_counter
from onm.netlink.gateway_tenants import FirewallRule, GatewayPlan, TenantEdge, mark_of, zone_of

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

Json = dict[str, object]
"""One libnftables JSON object."""
_VERDICT: Final[dict[Action, Json]] = {Action.ALLOW: {"accept": None}, Action.DENY: {"drop": None}}
_REMOTE_FIELD: Final = {Direction.EGRESS: "daddr", Direction.INGRESS: "saddr"}
"""Which address of a rule's packets is the external side's."""


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


def ruleset(plan: GatewayPlan, counters: Iterable[Counter]) -> Json:
    """The transaction that replaces onm's table with `plan`'s (a valid plan: `validate`)."""
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
