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

The pieces: `onm.netlink.gateway_tenants` (the plan, the numbers, the checks),
`onm.netlink.gateway_ruleset` (the nftables table: classification, NAT, filtering) and
`onm.netlink.gateway_counters` (its named counters); this module puts them together and
re-exports their names.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Final

from onm.model.edge_rule import PORTS as PORTS
from onm.model.edge_rule import Action as Action
from onm.model.edge_rule import Direction as Direction
from onm.model.edge_rule import Proto as Proto
from onm.netlink.gateway_counters import Builtin as Builtin
from onm.netlink.gateway_counters import Counter as Counter
from onm.netlink.gateway_counters import builtin_counter as builtin_counter
from onm.netlink.gateway_counters import rule_counter as rule_counter
from onm.netlink.gateway_counters import tenant_counters
from onm.netlink.gateway_ruleset import BASE_CHAINS as BASE_CHAINS
from onm.netlink.gateway_ruleset import PRIORITY_DSTNAT as PRIORITY_DSTNAT
from onm.netlink.gateway_ruleset import PRIORITY_FILTER as PRIORITY_FILTER
from onm.netlink.gateway_ruleset import PRIORITY_RAW as PRIORITY_RAW
from onm.netlink.gateway_ruleset import PRIORITY_SRCNAT as PRIORITY_SRCNAT
from onm.netlink.gateway_ruleset import TABLE_FAMILY as TABLE_FAMILY
from onm.netlink.gateway_ruleset import TABLE_NAME as TABLE_NAME
from onm.netlink.gateway_ruleset import ruleset
from onm.netlink.gateway_tenants import IFNAMSIZ as IFNAMSIZ
from onm.netlink.gateway_tenants import MARK_BASE as MARK_BASE
from onm.netlink.gateway_tenants import MAX_VNI as MAX_VNI
from onm.netlink.gateway_tenants import MAX_ZONE as MAX_ZONE
from onm.netlink.gateway_tenants import FirewallRule as FirewallRule
from onm.netlink.gateway_tenants import GatewayPlan as GatewayPlan
from onm.netlink.gateway_tenants import PublicIp as PublicIp
from onm.netlink.gateway_tenants import TenantEdge as TenantEdge
from onm.netlink.gateway_tenants import mark_of as mark_of
from onm.netlink.gateway_tenants import validate as validate
from onm.netlink.gateway_tenants import zone_of as zone_of

RULE_PRIORITY: Final = 10000
"""Priority of the `fwmark` policy rules: before the main table's rule (32766)."""


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
    counters = [c for t in plan.tenants for c in tenant_counters(t)]
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
        ruleset=json.dumps(ruleset(plan, counters), separators=(",", ":")),
        routing=routing,
        external_interface=plan.external_interface,
        addresses=addresses,
        sysctls=tuple(sysctls),
        counters=tuple(counters),
    )
