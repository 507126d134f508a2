"""Active health checks of the pool members this host runs, sans-IO (seed 0: the communication
manager monitors its computing nodes; DESIGN.md section 4).

Theory of operation:
- The agent owns each member's port, so it checks the member the way a client would, from the
  member network's gateway address and router MAC, with frames it writes straight into the
  port (as OVN's service monitor does): the member's own IP stack answers.
  - `icmp`: an echo request; the echo reply passes.
  - `tcp`: a SYN to the port; a SYN-ACK passes (answered with a RST), a RST fails.
  - `http`: the connection as `tcp`, then `GET PATH HTTP/1.0`; the response's status line
    passes with 2xx or 3xx, anything else fails; the connection is reset once it is read.
  - `none`: no probe; the member is trusted from the start and watched passively (below).
  A probe with no verdict after the check's `timeout` fails. Frames that answer a probe are
  taken here; everything else from the member goes on to forwarding.
- Rise and fall: a new member is `initial` until its first verdict: a pass makes it `up` at
  once, `fall` failures in a row `down`; `up` needs `fall` failures in a row to go `down`,
  `down` needs `rise` passes in a row to come back.
- Passive liveness (`none`): every `interval` the member's traffic is looked at. A packet
  from the member in that interval passes; packets delivered to it as the pool with nothing
  back from it in that interval fail; neither (idle) decides nothing. `fall` failures in a row
  make it `down`, `rise` passes `up`. A member held down passively gets no traffic, so it could
  never prove itself again: after `PASSIVE_HOLD` intervals it is `up` again on probation (as
  Envoy returns an ejected host), and the next interval with traffic and no answer takes it
  down again.
- Load (`least-loaded`): the packets delivered to each member as the pool, per second since
  the previous report, go with every report.
- Reports: a change of health is reported at once; every member's health is reported again
  at least every `HEALTH_REPORT_EVERY` seconds (the manager holds a silent agent's members
  `unknown` after three missed reports). `initial` is never reported: it is the manager's.
- Time passes only when told (`now`); `next_timer()` says when `on_timer` has work.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from onm.agent.actions import Action, MemberHealth, ReportHealth, ToNode
from onm.agent.emission import IPV4
from onm.agent.tables import Tables
from onm.model import NodeId
from onm.model.ids import PoolId
from onm.model.pool import HEALTH_REPORT_EVERY, CheckKind, Health, HealthCheck
from onm.packet import icmpv4, ipv4, tcp
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.tcp import TcpFlag, TcpHeader, TcpSegment

ECHO_ID = 0x6F6E  # "on": the identifier of every echo request a check sends
PORTS = range(33000, 61000)
"""Source ports of TCP and HTTP checks (one per probe, in turn; the member sees them as a
client's ephemeral ports)."""
STATUS_LINE = re.compile(rb"^HTTP/\d\.\d (\d{3})")
REPORT_EVERY = dt.timedelta(seconds=HEALTH_REPORT_EVERY)
LOAD_WINDOW = dt.timedelta(seconds=1)
"""The shortest time a load is measured over (a report sent at once after another keeps the
load measured before)."""
PASSIVE_HOLD = 10
"""Intervals a member held down by passive liveness waits before it is tried again."""
ISN_STEP = 0x01000193


@dataclass(frozen=True, slots=True)
class Target:
    """A member this host runs, and how to reach it from its network's gateway."""

    pool_id: PoolId
    node_id: NodeId
    interface: str
    node_mac: bytes
    node_ip: bytes
    gateway_ip: bytes
    router_mac: bytes
    check: HealthCheck
    pool_ip: bytes = b""
    """The pool's IP: what the member is sent as a member (its load, passive liveness)."""


@dataclass(slots=True)
class Probe:
    """A check in flight."""

    sent_at: dt.datetime
    sequence: int
    port: int = 0
    """TCP/HTTP: our source port."""
    iss: int = 0
    """TCP/HTTP: our initial sequence number."""
    requested: bool = False
    """HTTP: the GET has been sent."""


@dataclass(slots=True)
class Watched:
    target: Target
    health: Health = Health.INITIAL
    passes: int = 0
    fails: int = 0
    next_at: dt.datetime | None = None
    probe: Probe | None = None
    changed: bool = False
    last_seen: dt.datetime | None = None
    """The member's last packet (passive liveness)."""
    delivered: int = 0
    """Packets delivered to it as the pool, as counted at the last passive look."""
    held_until: dt.datetime | None = None
    """Held down by passive liveness until then."""
    load: float = 0.0
    load_count: int = 0
    load_at: dt.datetime | None = None


@dataclass(slots=True)
class Monitor:
    """The checks of this host's pool members."""

    watched: dict[tuple[PoolId, NodeId], Watched] = field(default_factory=dict)
    by_interface: dict[str, list[Watched]] = field(default_factory=dict)
    reported_at: dt.datetime | None = None
    delivered: Mapping[tuple[str, bytes], int] = field(default_factory=dict)
    """(interface, pool IP) -> packets delivered to a member as the pool (the core's count)."""
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- what to check ----------------------------------------------------------------------

    def update(self, targets: Iterable[Target], now: dt.datetime) -> None:
        """Check exactly `targets` from now on; a member kept keeps its state (a new check
        setting starts its counts again)."""
        fresh: dict[tuple[PoolId, NodeId], Watched] = {}
        for target in targets:
            key = (target.pool_id, target.node_id)
            old = self.watched.get(key)
            if old is not None and old.target == target:
                fresh[key] = old
                continue
            watched = Watched(target, next_at=now)
            if old is not None:
                watched.health = old.health
            passive = target.check.kind is CheckKind.NONE
            if passive and (old is None or old.target.check.kind is not CheckKind.NONE):
                watched.health, watched.changed = Health.UP, True
            fresh[key] = watched
        self.watched = fresh
        self.by_interface = {}
        for w in fresh.values():
            self.by_interface.setdefault(w.target.interface, []).append(w)

    def seen(self, interface: str, now: dt.datetime) -> None:
        """A packet from the member on `interface` (passive liveness)."""
        for w in self.by_interface.get(interface, ()):
            w.last_seen = now

    def health(self, pool_id: PoolId, node_id: NodeId) -> Health | None:
        found = self.watched.get((pool_id, node_id))
        return None if found is None else found.health

    # --- timers -----------------------------------------------------------------------------

    def next_timer(self) -> dt.datetime | None:
        times = []
        for w in self.watched.values():
            if w.probe is not None:
                times.append(w.probe.sent_at + _seconds(w.target.check.timeout))
            elif w.next_at is not None:
                times.append(w.next_at)
        if self._reportable():
            due = self.reported_at + REPORT_EVERY if self.reported_at else None
            times.append(due or dt.datetime.min.replace(tzinfo=dt.UTC))
        return min(times, default=None)

    def on_timer(self, now: dt.datetime) -> list[Action]:
        actions: list[Action] = []
        for w in self.watched.values():
            check = w.target.check
            if w.probe is not None and now - w.probe.sent_at >= _seconds(check.timeout):
                actions += self._verdict(w, False, now)
            if w.probe is None and w.next_at is not None and w.next_at <= now:
                actions += _LOOK[check.kind](self, w, now)
        return actions + self._report(now)

    # --- frames from members ----------------------------------------------------------------

    def on_frame(self, interface: str, frame: bytes, now: dt.datetime) -> list[Action] | None:
        """Actions if `frame` answers one of our probes on `interface`; None if it does not
        (forwarding decides on it as on any other frame)."""
        watched = self.by_interface.get(interface)
        if not watched or len(frame) < 34 or frame[12:14] != IPV4:
            return None
        for w in watched:
            t = w.target
            if w.probe is None or frame[6:12] != t.node_mac or frame[26:30] != t.node_ip:
                continue
            if frame[30:34] != t.gateway_ip:
                continue
            parsed = ipv4.parse(frame[14:])
            if isinstance(parsed, DropReason):
                return None
            answer = _ANSWERS[t.check.kind](self, w, parsed, now)
            if answer is not None:
                return answer
        return None

    # --- probes -----------------------------------------------------------------------------

    def _send(self, w: Watched, now: dt.datetime) -> list[Action]:
        t = w.target
        sequence = next(self._sequence)
        probe = Probe(now, sequence)
        if t.check.kind is CheckKind.ICMP:
            body = icmpv4.build(
                icmpv4.IcmpV4Message(
                    icmpv4.IcmpV4Type.ECHO_REQUEST,
                    0,
                    icmpv4.echo_rest(ECHO_ID, sequence & 0xFFFF),
                    b"onm-health",
                )
            )
            datagram = ipv4.build(ipv4.IPv4Header(t.gateway_ip, t.node_ip, IpProtocol.ICMP), body)
        else:
            probe.port = PORTS[sequence % len(PORTS)]
            probe.iss = (sequence * ISN_STEP) & 0xFFFFFFFF
            syn = TcpHeader(probe.port, t.check.port or 0, probe.iss, 0, TcpFlag.SYN)
            datagram = self._tcp(t, syn)
        w.probe = probe
        return [self._frame(t, datagram)]

    def _passive(self, w: Watched, now: dt.datetime) -> list[Action]:
        t, check = w.target, w.target.check
        count = self.delivered.get((t.interface, t.pool_ip), 0)
        sent, w.delivered = count != w.delivered, count
        answered = w.last_seen is not None and now - w.last_seen <= _seconds(check.interval)
        if answered or sent:
            return self._verdict(w, answered, now)
        w.next_at = now + _seconds(check.interval)
        if w.health is Health.DOWN and w.held_until is not None and now >= w.held_until:
            w.health, w.passes, w.fails, w.changed, w.held_until = Health.UP, 0, 0, True, None
            return self._report(now, at_once=True)
        return []

    def _tcp(self, t: Target, header: TcpHeader, payload: bytes = b"") -> bytes:
        segment = tcp.build(TcpSegment(header, payload), t.gateway_ip, t.node_ip)
        return ipv4.build(ipv4.IPv4Header(t.gateway_ip, t.node_ip, IpProtocol.TCP), segment)

    @staticmethod
    def _frame(t: Target, datagram: bytes) -> ToNode:
        return ToNode(t.interface, t.node_mac + t.router_mac + IPV4 + datagram)

    def _icmp_answer(
        self, w: Watched, parsed: ipv4.IPv4Packet, now: dt.datetime
    ) -> list[Action] | None:
        if parsed.header.protocol != IpProtocol.ICMP or w.probe is None:
            return None
        message = icmpv4.parse(parsed.payload)
        if isinstance(message, DropReason) or message.type != icmpv4.IcmpV4Type.ECHO_REPLY:
            return None
        if message.rest != icmpv4.echo_rest(ECHO_ID, w.probe.sequence & 0xFFFF):
            return None
        return self._verdict(w, True, now)

    def _tcp_answer(
        self, w: Watched, parsed: ipv4.IPv4Packet, now: dt.datetime
    ) -> list[Action] | None:
        probe, t = w.probe, w.target
        if parsed.header.protocol != IpProtocol.TCP or probe is None:
            return None
        segment = tcp.parse(parsed.payload)
        if isinstance(segment, DropReason):
            return None
        h = segment.header
        if h.src_port != t.check.port or h.dst_port != probe.port:
            return None
        if h.flags & TcpFlag.RST:
            return self._verdict(w, False, now)
        ours = (probe.iss + 1) & 0xFFFFFFFF
        if h.flags & TcpFlag.SYN and h.flags & TcpFlag.ACK and h.ack == ours:
            if t.check.kind is CheckKind.TCP:
                return [self._reset(t, probe.port, ours), *self._verdict(w, True, now)]
            if probe.requested:
                return []  # a retransmitted SYN-ACK: the GET is on its way
            probe.requested = True
            request = self._request(t)
            ack = TcpHeader(
                probe.port, h.src_port, ours, (h.seq + 1) & 0xFFFFFFFF, TcpFlag.ACK | TcpFlag.PSH
            )
            return [self._frame(t, self._tcp(t, ack, request))]
        if t.check.kind is CheckKind.HTTP and probe.requested and segment.payload:
            status = STATUS_LINE.match(segment.payload)
            sent = (ours + len(self._request(t))) & 0xFFFFFFFF
            reset = self._reset(t, probe.port, sent)
            passed = status is not None and 200 <= int(status.group(1)) < 400
            return [reset, *self._verdict(w, passed, now)]
        if h.flags & TcpFlag.FIN:  # closed without an answer
            return self._verdict(w, False, now)
        return []

    def _request(self, t: Target) -> bytes:
        host = ".".join(str(b) for b in t.node_ip)
        return (
            f"GET {t.check.path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: onm-health\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

    def _reset(self, t: Target, port: int, sequence: int) -> ToNode:
        rst = TcpHeader(port, t.check.port or 0, sequence, 0, TcpFlag.RST)
        return self._frame(t, self._tcp(t, rst))

    # --- verdicts and reports ---------------------------------------------------------------

    def _verdict(self, w: Watched, passed: bool, now: dt.datetime) -> list[Action]:
        check = w.target.check
        w.probe = None
        w.next_at = now + _seconds(check.interval)
        if passed:
            w.passes, w.fails = w.passes + 1, 0
        else:
            w.passes, w.fails = 0, w.fails + 1
        before = w.health
        if passed and (
            before is Health.INITIAL or (before is not Health.UP and w.passes >= check.rise)
        ):
            w.health = Health.UP
        elif not passed and before is not Health.DOWN and w.fails >= check.fall:
            w.health = Health.DOWN
        if w.health is not before:
            w.changed = True
            if w.health is Health.DOWN and check.kind is CheckKind.NONE:
                w.held_until = now + _seconds(check.interval * PASSIVE_HOLD)
            return self._report(now, at_once=True)
        return []

    def _reportable(self) -> list[Watched]:
        return [w for w in self.watched.values() if w.health is not Health.INITIAL]

    def _report(self, now: dt.datetime, at_once: bool = False) -> list[Action]:
        members = self._reportable()
        if not members:
            return []
        due = self.reported_at is None or now - self.reported_at >= REPORT_EVERY
        if not (due or at_once or any(w.changed for w in members)):
            return []
        self.reported_at = now
        for w in members:
            w.changed = False
            self._measure(w, now)
        return [
            ReportHealth(
                tuple(
                    MemberHealth(w.target.pool_id, w.target.node_id, w.health, w.load)
                    for w in members
                )
            )
        ]

    def _measure(self, w: Watched, now: dt.datetime) -> None:
        count = self.delivered.get((w.target.interface, w.target.pool_ip), 0)
        if w.load_at is None:
            w.load_count, w.load_at = count, now
            return
        elapsed = now - w.load_at
        if elapsed >= LOAD_WINDOW:
            w.load = max(count - w.load_count, 0) / elapsed.total_seconds()
            w.load_count, w.load_at = count, now


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)


Look = Callable[[Monitor, Watched, dt.datetime], list[Action]]
_LOOK: dict[CheckKind, Look] = {
    CheckKind.ICMP: Monitor._send,
    CheckKind.TCP: Monitor._send,
    CheckKind.HTTP: Monitor._send,
    CheckKind.NONE: Monitor._passive,
}
"""What each kind of check does when it is due: probe, or look at the member's traffic."""


def _no_answer(
    _monitor: Monitor, _w: Watched, _parsed: ipv4.IPv4Packet, _now: dt.datetime
) -> list[Action] | None:
    return None


Answer = Callable[[Monitor, Watched, ipv4.IPv4Packet, dt.datetime], "list[Action] | None"]
_ANSWERS: dict[CheckKind, Answer] = {
    CheckKind.ICMP: Monitor._icmp_answer,
    CheckKind.TCP: Monitor._tcp_answer,
    CheckKind.HTTP: Monitor._tcp_answer,
    CheckKind.NONE: _no_answer,
}
"""How each kind of check reads a frame from its member."""


def health_targets(tables: Tables) -> list[Target]:
    """The pool members this host runs, to check from their network's gateway."""
    targets = []
    for pool in tables.pools.values():
        for node_id in pool.members:
            port = tables.by_node.get(node_id)
            if port is None:
                continue
            network = port.network
            ip = ipaddress.IPv4Address(port.ip)
            gateway = next((c.network_address + 1 for c in network.cidrs if ip in c), None)
            if gateway is None:
                continue
            targets.append(
                Target(
                    pool.id,
                    node_id,
                    port.interface,
                    port.mac,
                    port.ip,
                    gateway.packed,
                    network.router_mac,
                    pool.check,
                    pool.ip,
                )
            )
    return targets
