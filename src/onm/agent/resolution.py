"""ARP from nodes and what the manager said about addresses: the resolution cache, sans-IO.

Theory of operation:
- ARP from a node never leaves the host. The agent answers for the network's gateway addresses
  with the network's router MAC, and for other addresses of the node's network with the virtual
  MAC the manager resolved (asking it when the answer is not cached). Gratuitous ARP, probes,
  replies and requests for addresses the node may not reach get no answer.
- The cache maps (interface, IPv4) to what that node was told: MAC, substrate address, expiry.
  A snapshot's grants fill it (a restarted agent forwards at once), and a snapshot follows a
  node that moved without the requester asking again; ports and nodes gone are forgotten.
- Refresh: a resolution in use is asked for again in the last `1/REFRESH_IN_LAST` of the
  lifetime it was granted with (from its arrival to its expiry: 75 s of the manager's default
  300 s), by the packet or ARP that uses it (`Lifetime.due`, the one rule of both datapaths).
- Static stability: a resolution is kept past its expiry while no fresher answer is available,
  as the manager may be away. At its expiry (the timer) it is forgotten only when the manager's
  last word to this agent was an answer (it answers, and nothing in use asked: the entry is
  idle) and no request for it is pending; otherwise it is looked at again every `STALE_REVIEW`.
- Pending: one entry per (interface, IPv4) asked about. It is asked at most once per
  `RETRY_AFTER` by traffic; the timer asks again every `RETRY_AFTER` (after an ask or a failed
  one) while ARP requests wait on it. A request waits at most `ARP_WAIT` (then dropped,
  counted); an entry no request waits on is forgotten `RETRY_AFTER` after its last ask (an
  answer arriving later is still learnt).
- Negative cache: an address the manager refused is not asked again for `NEGATIVE_FOR`, and
  forgotten at that time.
- Bounds: the cache, the pending table and the negative cache each hold at most `MAX_*`
  entries; the oldest (first inserted, or last refreshed) goes first, counted as an event.
- Time is `now`, the same wall clock the manager's expiries are written in; `next_timer` says
  when `on_timer` has work without a packet.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import abc
from dataclasses import dataclass, field
from typing import Final

from onm.agent.actions import Action, Resolve, ToNode
from onm.agent.claims import Claims
from onm.agent.counters import TO_NODES, Counters, Event
from onm.agent.emission import ARP
from onm.agent.tables import PoolEntry, Port, Tables, choose
from onm.model import NodeId, Resolution
from onm.model.pool import Rotation
from onm.model.snapshot import HostSnapshot
from onm.packet import arp
from onm.packet.drop import DropReason
from onm.packet.ethernet import parse_mac

REFRESH_IN_LAST: Final = 4
"""A resolution is due for refresh in the last quarter of the lifetime it was granted with."""
RETRY_AFTER = dt.timedelta(seconds=1)  # a pending resolution is asked again after this
NEGATIVE_FOR = dt.timedelta(seconds=5)  # a refused address is not asked again for this long
STALE_REVIEW = dt.timedelta(seconds=30)
"""How often an expired resolution kept for static stability is looked at again."""
ARP_WAIT = dt.timedelta(seconds=3)
"""How long a node's ARP request waits for the manager: Linux gives up after 3 unanswered
requests 1 s apart (neigh mcast_solicit 3, retrans_time 1 s), so a later answer finds no one."""
MAX_PENDING_ARP = 16  # requests kept per (port, address) while the manager answers
MAX_RESOLUTIONS = 65536
"""Resolutions kept for all local nodes: a /16 worth (a few hundred octets each, ~20 MB at
most); a node scanning its network evicts the oldest instead of growing the agent."""
MAX_PENDING = 4096
"""Addresses asked about at once: each costs the manager a request; more waits are scans."""
MAX_REFUSED = 4096
"""Refused addresses remembered: a flood of distinct ones evicts the oldest (asked again when
a node tries it again, at the pace of `RETRY_AFTER`)."""

Key = tuple[str, bytes]
"""(host-side interface of the asking node, IPv4 asked about)."""


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How long an answer lives, and from when it is due for refresh."""

    expires_at: dt.datetime
    refresh_at: dt.datetime
    """The start of the last `1/REFRESH_IN_LAST` of the life it was granted with."""

    @classmethod
    def granted(cls, received: dt.datetime, expires_at: dt.datetime) -> Lifetime:
        """An answer that arrived at `received` (one already expired is due at once)."""
        life = max(expires_at - received, dt.timedelta(0))
        return cls(expires_at, expires_at - life / REFRESH_IN_LAST)

    def due(self, now: dt.datetime) -> bool:
        """Is a fresher answer wanted at `now` (less than the last part left, or expired)?"""
        return now > self.refresh_at


@dataclass(slots=True)
class Mapping:
    """What one local node was told about one address of its network."""

    mac: bytes
    substrate: bytes
    """Where packets go; for a pool IP the chosen member's pool address (empty: no member
    takes traffic and the pool fails closed)."""
    lifetime: Lifetime
    due: dt.datetime
    """When the timer looks at it next: its expiry, then every `STALE_REVIEW` while kept."""
    ranking: tuple[NodeId, ...] = ()
    """A pool IP's members in this requester's order (empty for a node's IP)."""
    member: NodeId | None = None
    """The pool member chosen now."""
    rotation: Rotation | None = None
    """A rotating `ranked` pool's: move on after so many packets or seconds."""
    sent: int = 0
    """Packets sent to the current member (rotation)."""
    since: dt.datetime | None = None
    """When the current member got its first packet (rotation)."""

    @property
    def expires_at(self) -> dt.datetime:
        return self.lifetime.expires_at


@dataclass(slots=True)
class Waiting:
    """A node's ARP request waiting for the manager's answer."""

    arrived_at: dt.datetime
    request: arp.ArpPacket


@dataclass(slots=True)
class Pending:
    asked_at: dt.datetime
    """The last ask; traffic asks again `RETRY_AFTER` after it."""
    due: dt.datetime
    """When the timer asks again (ARP requests waiting) or forgets the entry (none)."""
    requests: list[Waiting] = field(default_factory=list)
    stale_mac: bytes | None = None
    """A MAC the node sent to for this address that the agent does not know (an answer it
    learnt before, e.g. of a pool deleted and made again): the answer is announced to it."""


class Resolver:
    """The resolution cache, pending requests and negative cache of one agent's nodes."""

    def __init__(self, counters: Counters, claims: Claims) -> None:
        self.counters = counters
        self.claims = claims
        self._cache: dict[Key, Mapping] = {}
        """Oldest (inserted or refreshed) first: eviction order."""
        self._by_mac: dict[tuple[str, bytes], bytes] = {}
        """(interface, MAC the node was told) -> the IPv4 it stands for."""
        self._pending: dict[Key, Pending] = {}
        """In order of `due` (every change of it moves the entry to the end)."""
        self._refused: dict[Key, dt.datetime] = {}
        """Refused until; in order of that time (one lifetime for all)."""
        self._deadlines: list[tuple[dt.datetime, Key]] = []
        """Heap of (`Mapping.due`, key); entries whose mapping moved on are skipped."""
        self._manager_answers = False
        """The manager's last word was an answer (or refusal), not a failure to ask it."""

    # --- what the manager says ----------------------------------------------------------------

    def apply_snapshot(self, snapshot: HostSnapshot, tables: Tables, now: dt.datetime) -> None:
        """Learn the snapshot's grants (arrived at `now`), follow moved nodes, forget ports and
        nodes gone."""
        for grant in snapshot.grants:
            port = tables.by_node.get(grant.requester_id)
            if port is not None:
                self._learn(port, grant, now, keep_newer=True, tables=tables)
        for key in list(self._cache):
            interface, ip = key
            port = tables.ports.get(interface)
            resident = None if port is None else tables.residents.get((port.network.vni, ip))
            mapping = self._cache[key]
            if port is None or resident is None or (mapping.ranking and not resident.sources):
                self._forget(key)
                continue
            if mapping.ranking:  # a pool's members' health changed: steer, with no new ARP
                self._steer(mapping, tables.pools.get((port.network.vni, ip)))
            else:  # the node may have moved: follow it without the requester asking again
                mapping.substrate = resident.substrate
            if mapping.mac != resident.mac:  # the old MAC keeps working for the node
                mapping.mac = resident.mac
                self._by_mac[(interface, resident.mac)] = ip
        for key in [k for k in self._by_mac if k[0] not in tables.ports]:
            del self._by_mac[key]
        self._pending = {k: v for k, v in self._pending.items() if k[0] in tables.ports}
        self._refused = {k: v for k, v in self._refused.items() if k[0] in tables.ports}

    def resolved(
        self,
        port: Port | None,
        request: Resolve,
        answer: Resolution | None,
        now: dt.datetime,
        tables: Tables | None = None,
    ) -> list[Action]:
        """The manager's answer to `request` (None: refused); answers the ARPs waiting on it."""
        key = (request.interface, request.ip)
        pending = self._pending.pop(key, None)
        self._manager_answers = True
        if port is None:
            return []
        if answer is None:
            self.counters.event(Event.RESOLUTIONS_REFUSED)
            self._refuse(key, now)
            return []
        self.counters.event(Event.RESOLUTIONS)
        mapping = self._learn(port, answer, now, keep_newer=False, tables=tables)
        if pending is None:
            return []
        replies: list[Action] = [
            self._arp_reply(port, w.request, mapping.mac) for w in pending.requests
        ]
        if pending.stale_mac is not None and pending.stale_mac != mapping.mac:
            # unsolicited (RFC 826 lets a receiver update the sender's entry): the node's ARP
            # cache holds a MAC nobody answers for; put it right instead of waiting for it
            asked = arp.ArpPacket(arp.ArpOp.REQUEST, port.mac, port.ip, bytes(6), request.ip)
            replies.append(self._arp_reply(port, asked, mapping.mac))
            self.counters.event(Event.ARP_ANNOUNCED)
        return replies

    def resolve_failed(self, request: Resolve, now: dt.datetime) -> list[Action]:
        """The manager could not be asked: keep what we have; traffic may ask again at once
        (a node's ARP retransmission), the timer after `RETRY_AFTER`."""
        self.counters.event(Event.RESOLUTIONS_FAILED)
        self._manager_answers = False
        key = (request.interface, request.ip)
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.asked_at = now - RETRY_AFTER
            pending.due = now + RETRY_AFTER
            self._pending[key] = pending
        return []

    # --- what forwarding asks -------------------------------------------------------------------

    @property
    def by_mac(self) -> abc.Mapping[tuple[str, bytes], bytes]:
        """(interface, MAC the node was told) -> the IPv4 it stands for. The same dict for the
        resolver's life (never replaced), so the per-packet path may hold on to it."""
        return self._by_mac

    @property
    def cache(self) -> abc.Mapping[Key, Mapping]:
        """(interface, IPv4) -> what that node was told; the same dict for the resolver's life."""
        return self._cache

    def ip_of(self, interface: str, mac: bytes) -> bytes | None:
        """The IPv4 that `mac` was given for to the node behind `interface`."""
        return self._by_mac.get((interface, mac))

    def mapping(self, interface: str, ip: bytes) -> Mapping | None:
        return self._cache.get((interface, ip))

    def refresh_if_due(
        self, port: Port, target: bytes, mapping: Mapping, now: dt.datetime
    ) -> list[Action]:
        """Ask for a fresher answer when the one in use is in its last part (`Lifetime.due`)."""
        if mapping.lifetime.due(now):
            return self.refresh(port, target, now)
        return []

    def refresh(self, port: Port, target: bytes, now: dt.datetime) -> list[Action]:
        """Ask again for a resolution in use that is due (`ask`'s pace), counted when asked."""
        asked = self.ask(port, target, now)
        if asked:
            self.counters.event(Event.REFRESHES)
        return asked

    def miss(
        self,
        port: Port,
        target: bytes,
        now: dt.datetime,
        reason: DropReason,
        used_mac: bytes | None = None,
    ) -> list[Action]:
        """A packet to an address not resolved for this node: drop it, and ask in the background
        so that the node's next packet (or its next ARP) finds an answer. `used_mac`: the MAC it
        was sent to, which the agent does not know (the answer will be announced)."""
        self.counters.drop(reason)
        self.counters.event(Event.CACHE_MISSES)
        if not port.network.contains(target) or target == port.ip:
            return []
        asked = self.ask(port, target, now)
        pending = self._pending.get((port.interface, target))
        if used_mac is not None and pending is not None:
            pending.stale_mac = used_mac
        return asked

    def ask(self, port: Port, target: bytes, now: dt.datetime) -> list[Action]:
        """A `Resolve` for `target`, unless refused lately or asked less than `RETRY_AFTER` ago."""
        key = (port.interface, target)
        refused_until = self._refused.get(key)
        if refused_until is not None and refused_until > now:
            return []
        pending = self._pending.get(key)
        if pending is not None and now - pending.asked_at < RETRY_AFTER:
            return []
        if pending is not None:
            del self._pending[key]  # to the end, with the latest `due`
            pending.asked_at, pending.due = now, now + RETRY_AFTER
        else:
            pending = Pending(now, now + RETRY_AFTER)
            while len(self._pending) >= MAX_PENDING:
                del self._pending[next(iter(self._pending))]
                self.counters.event(Event.PENDING_EVICTED)
        self._pending[key] = pending
        return [Resolve(port.network.id, port.node_id, port.interface, target)]

    # --- ARP from nodes ----------------------------------------------------------------------

    def node_arp(self, port: Port, frame: bytes, now: dt.datetime) -> list[Action]:
        counters = self.counters
        request = arp.parse(frame[14:])
        if isinstance(request, DropReason):
            counters.drop(request)
            return []
        if request.sender_mac != port.mac:
            counters.drop(DropReason.ARP_SPOOFED)
            return []
        if request.is_probe:
            counters.event(Event.ARP_PROBES)
            return []
        if request.sender_ip != port.ip and request.sender_ip not in port.pool_sources:
            # claiming someone else's address (a pool member may use the pool's)
            counters.drop(DropReason.ARP_SPOOFED)
            return self.claims.saw(port, request.sender_ip, now)
        if request.op != arp.ArpOp.REQUEST:
            counters.event(Event.ARP_REPLIES_IGNORED)
            return []
        if request.is_gratuitous:
            counters.event(Event.ARP_GRATUITOUS)
            return []
        target = request.target_ip
        network = port.network
        if target in network.gateways:
            return [self._arp_reply(port, request, network.router_mac)]
        if not network.contains(target):
            counters.event(Event.ARP_NOT_ALLOWED)
            return []
        key = (port.interface, target)
        mapping = self._cache.get(key)
        if mapping is not None:
            counters.event(Event.CACHE_HITS)
            reply: list[Action] = [self._arp_reply(port, request, mapping.mac)]
            reply.extend(self.refresh_if_due(port, target, mapping, now))
            return reply
        counters.event(Event.CACHE_MISSES)
        asked = self.ask(port, target, now)
        pending = self._pending.get(key)
        if pending is not None and len(pending.requests) < MAX_PENDING_ARP:
            pending.requests.append(Waiting(now, request))
        return asked

    def _arp_reply(self, port: Port, request: arp.ArpPacket, mac: bytes) -> ToNode:
        self.counters.event(Event.ARP_ANSWERS)
        body = arp.build(arp.reply_to(request, mac))
        frame = request.sender_mac + mac + ARP + body
        self.counters.count(TO_NODES, len(frame))
        return ToNode(port.interface, frame)

    # --- timers ------------------------------------------------------------------------------

    def next_timer(self) -> dt.datetime | None:
        """The earliest moment `on_timer` has something to do (None: nothing is waiting)."""
        times = []
        if self._deadlines:
            times.append(self._deadlines[0][0])
        if self._pending:
            times.append(self._pending[next(iter(self._pending))].due)
        if self._refused:
            times.append(self._refused[next(iter(self._refused))])
        return min(times, default=None)

    def on_timer(self, now: dt.datetime, tables: Tables) -> list[Action]:
        """Expire, retry and forget what is due at `now` (see the rules above)."""
        self._expire_refused(now)
        actions = self._retry_pending(now, tables)
        self._review_cache(now)
        return actions

    def _expire_refused(self, now: dt.datetime) -> None:
        refused = self._refused
        while refused:
            key = next(iter(refused))
            if refused[key] > now:
                return
            del refused[key]

    def _retry_pending(self, now: dt.datetime, tables: Tables) -> list[Action]:
        pending_table = self._pending
        actions: list[Action] = []
        again: list[tuple[Key, Pending]] = []
        while pending_table:
            key = next(iter(pending_table))
            pending = pending_table[key]
            if pending.due > now:
                break
            del pending_table[key]
            fresh = [w for w in pending.requests if now - w.arrived_at < ARP_WAIT]
            expired = len(pending.requests) - len(fresh)
            if expired:
                self.counters.event(Event.ARP_REQUESTS_EXPIRED, expired)
            port = tables.ports.get(key[0])
            if not fresh or port is None:
                continue  # nobody waits: a later packet or ARP asks again
            pending.requests = fresh
            pending.asked_at, pending.due = now, now + RETRY_AFTER
            again.append((key, pending))
            self.counters.event(Event.ASKS_RETRIED)
            actions.append(Resolve(port.network.id, port.node_id, port.interface, key[1]))
        for key, pending in again:  # behind every entry still waiting: in order of `due`
            pending_table[key] = pending
        return actions

    def _review_cache(self, now: dt.datetime) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            due, key = heapq.heappop(deadlines)
            mapping = self._cache.get(key)
            if mapping is None or mapping.due != due:
                continue  # forgotten, or learnt again since
            if mapping.expires_at > now:  # renewed in place
                self._schedule(key, mapping, mapping.expires_at)
            elif self._manager_answers and key not in self._pending:
                self._forget(key)
                self.counters.event(Event.CACHE_EXPIRED)
            else:  # static stability: the manager may be away, keep forwarding with it
                self._schedule(key, mapping, now + STALE_REVIEW)

    # --- the cache ---------------------------------------------------------------------------

    def _steer(self, mapping: Mapping, pool: PoolEntry | None) -> None:
        """Point a pool IP's mapping at the member `choose` picks now (none: fail closed)."""
        if pool is None:
            return
        before = mapping.member
        mapping.rotation = pool.rotation
        mapping.member = choose(pool, mapping.ranking, mapping.member)
        mapping.substrate = b"" if mapping.member is None else pool.members[mapping.member]
        if before is not None and mapping.member != before:
            self.counters.event(Event.POOL_FAILOVERS)

    def sent_to_pool(self, mapping: Mapping, pool: PoolEntry | None, now: dt.datetime) -> None:
        """One packet to a rotating pool's member: after `packets` of them, or `seconds` since
        the member's first, the requester's ranking turns by one (the next member leads)."""
        rotation = mapping.rotation
        if rotation is None or pool is None:
            return
        if mapping.since is not None:  # this member has had its share: the next one leads
            by_packets = rotation.packets is not None and mapping.sent >= rotation.packets
            elapsed = (now - mapping.since).total_seconds()
            by_time = rotation.seconds is not None and elapsed >= rotation.seconds
            if by_packets or by_time:
                mapping.ranking = (*mapping.ranking[1:], *mapping.ranking[:1])
                mapping.sent, mapping.since, mapping.member = 0, None, None  # not a failover
                self._steer(mapping, pool)
                self.counters.event(Event.POOL_ROTATIONS)
        mapping.sent += 1
        if mapping.since is None:
            mapping.since = now

    def _learn(
        self,
        port: Port,
        answer: Resolution,
        now: dt.datetime,
        keep_newer: bool,
        tables: Tables | None = None,
    ) -> Mapping:
        key = (port.interface, answer.target_ip.packed)
        current = self._cache.get(key)
        if keep_newer and current is not None and current.expires_at >= answer.expires_at:
            return current
        if current is not None:  # to the end of the eviction order (its old MAC still works)
            del self._cache[key]
        while len(self._cache) >= MAX_RESOLUTIONS:
            self._forget(next(iter(self._cache)))
            self.counters.event(Event.CACHE_EVICTED)
        mac = parse_mac(answer.mac)
        lifetime = Lifetime.granted(now, answer.expires_at)
        mapping = Mapping(mac, answer.substrate_address.packed, lifetime, answer.expires_at)
        if answer.pool_id is not None:
            mapping.ranking = tuple(a.node_id for a in answer.alternatives)
            mapping.member = None if current is None else current.member
            pools = {} if tables is None else tables.pools
            self._steer(mapping, pools.get((port.network.vni, key[1])))
        self._cache[key] = mapping
        self._by_mac[(port.interface, mac)] = key[1]
        self._schedule(key, mapping, answer.expires_at)
        return mapping

    def _schedule(self, key: Key, mapping: Mapping, due: dt.datetime) -> None:
        mapping.due = due
        heapq.heappush(self._deadlines, (due, key))
        if len(self._deadlines) > 2 * len(self._cache) + 64:  # mostly stale: rebuilt
            self._deadlines = [(m.due, k) for k, m in self._cache.items()]
            heapq.heapify(self._deadlines)

    def _forget(self, key: Key) -> None:
        mapping = self._cache.pop(key, None)
        if mapping is not None:
            self._by_mac.pop((key[0], mapping.mac), None)

    def _refuse(self, key: Key, now: dt.datetime) -> None:
        self._refused.pop(key, None)
        while len(self._refused) >= MAX_REFUSED:
            del self._refused[next(iter(self._refused))]
            self.counters.event(Event.REFUSED_EVICTED)
        self._refused[key] = now + NEGATIVE_FOR

    # --- sizes, for tests and metrics ------------------------------------------------------------

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(resolutions, pending, refused) held now."""
        return len(self._cache), len(self._pending), len(self._refused)

    @property
    def scheduled(self) -> int:
        """Timer entries held for the cache (stale ones included until they are due)."""
        return len(self._deadlines)
