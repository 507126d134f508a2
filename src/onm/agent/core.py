"""The agent's decision logic, sans-IO: (frame or event, now) -> actions (seed 0, FIG. 2B/4).

Theory of operation:
- A snapshot from the manager becomes `Tables` (ports, residents). Until one is applied, the
  agent knows no port, so it forwards nothing: isolation and anti-spoofing come first.
- A frame from a node must carry that node's own MAC (and, for IPv4 and ARP, its own IP).
- ARP from a node never leaves the host. The agent answers for the network's gateway addresses
  with the network's router MAC, and for other addresses of the node's network with the virtual
  MAC the manager resolved (asking it when the answer is not cached). Gratuitous ARP, probes,
  replies and requests for addresses the node may not reach get no answer.
- An IPv4 frame goes where its destination MAC was resolved to: delivered directly when the
  target is local, else translated (SIIT or encapsulation, per network) onto the substrate.
  Either way it first passes `admission.check_ipv4` for what its network carries, then what
  the translation (or encapsulation) toward that node would decide: a frame for a node next
  door is refused, or answered with an ICMP error, exactly when it would be for a node on
  another host, and delivered as sent otherwise.
- A substrate packet is accepted only for a local node's substrate address, from the address
  where (network id, source IPv4) really lives, on another host (a local node's packets never
  cross the substrate), and only as an agent sends it (`admission.check_ipv6`; for
  encapsulation the inner datagram passes `check_ipv4` too); it is translated back and
  delivered with the sender's virtual MAC.
- The agent is no router hop inside a network (one virtual network is one link): TTL and hop
  limit are carried across unchanged, and a datagram with TTL (hop limit) 0 is refused both
  ways, as no host may send one.
- Resolutions are kept after their expiry while no fresher answer is available (static
  stability: the manager may be away); a refresh is asked for once a quarter of the lifetime is
  left.
- A TCP super-frame (`TcpGso`: up to 64 KiB standing for many segments) is checked like any
  frame, by its headers. SIIT decides on its first segment, a packet of the size a kernel will
  really send, and the translated headers go in front of the whole payload (checksum field left
  partial for whoever cuts it); what that segment gets instead (an error, fragmentation, a
  segment too big for the node) makes the frame be cut here and go on segment by segment, so
  nodes see the same rules either way. Encapsulation cuts what it sends (GSO cannot describe
  IPv4 in IPv6) and passes what it receives whole.
Every discarded packet is counted by its `DropReason`; nothing here raises on packet bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from onm.agent.actions import Action, Report, Resolve, ToNode, ToSubstrate
from onm.agent.counters import Counters
from onm.agent.tables import EMPTY, NetworkEntry, Port, Tables, compile_tables
from onm.model import Encoding, Resolution
from onm.model.snapshot import HostSnapshot
from onm.packet import admission, arp, encap, offload
from onm.packet.admission import Carried
from onm.packet.drop import DropReason
from onm.packet.ethernet import BROADCAST, EtherType
from onm.packet.mapper import PairMapper
from onm.packet.offload import TcpGso
from onm.packet.siit import (
    Drop,
    IcmpError,
    Result,
    SiitConfig,
    Translated,
    translate_4to6,
    translate_6to4,
)
from onm.packet.siit.plain import plain_4to6, plain_6to4, plain_super_4to6, plain_super_6to4

IPV4 = EtherType.IPV4.to_bytes(2, "big")
ARP = EtherType.ARP.to_bytes(2, "big")
REFRESH_BEFORE = dt.timedelta(seconds=75)  # a quarter of the manager's 300 s answers
RETRY_AFTER = dt.timedelta(seconds=1)  # a pending resolution is asked again after this
NEGATIVE_FOR = dt.timedelta(seconds=5)  # a refused address is not asked again for this long
MAX_PENDING_ARP = 16  # requests kept per (port, address) while the manager answers
CARRIED: dict[Encoding, Carried] = {Encoding.SIIT: admission.SIIT, Encoding.ENCAP: admission.ENCAP}

Payload = bytes | memoryview
"""A super-frame's TCP payload: only ever passed on, so a view into a receive buffer will do."""


@dataclass
class Mapping:
    """What one local node was told about one address of its network."""

    mac: bytes
    substrate: bytes
    expires_at: dt.datetime


@dataclass
class Pending:
    asked_at: dt.datetime
    requests: list[arp.ArpPacket] = field(default_factory=list)


class AgentCore:
    def __init__(self, substrate_mtu: int) -> None:
        self.substrate_mtu = substrate_mtu
        self.tables: Tables = EMPTY
        self.counters = Counters()
        self._cache: dict[tuple[str, bytes], Mapping] = {}
        self._by_mac: dict[tuple[str, bytes], bytes] = {}
        self._pending: dict[tuple[str, bytes], Pending] = {}
        self._refused: dict[tuple[str, bytes], dt.datetime] = {}
        self._identification = 0

    # --- control: snapshots and resolutions ----------------------------------------------------

    def apply_snapshot(self, snapshot: HostSnapshot, now: dt.datetime) -> list[Action]:
        """Install a snapshot's tables; keep what was resolved where it still holds."""
        tables = compile_tables(snapshot, self.substrate_mtu)
        for grant in snapshot.grants:
            port = tables.by_node.get(grant.requester_id)
            if port is not None:
                self._learn(port, grant, keep_newer=True)
        for key in list(self._cache):
            interface, ip = key
            port = tables.ports.get(interface)
            resident = None if port is None else tables.residents.get((port.network.vni, ip))
            if resident is None:
                self._forget(key)
            else:  # the node may have moved: follow it without the requester asking again
                mapping = self._cache[key]
                mapping.substrate = resident.substrate
                if mapping.mac != resident.mac:
                    mapping.mac = resident.mac
                    self._by_mac[(interface, resident.mac)] = ip
        for key in [k for k in self._by_mac if k[0] not in tables.ports]:
            del self._by_mac[key]
        self._pending = {k: v for k, v in self._pending.items() if k[0] in tables.ports}
        self.tables = tables
        return [Report(snapshot.revision)]

    def resolved(
        self, request: Resolve, answer: Resolution | None, now: dt.datetime
    ) -> list[Action]:
        """The manager's answer to a `Resolve` (None: refused). Answers the ARPs waiting on it."""
        key = (request.interface, request.ip)
        pending = self._pending.pop(key, None)
        port = self.tables.ports.get(request.interface)
        if port is None:
            return []
        if answer is None:
            self.counters.events["resolutions_refused"] += 1
            self._refused[key] = now + NEGATIVE_FOR
            return []
        self.counters.events["resolutions"] += 1
        mapping = self._learn(port, answer, keep_newer=False)
        if pending is None:
            return []
        return [self._arp_reply(port, req, mapping.mac) for req in pending.requests]

    def resolve_failed(self, request: Resolve, now: dt.datetime) -> list[Action]:
        """The manager could not be asked (unreachable): keep forwarding with what we have."""
        self.counters.events["resolutions_failed"] += 1
        pending = self._pending.get((request.interface, request.ip))
        if pending is not None:
            pending.asked_at = now - RETRY_AFTER  # the next ARP retransmission asks again
        return []

    def _learn(self, port: Port, answer: Resolution, keep_newer: bool) -> Mapping:
        key = (port.interface, answer.target_ip.packed)
        current = self._cache.get(key)
        if keep_newer and current is not None and current.expires_at >= answer.expires_at:
            return current
        mac = bytes.fromhex(answer.mac.replace(":", ""))
        mapping = Mapping(mac, answer.substrate_address.packed, answer.expires_at)
        self._cache[key] = mapping
        self._by_mac[(port.interface, mac)] = key[1]
        return mapping

    def _forget(self, key: tuple[str, bytes]) -> None:
        mapping = self._cache.pop(key, None)
        if mapping is not None:
            self._by_mac.pop((key[0], mapping.mac), None)

    # --- data: frames from nodes -----------------------------------------------------------------

    def node_frame(
        self,
        interface: str,
        frame: bytes,
        now: dt.datetime,
        gso: TcpGso | None = None,
        payload: Payload | None = None,
    ) -> list[Action]:
        """A frame from a node's interface. With `gso`, a TCP super-frame its kernel left uncut:
        whole, or only its Ethernet, IPv4 and TCP headers with the TCP `payload` apart (a view
        into the datapath's buffer, which nothing here reads or copies)."""
        counters = self.counters
        counters.count("from_nodes", len(frame) + (0 if payload is None else len(payload)))
        port = self.tables.ports.get(interface)
        if port is None:
            counters.drop(DropReason.UNKNOWN_PORT)
            return []
        if len(frame) < 14:
            counters.drop(DropReason.ETHERNET_TRUNCATED)
            return []
        if frame[6:12] != port.mac:
            counters.drop(DropReason.SPOOFED_SOURCE_MAC)
            return []
        ethertype = frame[12:14]
        if ethertype == IPV4:
            return self._node_ipv4(port, frame, now, gso, payload)
        if ethertype == ARP and gso is None:
            return self._node_arp(port, frame, now)
        counters.drop(DropReason.ETHERTYPE_UNSUPPORTED)
        return []

    def _node_ipv4(
        self,
        port: Port,
        frame: bytes,
        now: dt.datetime,
        gso: TcpGso | None,
        payload: Payload | None,
    ) -> list[Action]:
        counters = self.counters
        packet = frame[14:]
        network = port.network
        size = None if payload is None else len(packet) + len(payload)
        refused = admission.check_ipv4(packet, CARRIED[network.encoding], size)
        if refused is not None:
            counters.drop(refused)
            return []
        if packet[12:16] != port.ip:
            counters.drop(DropReason.SPOOFED_SOURCE_IP)
            return []
        target = packet[16:20]
        dst_mac = frame[0:6]
        if dst_mac != network.router_mac:
            resolved_ip = self._by_mac.get((port.interface, dst_mac))
            if resolved_ip is None:
                return self._miss(port, target, now, DropReason.NO_MAPPING)
            if resolved_ip != target:
                counters.drop(DropReason.DESTINATION_MISMATCH)
                return []
        elif not network.contains(target) or target in network.gateways:
            counters.drop(DropReason.NO_ROUTE)  # external routes arrive with edge pools
            return []
        key = (port.interface, target)
        mapping = self._cache.get(key)
        if mapping is None:
            return self._miss(port, target, now, DropReason.NO_MAPPING)
        actions: list[Action] = []
        if mapping.expires_at - now < REFRESH_BEFORE:
            actions.extend(self._ask(port, target, now))
        local = self.tables.by_substrate.get(mapping.substrate)
        if local is not None and local.network is not network:
            counters.drop(DropReason.NETWORK_MISMATCH)
            return actions
        mapper = PairMapper(port.ip, port.substrate, target, mapping.substrate)
        if local is not None:
            if gso is not None:
                return actions + self._super_to_local(packet, payload, port, local, mapper, gso)
            verdict = _crossing(packet, mapper, network)  # what a node elsewhere would be sent
            if not isinstance(verdict, Translated):
                return actions + self._emit(verdict, port, toward_node=False)
            out = local.mac + port.mac + IPV4 + packet
            counters.count("to_nodes", len(out))
            actions.append(ToNode(local.interface, out))
            return actions
        if gso is not None:
            return actions + self._super_to_substrate(packet, payload, port, mapper, gso)
        return actions + self._emit(_crossing(packet, mapper, network), port, toward_node=False)

    def _split(self, packet: bytes, payload: Payload | None) -> tuple[bytes, Payload] | None:
        """A super-packet as (IP and TCP headers, TCP payload); None (counted) if it is none."""
        if payload is not None:
            return packet, payload
        parts = offload.split_super(packet)
        if isinstance(parts, DropReason):
            self.counters.drop(parts)
            return None
        headers, end = parts
        return packet[:headers], memoryview(packet)[headers:end]

    def _super_to_local(
        self,
        packet: bytes,
        payload: Payload | None,
        port: Port,
        local: Port,
        mapper: PairMapper,
        gso: TcpGso,
    ) -> list[Action]:
        """A TCP super-frame for a node on this host: on whole, its checksum field written
        partial again (whatever the sender's kernel, GRO or LRO left there), when its first
        segment would cross the substrate (what a node elsewhere would get instead if not)."""
        parts = self._split(packet, payload)
        if parts is None:
            return []
        headers, body = parts
        network = port.network
        quick = None
        if network.encoding is Encoding.SIIT:
            quick = plain_super_4to6(headers, len(body), gso.size, mapper, network.siit)
        if quick is None:
            first = offload.first_segment(headers, body, gso.size)
            if isinstance(first, DropReason):
                self.counters.drop(first)
                return []
            verdict = _crossing(first, mapper, network)
            if not isinstance(verdict, Translated):
                return self._emit(verdict, port, toward_node=False)
        frame = offload.super_headers(headers, len(body), local.mac + port.mac + IPV4)
        if isinstance(frame, DropReason):
            self.counters.drop(frame)
            return []
        self.counters.count("to_nodes", len(frame) + len(body))
        return [ToNode(local.interface, frame, gso, body)]

    def _super_to_substrate(
        self, packet: bytes, payload: Payload | None, port: Port, mapper: PairMapper, gso: TcpGso
    ) -> list[Action]:
        """A node's TCP super-frame: SIIT decides on its first segment and re-headers it whole;
        one whose segment it would fragment is cut here, and so is every one encapsulated."""
        parts = self._split(packet, payload)
        if parts is None:
            return []
        headers, body = parts
        network = port.network
        if network.encoding is Encoding.SIIT:
            quick = plain_super_4to6(headers, len(body), gso.size, mapper, network.siit)
            if quick is not None:
                self.counters.count("to_substrate", len(quick) + len(body))
                return [ToSubstrate(quick, gso, body)]
            first = offload.first_segment(headers, body, gso.size)
            if isinstance(first, DropReason):
                self.counters.drop(first)
                return []
            result = _to_ipv6(first, mapper, network.siit)
            if not isinstance(result, Translated):  # what every segment would get
                return self._emit(result, port, toward_node=False)
            if len(result.packets) == 1:
                whole = offload.super_headers(result.packets[0], len(body))
                if not isinstance(whole, DropReason):
                    self.counters.count("to_substrate", len(whole) + len(body))
                    return [ToSubstrate(whole, gso, body)]
        pieces = offload.segment_tcp(b"".join((headers, body)), gso.size)
        if isinstance(pieces, DropReason):
            self.counters.drop(pieces)
            return []
        actions: list[Action] = []
        for piece in pieces:
            actions += self._emit(_crossing(piece, mapper, network), port, toward_node=False)
        return actions

    def _miss(
        self, port: Port, target: bytes, now: dt.datetime, reason: DropReason
    ) -> list[Action]:
        """A packet to an address not resolved for this node: drop it, and ask in the background
        so that the node's next packet (or its next ARP) finds an answer."""
        self.counters.drop(reason)
        self.counters.events["cache_misses"] += 1
        if port.network.contains(target) and target != port.ip:
            return self._ask(port, target, now)
        return []

    def _ask(self, port: Port, target: bytes, now: dt.datetime) -> list[Action]:
        key = (port.interface, target)
        refused_until = self._refused.get(key)
        if refused_until is not None and refused_until > now:
            return []
        pending = self._pending.get(key)
        if pending is not None and now - pending.asked_at < RETRY_AFTER:
            return []
        if pending is None:
            self._pending[key] = Pending(now)
        else:
            pending.asked_at = now
        return [Resolve(port.network.id, port.node_id, port.interface, target)]

    def _node_arp(self, port: Port, frame: bytes, now: dt.datetime) -> list[Action]:
        counters = self.counters
        request = arp.parse(frame[14:])
        if isinstance(request, DropReason):
            counters.drop(request)
            return []
        if request.sender_mac != port.mac:
            counters.drop(DropReason.ARP_SPOOFED)
            return []
        if request.is_probe:
            counters.events["arp_probes"] += 1
            return []
        if request.sender_ip != port.ip:  # claiming someone else's address
            counters.drop(DropReason.ARP_SPOOFED)
            return []
        if request.op != arp.ArpOp.REQUEST:
            counters.events["arp_replies_ignored"] += 1
            return []
        if request.is_gratuitous:
            counters.events["arp_gratuitous"] += 1
            return []
        target = request.target_ip
        network = port.network
        if target in network.gateways:
            counters.events["arp_answers"] += 1
            return [self._arp_reply(port, request, network.router_mac)]
        if not network.contains(target):
            counters.events["arp_not_allowed"] += 1
            return []
        key = (port.interface, target)
        mapping = self._cache.get(key)
        if mapping is not None:
            counters.events["cache_hits"] += 1
            reply: list[Action] = [self._arp_reply(port, request, mapping.mac)]
            if mapping.expires_at - now < REFRESH_BEFORE:
                reply.extend(self._ask(port, target, now))
            return reply
        counters.events["cache_misses"] += 1
        asked = self._ask(port, target, now)
        pending = self._pending.get(key)
        if pending is not None and len(pending.requests) < MAX_PENDING_ARP:
            pending.requests.append(request)
        return asked

    def _arp_reply(self, port: Port, request: arp.ArpPacket, mac: bytes) -> ToNode:
        self.counters.events["arp_answers"] += 1
        body = arp.build(arp.reply_to(request, mac))
        frame = request.sender_mac + mac + ARP + body
        self.counters.count("to_nodes", len(frame))
        return ToNode(port.interface, frame)

    # --- data: packets from the substrate --------------------------------------------------------

    def substrate_packet(
        self,
        packet: bytes,
        now: dt.datetime,
        gso: TcpGso | None = None,
        payload: Payload | None = None,
    ) -> list[Action]:
        """An IPv6 packet for our /64. With `gso`, a TCP super-packet (GRO'd, or sent uncut):
        whole, or only its IPv6 and TCP headers with the TCP `payload` apart."""
        counters = self.counters
        size = len(packet) + (0 if payload is None else len(payload))
        counters.count("from_substrate", size)
        refused = admission.check_ipv6_header(packet, size)
        if refused is not None:
            counters.drop(refused)
            return []
        port = self.tables.by_substrate.get(packet[24:40])
        if port is None:
            counters.drop(DropReason.NOT_LOCAL_DESTINATION)
            return []
        source = packet[8:24]
        vni = int.from_bytes(source[9:12], "big")
        network = port.network
        if vni != network.vni:
            counters.drop(DropReason.NETWORK_MISMATCH)
            return []
        sender_ip = source[12:16]
        resident = self.tables.residents.get((vni, sender_ip))
        # A local node's packets are delivered here directly and never cross the substrate: one
        # that arrives from there with its address was sent by another host.
        local_source = source in self.tables.by_substrate
        if resident is None or resident.substrate != source or local_source:
            counters.drop(DropReason.SPOOFED_SUBSTRATE_SOURCE)
            return []
        refused = admission.check_ipv6_payload(packet, CARRIED[network.encoding])
        if refused is not None:
            counters.drop(refused)
            return []
        mapper = PairMapper(port.ip, port.substrate, sender_ip, source)
        if gso is not None:
            return self._super_to_node(packet, payload, port, mapper, resident.mac, gso)
        if network.encoding is Encoding.SIIT:
            self._identification = (self._identification + 1) & 0xFFFF
            result = _to_ipv4(packet, mapper, network.siit, self._identification)
        else:
            inner = self._decapsulate(packet, mapper)
            if inner is None:
                return []
            result = Translated((inner,))
        return self._emit(result, port, toward_node=True, sender_mac=resident.mac)

    def _decapsulate(self, packet: bytes, mapper: PairMapper) -> bytes | None:
        """The IPv4 datagram inside, if it is one the network carries (None: counted)."""
        inner = encap.decapsulate(packet, mapper)
        if isinstance(inner, DropReason):
            self.counters.drop(inner)
            return None
        refused = admission.check_ipv4(inner, admission.ENCAP, padded=False)
        if refused is not None:
            self.counters.drop(refused)
            return None
        return inner

    def _super_to_node(
        self,
        packet: bytes,
        payload: Payload | None,
        port: Port,
        mapper: PairMapper,
        sender_mac: bytes,
        gso: TcpGso,
    ) -> list[Action]:
        """A TCP super-packet from the substrate: decided on by its first segment (SIIT) or
        opened (encapsulation), then handed to the node whole when that segment fits its MTU
        and the whole fits one IPv4 datagram; otherwise cut here."""
        network = port.network
        siit = network.encoding is Encoding.SIIT
        if not siit:  # rare (GRO'd IPv4 in IPv6): opened as a whole packet
            whole = packet if payload is None else b"".join((packet, payload))
            inner = self._decapsulate(whole, mapper)
            if inner is None:
                return []
            packet, payload = inner, None
        parts = self._split(packet, payload)
        if parts is None:
            return []
        headers, body = parts
        if siit:
            self._identification = (self._identification + 1) & 0xFFFF
            quick = plain_super_6to4(
                headers, len(body), gso.size, mapper, network.siit, self._identification
            )
            if quick is not None:
                frame = port.mac + sender_mac + IPV4 + quick
                self.counters.count("to_nodes", len(frame) + len(body))
                return [ToNode(port.interface, frame, gso, body)]
        first: bytes | DropReason = offload.first_segment(headers, body, gso.size)
        if isinstance(first, DropReason):
            self.counters.drop(first)
            return []
        if siit:
            result = _to_ipv4(first, mapper, network.siit, self._identification)
            if not isinstance(result, Translated):  # what every segment would get
                return self._emit(result, port, True, sender_mac)
            first = result.packets[0] if len(result.packets) == 1 else b""
        if 0 < len(first) <= network.siit.ipv4_mtu:
            made = offload.super_headers(first, len(body), port.mac + sender_mac + IPV4)
            if not isinstance(made, DropReason):
                self.counters.count("to_nodes", len(made) + len(body))
                return [ToNode(port.interface, made, gso, body)]
        pieces = offload.segment_tcp(b"".join((headers, body)), gso.size)
        if isinstance(pieces, DropReason):
            self.counters.drop(pieces)
            return []
        if not siit:
            return self._emit(Translated(tuple(pieces)), port, True, sender_mac)
        actions: list[Action] = []
        for piece in pieces:
            self._identification = (self._identification + 1) & 0xFFFF
            result = _to_ipv4(piece, mapper, network.siit, self._identification)
            actions += self._emit(result, port, True, sender_mac)
        return actions

    # --- results of translation ------------------------------------------------------------------

    def _emit(
        self,
        result: Translated | Drop | IcmpError,
        port: Port,
        toward_node: bool,
        sender_mac: bytes = BROADCAST,
    ) -> list[Action]:
        counters = self.counters
        if isinstance(result, Drop):
            counters.drop(result.reason)
            return []
        if isinstance(result, IcmpError):
            counters.drop(result.reason)
            if toward_node:  # an ICMPv6 error about the substrate packet: back to its sender
                counters.count("to_substrate", len(result.packet))
                return [ToSubstrate(result.packet)]
            frame = port.mac + port.network.router_mac + IPV4 + result.packet
            counters.count("to_nodes", len(frame))
            return [ToNode(port.interface, frame)]
        if toward_node:
            out: list[Action] = []
            for packet in result.packets:
                frame = port.mac + sender_mac + IPV4 + packet
                counters.count("to_nodes", len(frame))
                out.append(ToNode(port.interface, frame))
            return out
        for packet in result.packets:
            counters.count("to_substrate", len(packet))
        return [ToSubstrate(packet) for packet in result.packets]


def _crossing(packet: bytes, mapper: PairMapper, network: NetworkEntry) -> Result:
    """What a node's datagram becomes on the substrate, per its network's encoding: also the
    verdict for one to a node next door, which must meet the same rules."""
    if network.encoding is Encoding.SIIT:
        return _to_ipv6(packet, mapper, network.siit)
    return encap.encapsulate(packet, mapper, network.siit)


def _to_ipv6(packet: bytes, mapper: PairMapper, config: SiitConfig) -> Result:
    """SIIT 4 -> 6: plain TCP/UDP the short way, the rest by the full translator."""
    plain = plain_4to6(packet, mapper, config)
    return translate_4to6(packet, mapper, config) if plain is None else Translated((plain,))


def _to_ipv4(packet: bytes, mapper: PairMapper, config: SiitConfig, identification: int) -> Result:
    """SIIT 6 -> 4: plain TCP/UDP the short way, the rest by the full translator."""
    plain = plain_6to4(packet, mapper, config, identification)
    if plain is None:
        return translate_6to4(packet, mapper, config, identification)
    return Translated((plain,))
