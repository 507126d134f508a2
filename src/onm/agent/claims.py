"""Addresses local nodes use that are not their own, reported to the manager as *claims*
(seed 0's automatic detection of pools: DESIGN.md section 4; the manager decides,
onm.manager.detection).

A node that sends from an address it does not own (an IP packet's source, an ARP or gratuitous
ARP's sender) is still dropped as spoofed, and counted; when that address is inside the node's
network and could be shared (not the network or broadcast address, not a gateway, not another
node's own address as this agent knows the residents), it is also a claim; the manager checks
again and refuses what is not free. A claim is reported when first seen and again
at most every `REFRESH` while the node keeps using it, so the manager knows it is live (it
counts claims refreshed within a minute). Bounded: at most `MAX_PER_PORT` addresses per node are
tracked; one unseen for `FORGET_AFTER` makes room, and beyond that claims are counted and not
reported. Pure: time is `now`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from typing import Final

from onm.agent.actions import Action, Claim, ReportClaims
from onm.agent.counters import Counters, Event
from onm.agent.tables import Port, ResidentEntry, Tables

REFRESH: Final = dt.timedelta(seconds=10)
FORGET_AFTER: Final = dt.timedelta(seconds=60)
MAX_PER_PORT: Final = 8


class Claims:
    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self._reported: dict[str, dict[bytes, dt.datetime]] = {}
        """Interface -> claimed address -> when it was last reported."""
        self._residents: Mapping[tuple[int, bytes], ResidentEntry] = {}

    def saw(self, port: Port, ip: bytes, now: dt.datetime) -> list[Action]:
        """`port`'s node used `ip`, which is not its own: the report to send, if one is due."""
        network = port.network
        if ip in network.gateways or (network.vni, ip) in self._residents:
            return []
        address = ipaddress.IPv4Address(ip)
        cidr = next((c for c in network.cidrs if address in c), None)
        if cidr is None or address in (cidr.network_address, cidr.broadcast_address):
            return []
        mine = self._reported.setdefault(port.interface, {})
        last = mine.get(ip)
        if last is not None and now - last < REFRESH:
            return []
        if last is None and len(mine) >= MAX_PER_PORT:
            for old, at in list(mine.items()):
                if now - at >= FORGET_AFTER:
                    del mine[old]
            if len(mine) >= MAX_PER_PORT:
                self.counters.event(Event.CLAIMS_IGNORED)
                return []
        mine[ip] = now
        self.counters.event(Event.CLAIMS_REPORTED)
        return [ReportClaims((Claim(port.node_id, ip),))]

    def keep(self, tables: Tables) -> None:
        """New tables: forget the claims of ports that are gone; know the new residents."""
        self._residents = tables.residents
        for gone in set(self._reported) - tables.interfaces:
            del self._reported[gone]
