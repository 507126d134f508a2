"""Liveness of edge gateways as a sending agent sees it, sans-IO (seed 1: a sender stops using
an intermediate destination that stopped forwarding; DESIGN.md section 5).

Theory of operation:
- Every sending agent probes each gateway of its networks' edge pools on its own, every
  `probe_interval` of the gateway's pool: an ICMPv6 echo request from this host's agent
  address to the gateway's (`onm.addressing.agent_address`), over the substrate like any
  packet. The gateway's *agent* answers it, not its kernel, so a gateway whose process was
  killed or whose link is down stops answering even if its host still runs.
- A gateway is alive from the start (a new pool works at once) and while an answer came in the
  last `DEAD_AFTER` intervals; silent longer, it is dead: its flows are hashed again over the
  survivors by `onm.agent.flows`. One answer makes it alive again.
- A change is counted and reported (`gateway_changes`), so the agent's caller can tell the
  manager and rebuild its selection.
- Answers are matched by identifier and by the host they come from: one answer stands for
  every gateway on that host (of one pool or several); anything else is not ours and is
  dropped by the caller.
Time passes only when told (`now`).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from onm.addressing import agent_address
from onm.agent.actions import ToSubstrate
from onm.agent.tables import GatewayEntry, Tables
from onm.model.ids import EdgePoolId, GatewayId
from onm.packet import icmpv6, ipv6
from onm.packet.drop import DropReason
from onm.packet.icmpv6 import IcmpV6Message, IcmpV6Type
from onm.packet.ipproto import IpProtocol

DEAD_AFTER: Final = 2.5
"""Intervals without an answer after which a gateway is dead: two probes lost, and the third
late by half an interval."""
IDENTIFIER: Final = 0x6F6E
"""The echo identifier of every probe ("on"): answers carry it back (RFC 4443 section 4.2)."""
HOP_LIMIT: Final = 64
_STAMP = struct.Struct("!Q")


@dataclass(slots=True)
class Target:
    gateway: GatewayEntry
    interval: dt.timedelta
    heard: dt.datetime
    """The last answer (or when probing began: alive until proven silent)."""
    due: dt.datetime
    alive: bool = True
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    gateway_id: GatewayId
    pool_id: EdgePoolId
    alive: bool


@dataclass(slots=True)
class Probes:
    own: bytes = b""
    """This host's agent address: probes leave from it and answers come back to it."""
    targets: dict[GatewayId, Target] = field(default_factory=dict)
    sent: int = 0
    answered: int = 0

    def update(self, tables: Tables, own_prefix: int, now: dt.datetime) -> None:
        """Probe the remote gateways of the pools our nodes may send to; keep what is known
        of those that stay."""
        self.own = agent_address(own_prefix)
        wanted: dict[GatewayId, tuple[GatewayEntry, float]] = {}
        sending = {port.network.vni for port in tables.ports.values()}
        for pool in tables.edge_pools.values():
            if pool.vni not in sending:
                continue
            for gateway in pool.gateways.values():
                if not gateway.local:
                    wanted[gateway.id] = (gateway, pool.probe_interval)
        for gone in self.targets.keys() - wanted.keys():
            del self.targets[gone]
        for gateway_id, (gateway, interval) in wanted.items():
            every = dt.timedelta(seconds=interval)
            target = self.targets.get(gateway_id)
            if target is None:
                self.targets[gateway_id] = Target(gateway, every, now, now)
            else:
                target.gateway = gateway
                target.due = min(target.due, now + every)
                target.interval = every

    def alive(self, gateway_id: GatewayId) -> bool:
        target = self.targets.get(gateway_id)
        return target is None or target.alive

    def next_timer(self) -> dt.datetime | None:
        return min((t.due for t in self.targets.values()), default=None)

    def on_timer(self, now: dt.datetime) -> tuple[list[ToSubstrate], list[Change]]:
        """Probes due at `now`, and the gateways found dead since the last look."""
        sent: list[ToSubstrate] = []
        changes: list[Change] = []
        for target in self.targets.values():
            if target.due > now:
                continue
            if target.alive and now - target.heard > target.interval * DEAD_AFTER:
                target.alive = False
                changes.append(Change(target.gateway.id, target.gateway.pool_id, False))
            target.sequence = (target.sequence + 1) & 0xFFFF
            target.due = now + target.interval
            sent.append(ToSubstrate(self._probe(target, now)))
            self.sent += 1
        return sent, changes

    def _probe(self, target: Target, now: dt.datetime) -> bytes:
        dst = agent_address(target.gateway.prefix)
        body = _STAMP.pack(int(now.timestamp() * 1e6))
        message = IcmpV6Message(
            IcmpV6Type.ECHO_REQUEST, 0, icmpv6.echo_rest(IDENTIFIER, target.sequence), body
        )
        payload = icmpv6.build(message, self.own, dst)
        header = ipv6.pack_header(0, 0, len(payload), IpProtocol.ICMPV6, HOP_LIMIT, self.own, dst)
        return header + payload

    def on_answer(self, source: bytes, message: IcmpV6Message, now: dt.datetime) -> list[Change]:
        """An echo reply to our agent address: every gateway on the host it comes from is
        alive (an edge host may run gateways of several pools, its one agent answering)."""
        if message.rest[:2] != IDENTIFIER.to_bytes(2, "big"):
            return []
        heard = [t for t in self.targets.values() if agent_address(t.gateway.prefix) == source]
        if heard:
            self.answered += 1
        changes = []
        for target in heard:
            target.heard = now
            if not target.alive:
                target.alive = True
                changes.append(Change(target.gateway.id, target.gateway.pool_id, True))
        return changes

    def alive_of(self, gateways: Iterable[GatewayEntry]) -> frozenset[str]:
        return frozenset(g.id for g in gateways if self.alive(g.id))


def echo_of(packet: bytes) -> tuple[int, bytes, IcmpV6Message] | DropReason:
    """(echo type, source, message) of an ICMPv6 echo request or reply to an agent address;
    a drop reason for anything else (agent addresses take nothing else)."""
    parsed = ipv6.parse(packet)
    if isinstance(parsed, DropReason):
        return parsed
    h = parsed.header
    if h.next_header != IpProtocol.ICMPV6:
        return DropReason.NOT_LOCAL_DESTINATION
    message = icmpv6.parse(parsed.payload, h.src, h.dst)
    if isinstance(message, DropReason):
        return message
    if message.type not in (IcmpV6Type.ECHO_REQUEST, IcmpV6Type.ECHO_REPLY) or message.code:
        return DropReason.NOT_LOCAL_DESTINATION
    return message.type, h.src, message


def answer(source: bytes, request: IcmpV6Message, own: bytes) -> bytes:
    """The echo reply from agent address `own` to an echo request from `source` (RFC 4443
    section 4.2: identifier, sequence and data sent back as they came)."""
    reply = IcmpV6Message(IcmpV6Type.ECHO_REPLY, 0, request.rest, request.body)
    payload = icmpv6.build(reply, own, source)
    return ipv6.pack_header(0, 0, len(payload), IpProtocol.ICMPV6, HOP_LIMIT, own, source) + payload
