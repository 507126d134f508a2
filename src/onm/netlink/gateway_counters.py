"""The named counters of a gateway's nftables table: one per firewall rule of each tenant and
one per default or drop (`Builtin`), named so the agent's metrics can tell which is which
(`onm_agent_gateway_rule_packets_total`, `onm_agent_gateway_default_packets_total`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from onm.netlink.gateway_tenants import TenantEdge


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


def rule_counter(vni: int, rule_id: str) -> str:
    """The named counter of one rule: `vni1-rule-3`."""
    return f"vni{vni}-{rule_id}"


def builtin_counter(vni: int, which: Builtin) -> str:
    """The named counter of one default or drop: `vni1.ingress-dropped`."""
    return f"vni{vni}.{which.value}"


@dataclass(frozen=True, slots=True)
class Counter:
    """One named counter of the table, and what it counts."""

    name: str
    vni: int
    rule_id: str | None
    """The rule it belongs to; None for a `Builtin`."""
    builtin: Builtin | None


def tenant_counters(tenant: TenantEdge) -> list[Counter]:
    """The counters `tenant`'s part of the table holds: its rules', then the defaults it has."""
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
