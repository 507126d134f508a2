"""The agent in edge role: an edge gateway's translation between the substrate and its kernel
(seed 1: the edge device; DESIGN.md sections 2 and 5), sans-IO.

Theory of operation:
- A gateway owns its host's /64. A sending agent addresses it as `gateway /64 | network id |
  external IPv4` (DESIGN.md section 2); the gateway serves the networks of the edge pools it is
  a gateway of (`Tables.duties`), each through an interface of its own into the host's kernel,
  where SNAT, the firewall and conntrack live (`onm.netlink.gateway_plan`), kept apart per
  network.
- From the substrate, a packet is taken only for a network this host serves, for an address
  outside that network, and from the substrate address where (network id, source IPv4) really
  lives (a node, or a pool member sending as its pool); then translated back to IPv4 by the
  network's encoding and handed to the network's interface (`ToTenant`). TCP super-packets are
  cut first: the interface takes datagrams of the network's MTU.
- From the kernel (the interface of network N), an IPv4 datagram is a reply or an inbound
  connection for a node of N: it crosses the substrate from `gateway /64 | N | external
  source` to the node's own substrate address. A datagram for an address no node of N has is
  dropped (`GATEWAY_NO_RESIDENT`).
- Anycast mode (seed 1: a router chooses among gateways sharing an address): the gateway also
  takes packets to its pool's anycast /64, and from any steered variant of the node's address
  (`onm.addressing.steer`: the same host /64, so the check proves as much). Its replies go to
  the variant the flow's sender used, recomputed from the reply (`steering_slot` over the
  pool's hash fields, seen from the node's side), so each flow's two directions use one address
  pair; the host /64 is the node's either way, so a reply reaches the node's host.
- Everything refused is counted by its `DropReason`; nothing here raises on packet bytes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields

from onm.addressing import embed_ipv4, network_and_ipv4, steer, unsteered
from onm.agent.actions import Action, ToSubstrate, ToTenant
from onm.agent.counters import FROM_SUBSTRATE, TO_SUBSTRATE
from onm.agent.emission import CROSSING, Payload, to_ipv4
from onm.agent.forwarding import CARRIED
from onm.agent.receive import decapsulate
from onm.agent.state import CoreState
from onm.agent.tables import Duty, ResidentEntry
from onm.model import Encoding
from onm.packet import admission, offload
from onm.packet.drop import DropReason
from onm.packet.mapper import PairMapper
from onm.packet.offload import TcpGso
from onm.packet.siit import Drop, IcmpError, Result, Translated
from onm.selection.flow import Flow, flow_of, steering_slot


@dataclass(slots=True)
class TenantCounts:
    """One served network's traffic through this gateway."""

    egress_packets: int = 0
    egress_bytes: int = 0
    ingress_packets: int = 0
    ingress_bytes: int = 0


@dataclass(slots=True)
class Gateway:
    state: CoreState
    tenants: defaultdict[int, TenantCounts] = field(
        default_factory=lambda: defaultdict(TenantCounts)
    )
    """Network id -> what went out to the external network and came back in (made at the
    first use)."""
    kernel: dict[int, TenantCounts] = field(default_factory=dict)
    """The same, of what the eBPF datapath's gateway programs carried (read in, `carried`)."""

    def carried(self, counts: dict[int, TenantCounts]) -> None:
        """What the kernel carried for each network so far, replacing the last reading."""
        self.kernel = counts

    def tenants_now(self) -> dict[int, TenantCounts]:
        """What went through this gateway per network, the core's and the kernel's summed."""
        found = dict(self.tenants)
        for vni, c in self.kernel.items():
            found[vni] = _plus(found[vni], c) if vni in found else c
        return found

    def _drop(self, reason: DropReason) -> list[Action]:
        self.state.counters.drop(reason)
        return []

    # --- substrate -> kernel -----------------------------------------------------------------

    def from_substrate(
        self,
        packet: bytes,
        gso: TcpGso | None = None,
        payload: Payload | None = None,
    ) -> list[Action]:
        """An IPv6 packet for this gateway's /64 (not for a local node)."""
        state = self.state
        size = len(packet) + (0 if payload is None else len(payload))
        state.counters.count(FROM_SUBSTRATE, size)
        refused = admission.check_ipv6_header(packet, size)
        if refused is not None:
            return self._drop(refused)
        destination = packet[24:40]
        vni, external = network_and_ipv4(destination)
        duty = state.tables.duties.get(vni)
        if duty is None:
            return self._drop(DropReason.GATEWAY_NOT_SERVING)
        if destination[:8] not in duty.prefixes:
            return self._drop(DropReason.NOT_LOCAL_DESTINATION)
        network = duty.network
        if network.contains(external):
            return self._drop(DropReason.GATEWAY_INTERNAL_DESTINATION)
        source = packet[8:24]
        source_vni, sender_ip = network_and_ipv4(source)
        resident = state.tables.residents.get((vni, sender_ip))
        if source_vni != vni or resident is None or not _sent_by(resident, source):
            return self._drop(DropReason.SPOOFED_SUBSTRATE_SOURCE)
        refused = admission.check_ipv6_payload(packet, CARRIED[network.encoding])
        if refused is not None:
            return self._drop(refused)
        mapper = PairMapper(external, destination, sender_ip, source)
        pieces: list[bytes] = [packet]
        if gso is not None:
            whole = packet if payload is None else b"".join((packet, payload))
            cut = offload.segment_tcp(whole, gso.size)
            if isinstance(cut, DropReason):
                return self._drop(cut)
            pieces = cut
        actions: list[Action] = []
        counts = self.tenants[vni]
        for piece in pieces:
            result = self._to_ipv4(duty, piece, mapper)
            if result is None:
                continue
            for out in self._carry(duty, result, toward_kernel=True):
                if isinstance(out, ToTenant):
                    counts.egress_packets += 1
                    counts.egress_bytes += len(out.packet)
                actions.append(out)
        return actions

    def _to_ipv4(self, duty: Duty, packet: bytes, mapper: PairMapper) -> Result | None:
        network = duty.network
        if network.encoding is Encoding.ENCAP:
            inner = decapsulate(self.state, packet, mapper)
            return None if inner is None else Translated((inner,))
        return to_ipv4(packet, mapper, network.siit, self.state.next_identification())

    # --- kernel -> substrate -----------------------------------------------------------------

    def from_tenant(self, vni: int, packet: bytes) -> list[Action]:
        """An IPv4 datagram the kernel sent out of network `vni`'s interface."""
        state = self.state
        duty = state.tables.duties.get(vni)
        if duty is None:
            return self._drop(DropReason.GATEWAY_NOT_SERVING)
        network = duty.network
        refused = admission.check_ipv4(packet, CARRIED[network.encoding])
        if refused is not None:
            return self._drop(refused)
        source, target = packet[12:16], packet[16:20]
        resident = state.tables.residents.get((vni, target))
        if resident is None or not resident.substrate:
            return self._drop(DropReason.GATEWAY_NO_RESIDENT)
        if network.contains(source):  # the kernel routes no tenant address back in
            return self._drop(DropReason.SPOOFED_SOURCE_IP)
        counts = self.tenants[vni]
        counts.ingress_packets += 1
        counts.ingress_bytes += len(packet)
        reply_from = embed_ipv4(duty.gateway.prefix, vni, source)
        mapper = PairMapper(source, reply_from, target, _reply_to(duty, resident, packet))
        result = CROSSING[network.encoding](packet, mapper, network.siit)
        return self._carry(duty, result, toward_kernel=False)

    def _carry(
        self, duty: Duty, result: Translated | Drop | IcmpError, toward_kernel: bool
    ) -> list[Action]:
        """A translator's result: datagrams on their way, an ICMP error back where the
        datagram came from (the substrate sender, or the kernel), a drop counted."""
        counters = self.state.counters
        if isinstance(result, Drop):
            counters.drop(result.reason)
            return []
        vni = duty.network.vni
        if isinstance(result, IcmpError):
            counters.drop(result.reason)
            if toward_kernel:  # an ICMPv6 error about the substrate packet, to its sender
                counters.count(TO_SUBSTRATE, len(result.packet))
                return [ToSubstrate(result.packet)]
            return [ToTenant(vni, result.packet)]
        if toward_kernel:
            return [ToTenant(vni, p) for p in result.packets]
        for p in result.packets:
            counters.count(TO_SUBSTRATE, len(p))
        return [ToSubstrate(p) for p in result.packets]


def _plus(a: TenantCounts, b: TenantCounts) -> TenantCounts:
    return TenantCounts(*(getattr(a, f.name) + getattr(b, f.name) for f in fields(TenantCounts)))


def _sent_by(resident: ResidentEntry, source: bytes) -> bool:
    """Is `source` an address `resident` sends from: its own, a pool's, or (anycast mode) a
    steered variant of its own?"""
    return source in resident.sources or (
        bool(resident.steered) and unsteered(source) == resident.steered
    )


def _reply_to(duty: Duty, resident: ResidentEntry, packet: bytes) -> bytes:
    """Where a datagram from the kernel to `resident` goes: the node's address, in anycast
    mode steered to the slot its sender computed for the flow (seen from the node's side:
    source and destination, and the ports, swap)."""
    pool = duty.pool
    if pool.anycast is None:
        return resident.substrate
    seen = flow_of(packet)
    flow = Flow(seen.dst, seen.src, seen.proto, seen.dport, seen.sport)
    return steer(resident.substrate, steering_slot(flow, pool.fields))
