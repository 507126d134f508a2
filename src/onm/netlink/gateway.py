"""A gateway host's kernel made to hold what `gateway_plan.realise` computed, in one network
namespace: sysctls, the SNAT and public addresses on the external interface, each tenant's
policy rule and routing table, and onm's nftables table.

Rules: every step is an idempotent `ensure` (a second `apply` of the same plan changes
nothing and keeps conntrack state); the order puts the routing in place before the ruleset that
marks packets toward it. What an earlier plan had and this one has not (a tenant removed, a
gateway's address moved) is taken away by `withdraw`, given the earlier realisation: nothing is
found by listing.
"""

from __future__ import annotations

import ipaddress
import os

from onm.netlink import kernel, nftables
from onm.netlink.gateway_plan import RULE_PRIORITY, GatewayKernel, TenantRouting, withdrawn

_HOST = 32
"""SNAT and public addresses are single addresses (/32) on the external interface."""


def apply(netns: str | None, wanted: GatewayKernel) -> None:
    """Make the kernel in `netns` hold `wanted`."""
    # The helper child writes the sysctls; "here" is this process's namespace, by its path.
    kernel.ensure_sysctls(netns or f"/proc/{os.getpid()}/ns/net", list(wanted.sysctls))
    with kernel.Kernel(netns) as k:
        for address in wanted.addresses:
            k.ensure_address(
                wanted.external_interface, ipaddress.IPv4Interface(f"{address}/{_HOST}")
            )
        for tenant in wanted.routing:
            _ensure_routing(k, tenant)
    nftables.apply(netns, wanted.ruleset)


def _ensure_routing(k: kernel.Kernel, tenant: TenantRouting) -> None:
    for cidr in tenant.cidrs:
        k.ensure_link_route(cidr, tenant.interface, tenant.table)
    k.ensure_fwmark_rule(4, tenant.mark, tenant.table, RULE_PRIORITY)


def withdraw(netns: str | None, earlier: GatewayKernel, now: GatewayKernel) -> None:
    """Take away what `earlier` had and `now` has not (`gateway_plan.withdrawn`): the policy
    rules of tenants gone (their tables are then never looked up) and the external addresses
    no gateway here holds any more."""
    routing, addresses = withdrawn(earlier, now)
    with kernel.Kernel(netns) as k:
        for tenant in routing:
            k.delete_fwmark_rule(4, tenant.mark, tenant.table, RULE_PRIORITY)
        for address in addresses:
            k.delete_address(
                earlier.external_interface, ipaddress.IPv4Interface(f"{address}/{_HOST}")
            )
