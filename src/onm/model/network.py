"""A virtual IPv4 network of one tenant, with its 24-bit network id (seed FIG. 2D)."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass

from onm.model.ids import NetworkId, TenantId


class Encoding(enum.StrEnum):
    """How the network's packets cross the substrate (DESIGN.md section 3)."""

    SIIT = "siit"  # re-headering, RFC 7915
    ENCAP = "encap"  # IPv4-in-IPv6, RFC 2473


class AutoPools(enum.StrEnum):
    """What a pool detected in a network does (two nodes claiming one IP no node owns): nothing,
    a `proposed` pool an operator accepts or rejects, or a live pool at once."""

    OFF = "off"
    PROPOSE = "propose"
    ACCEPT = "accept"


@dataclass(frozen=True, slots=True)
class Network:
    id: NetworkId
    tenant_id: TenantId
    name: str
    vni: int
    """The 24-bit virtual network id embedded in substrate addresses."""
    cidrs: tuple[ipaddress.IPv4Network, ...]
    encoding: Encoding
    created_at: dt.datetime
    auto_pools: AutoPools = AutoPools.PROPOSE
    """What a pool detected in this network does (onm.model.pool.AutoPools)."""

    @property
    def gateways(self) -> tuple[ipaddress.IPv4Address, ...]:
        """The router address of each CIDR, which the agent answers for: its first usable one."""
        return tuple(cidr.network_address + 1 for cidr in self.cidrs)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The first CIDR's router address."""
        return self.gateways[0]

    def gateway_for(self, ip: ipaddress.IPv4Address) -> ipaddress.IPv4Address | None:
        """The router address of the CIDR holding `ip` (None: not in this network)."""
        return next((cidr.network_address + 1 for cidr in self.cidrs if ip in cidr), None)

    def contains(self, ip: ipaddress.IPv4Address) -> bool:
        return any(ip in cidr for cidr in self.cidrs)
