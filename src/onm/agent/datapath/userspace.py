"""The userspace datapath: packet sockets on the nodes' interfaces and the substrate, one loop.

Portable Python over the same core the eBPF datapath will follow: frames from each node's
host-side interface and IPv6 packets for the host's /64 (a classic BPF filter on the substrate
interface keeps the rest in the kernel) go to `AgentCore`; its actions are carried out here.
Packets for the substrate leave through a packet socket on it, behind an Ethernet header to the
next hop the kernel of the host knows for their destination (`onm.agent.io.neighbours`); until
it knows one, through a raw IPv6 socket, so that the kernel routes them and resolves the
neighbour. All sockets are opened inside the host's network namespace when one is given; the
process itself never changes namespace.

TCP super-frames (GSO, up to 64 KiB) travel whole where they can: every packet socket speaks
virtio-net headers (`onm.packet.offload`), GRO is turned on for every interface read, and a
super-frame the core re-headered whole goes out with a virtio-net header of its own, for the
kernel to cut on its way out (or never, when the next hop is on this machine). One that must
take the raw socket is cut here first.

No one port can stop the loop. A port whose socket fails, or whose interface vanishes under it
(ENETDOWN on receive with no interface left, ENXIO on send, EBADF), is closed and forgotten,
counted (`ports_lost`) and logged once; it is attached again when its interface is back, tried
at the pace `onm.agent.datapath.ports` sets (a missing interface is logged once, then at most
once a minute). A socket closed while a `select()` ready list still names it is skipped: only
the socket the port holds *now* is read. The substrate sockets are reopened the same way when
they fail.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from onm.agent.actions import (
    Action,
    Report,
    ReportClaims,
    ReportGateways,
    ReportHealth,
    Resolve,
    ToNode,
    ToSubstrate,
    ToTenant,
)
from onm.agent.core import AgentCore
from onm.agent.counters import Event as CounterEvent
from onm.agent.datapath.edge import EdgeSide
from onm.agent.datapath.ports import MAX_RETRY, PortRetries
from onm.agent.io.cbpf import ipv6_dst_prefixes_filter
from onm.agent.io.interfaces import interface_info
from onm.agent.io.neighbours import NextHops
from onm.agent.io.netns import run_in_netns
from onm.agent.io.offload import Offloads
from onm.agent.io.packet_socket import (
    SOCKET_GONE_ERRORS,
    bound_interface,
    open_packet_socket,
    recv_frame,
    send_parts,
)
from onm.agent.io.raw6 import open_raw6_sender, send_ipv6
from onm.agent.link import Event, ManagerLink, Resolved, ResolveFailed, SnapshotArrived
from onm.errors import OnmError
from onm.model.clock import utcnow
from onm.netlink.kernel import Kernel
from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.ethernet import EtherType

log = logging.getLogger("onm.agent.datapath")

BATCH = 64
BUFFER = 65536 + 64
RETRY_PORTS_EVERY = MAX_RETRY
"""Seconds between two looks at the ports and substrate sockets when nothing else is due."""
PORTS_LOST = CounterEvent.PORTS_LOST
"""The counter (`Counters.events`) of node ports closed because their socket failed."""
SUBSTRATE_LOST = CounterEvent.SUBSTRATE_SOCKETS_LOST
"""The counter of substrate sockets closed (and reopened) because they failed."""
WAIT_AT_MOST = 0.5
"""Seconds one `select()` waits at most (the core's timers and the port retries may wake it
sooner)."""
NODE_IP = offload.LENGTH + offload.ETHERNET_HEADER
"""Where the IP header starts in what a packet socket with a virtio-net header reads."""
SUBSTRATE_IP = NODE_IP
NO_VNET = offload.NONE


class UserspaceDatapath:
    def __init__(
        self,
        core: AgentCore,
        link: ManagerLink,
        substrate_if: str,
        netns: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        external_if: str = "ext0",
    ) -> None:
        self.core = core
        self.link = link
        self.substrate_if = substrate_if
        self.netns = netns
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self.selector.register(link.inbox, selectors.EVENT_READ, None)
        self.node_sockets: dict[str, socket.socket] = {}
        self.edge = EdgeSide(netns, external_if, self.selector)
        self.substrate_rx: socket.socket | None = None
        self.prefixes: tuple[bytes, ...] | None = None
        """The host's /64 (8 bytes) from the last snapshot, then (an edge host) its pools'
        anycast /64s: what the substrate socket reads."""
        self._listening: tuple[bytes, ...] | None = None
        [self.tx6, self.tx_substrate] = run_in_netns(
            netns,
            lambda: [open_raw6_sender(), *_substrate_sender(substrate_if)()],
        )
        substrate_mac = interface_info(substrate_if, netns=netns).mac
        self.offloads = Offloads(netns)
        self._enable_gro(substrate_if)
        self.next_hops = NextHops(substrate_if, netns, substrate_mac)  # a thread: forks first
        self._buffer = bytearray(BUFFER)
        self._view = memoryview(self._buffer)
        self._retry_at = 0.0
        self.retries = PortRetries()
        self._substrate_retries = PortRetries()
        self._substrate_tx_ok = True
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ToNode: self._to_node,
            ToSubstrate: self._to_substrate,
            Resolve: link.resolve,
            Report: self._report,
            ReportHealth: link.report_health,
            ReportClaims: link.report_claims,
            ReportGateways: self._report_gateways,
            ToTenant: self._to_tenant,
        }
        self._from_cache = False

    # --- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            ready = self.selector.select(timeout=self._timeout())
            now = self.clock()
            for key, _mask in ready:
                source = key.data
                # A handler earlier in this batch may have closed (and even replaced) a socket
                # the list still names: read only the one its port holds now.
                if source is None:
                    self._control(self.link.inbox.drain(), now)
                elif source == "":
                    if key.fileobj is self.substrate_rx:
                        self._from_substrate(key.fileobj, now)
                elif isinstance(source, int):  # a served network's device (edge hosts)
                    self._from_tenant(source)
                elif self.node_sockets.get(source) is key.fileobj:
                    self._from_node(source, key.fileobj, now)
            due = self.core.next_timer()
            if due is not None and due <= now:
                self._execute(self.core.on_timer(now))
            if time.monotonic() >= self._retry_at:
                self._sync_ports()

    def _timeout(self) -> float:
        """Seconds `select()` may wait: until the core's next timer, at most `WAIT_AT_MOST`."""
        due = self.core.next_timer()
        if due is None:
            return WAIT_AT_MOST
        return min(WAIT_AT_MOST, max(0.0, (due - self.clock()).total_seconds()))

    def _from_node(self, interface: str, sock: socket.socket, now: dt.datetime) -> None:
        core = self.core
        execute = self._execute
        view = self._view
        for _ in range(BATCH):
            try:
                length = recv_frame(sock, view)
            except OSError as error:
                if not _interface_down(sock, error):
                    self._lose_port(interface, sock, error)
                return
            if length is None:
                return
            gso = offload.tcp_gso(view[:length])
            if gso is not None:  # the core passes it on whole, or cuts it
                parts = offload.split_super(view[NODE_IP:length])
                if isinstance(parts, DropReason):
                    core.counters.drop(parts)
                    continue
                headers, end = parts
                frame = bytes(view[offload.LENGTH : NODE_IP + headers])
                body = view[NODE_IP + headers : NODE_IP + end]  # sent on before the next read
                execute(core.node_frame(interface, frame, now, gso, body))
                continue
            header = offload.parse_header(view[:length])
            if isinstance(header, DropReason):
                core.counters.drop(header)
                continue
            frames = offload.resolve(header, bytes(view[offload.LENGTH : length]))
            if isinstance(frames, DropReason):
                core.counters.drop(frames)
                continue
            for frame in frames:
                execute(core.node_frame(interface, frame, now))

    def _from_substrate(self, sock: socket.socket, now: dt.datetime) -> None:
        core = self.core
        execute = self._execute
        view = self._view
        for _ in range(BATCH):
            try:
                length = recv_frame(sock, view)
            except OSError as error:
                if not _interface_down(sock, error):
                    self._lose_substrate_rx(sock, error)
                return
            if length is None:
                return
            gso = offload.tcp_gso(view[:length])
            if gso is not None:
                parts = offload.split_super(view[SUBSTRATE_IP:length])
                if isinstance(parts, DropReason):
                    core.counters.drop(parts)
                    continue
                headers, end = parts
                packet = bytes(view[SUBSTRATE_IP : SUBSTRATE_IP + headers])
                body = view[SUBSTRATE_IP + headers : SUBSTRATE_IP + end]
                execute(core.substrate_packet(packet, now, gso, body))
                continue
            header = offload.parse_header(view[:length])
            if isinstance(header, DropReason):
                core.counters.drop(header)
                continue
            if header.flags & offload.F_NEEDS_CSUM:
                frame = offload.complete_checksum(
                    bytes(view[offload.LENGTH : length]), header.csum_start, header.csum_offset
                )
                if isinstance(frame, DropReason):
                    core.counters.drop(frame)
                    continue
                execute(core.substrate_packet(frame[14:], now))
                continue
            execute(core.substrate_packet(bytes(view[SUBSTRATE_IP:length]), now))

    def _from_tenant(self, vni: int) -> None:
        core = self.core
        execute = self._execute
        for packet in self.edge.read(vni):
            execute(core.tenant_packet(vni, packet))

    def _control(self, events: list[Event], now: dt.datetime) -> None:
        for event in events:
            if isinstance(event, SnapshotArrived):
                self._from_cache = event.from_cache
                actions = self.core.apply_snapshot(event.snapshot, now)
                own = event.snapshot.host.prefix.network.network_address.packed[:8]
                self.prefixes = (own, *sorted(self.core.tables.anycast_in))
                self._sync_ports()
                if self.core.tables.edge or self.edge.tuns:
                    self.edge.sync(self.core.tables)
                self._execute(actions)
            elif isinstance(event, Resolved):
                self._execute(self.core.resolved(event.request, event.answer, now))
            elif isinstance(event, ResolveFailed):
                self._execute(self.core.resolve_failed(event.request, now))

    def _execute(self, actions: list[Action]) -> None:
        handlers = self._handlers
        for action in actions:
            handlers[type(action)](action)

    # --- actions -----------------------------------------------------------------------------

    def _to_node(self, action: ToNode) -> None:
        sock = self.node_sockets.get(action.interface)
        if sock is None:  # not attached (yet, or any more): its retry is the port's business
            self.core.counters.drop(DropReason.TRANSMIT_FAILED)
            return
        header = NO_VNET
        if action.gso is not None:
            made = offload.tcp_gso_header(action.frame[14:], action.gso)
            if isinstance(made, DropReason):
                self.core.counters.drop(made)
                return
            header = made
        try:
            sent = send_parts(sock, (header, action.frame, action.payload))
        except OSError as error:  # the port's end, or a frame the kernel refused (EINVAL, ...)
            if error.errno in SOCKET_GONE_ERRORS:
                self._lose_port(action.interface, sock, error)
            sent = False
        if not sent:
            self.core.counters.drop(DropReason.TRANSMIT_FAILED)

    def _to_tenant(self, action: ToTenant) -> None:
        if not self.edge.write(action.vni, action.packet):
            self.core.counters.drop(DropReason.TRANSMIT_FAILED)

    def _report_gateways(self, action: ReportGateways) -> None:
        for g in action.changed:
            if g.alive:
                log.info("edge gateway %s (pool %s) answers again", g.gateway_id, g.pool_id)
            else:
                log.warning("edge gateway %s (pool %s) stopped answering", g.gateway_id, g.pool_id)
        self.link.report_gateways(action)

    def _to_substrate(self, action: ToSubstrate) -> None:
        """Through the packet socket behind the next hop's Ethernet header when the kernel knows
        it (a super-packet with a virtio-net header for the kernel to cut), else through the raw
        socket, which resolves it (a super-packet cut here first)."""
        packet = action.packet
        if packet[24:32] in self.core.tables.anycast_out:
            self._to_anycast(action)
            return
        ethernet = self.next_hops.ethernet_to(packet[24:40])
        gso = action.gso
        if gso is None:
            if ethernet is not None and self._send_substrate((NO_VNET, ethernet, packet)):
                return
            if not self._send_raw(packet):
                self.core.counters.drop(DropReason.TRANSMIT_FAILED)
            return
        header = offload.tcp_gso_header(packet, gso)
        if isinstance(header, DropReason):
            self.core.counters.drop(header)
            return
        parts = (header, ethernet or b"", packet, action.payload)
        if ethernet is not None and self._send_substrate(parts):
            return
        segments = offload.segment_tcp(b"".join((packet, action.payload)), gso.size)
        if isinstance(segments, DropReason):
            self.core.counters.drop(segments)
            return
        for segment in segments:
            if not self._send_raw(segment):
                self.core.counters.drop(DropReason.TRANSMIT_FAILED)

    def _to_anycast(self, action: ToSubstrate) -> None:
        """To an anycast /64: the host's kernel routes each packet as from its (steered)
        source, so its multipath route picks the gateway (a super-packet is cut first: the
        raw socket knows no GSO)."""
        packets = [action.packet]
        if action.gso is not None:
            cut = offload.segment_tcp(b"".join((action.packet, action.payload)), action.gso.size)
            if isinstance(cut, DropReason):
                self.core.counters.drop(cut)
                return
            packets = cut
        for packet in packets:
            try:
                sent = send_ipv6(self.tx6, packet, route_by_source=True)
            except OSError:
                sent = False
            if not sent:
                self.core.counters.drop(DropReason.TRANSMIT_FAILED)

    def _send_substrate(self, parts: tuple[bytes | memoryview, ...]) -> bool:
        """Through the substrate packet socket; False (the raw socket's turn) if it cannot."""
        if not self._substrate_tx_ok:
            return False
        try:
            return send_parts(self.tx_substrate, parts)
        except OSError as error:
            if error.errno not in SOCKET_GONE_ERRORS:  # this packet's refusal
                return False
            # The substrate interface vanished: reopened by `_sync_ports`.
            self._substrate_tx_ok = False
            self.core.counters.events[SUBSTRATE_LOST] += 1
            self._retry_at = time.monotonic()
            log.warning("substrate packet socket on %s failed (%s)", self.substrate_if, error)
            return False

    def _send_raw(self, packet: bytes) -> bool:
        """Through the raw IPv6 socket (the kernel routes it); False if it was not sent."""
        try:
            return send_ipv6(self.tx6, packet)
        except OSError:  # a per-packet refusal not in its list (EINVAL, EADDRNOTAVAIL, ...)
            return False

    def _report(self, action: Report) -> None:
        if not self._from_cache:  # the manager hears of revisions it sent, not of our cache
            self.link.report(action.revision)

    # --- sockets -----------------------------------------------------------------------------

    def _listen_substrate(self, prefixes: tuple[bytes, ...]) -> None:
        """Listen on the substrate interface for packets to `prefixes` (the host's /64, and an
        edge host's anycast /64s): opened when missing or for other prefixes, else kept."""
        if prefixes == self._listening and self.substrate_rx is not None:
            return
        program = ipv6_dst_prefixes_filter(prefixes)

        def opener() -> list[socket.socket]:
            return [
                open_packet_socket(self.substrate_if, EtherType.IPV6, bpf=program, vnet_hdr=True)
            ]

        [sock] = run_in_netns(self.netns, opener)
        for prefix in prefixes:
            self._claim_prefix(prefix)
        if self.substrate_rx is not None:
            self.selector.unregister(self.substrate_rx)
            self.substrate_rx.close()
        self.substrate_rx = sock
        self._listening = prefixes
        self.selector.register(sock, selectors.EVENT_READ, "")
        log.info(
            "listening on %s for %s",
            self.substrate_if,
            ", ".join(f"{socket.inet_ntop(socket.AF_INET6, p + bytes(8))}/64" for p in prefixes),
        )

    def _enable_gro(self, interface: str) -> None:
        """Let `interface` merge what arrives cut into super-frames (GRO): its packet socket
        then reads one frame where forty segments came. (A veth merges only what a peer
        without TSO sends it: a node with offloads off, a substrate port that cuts.)"""
        try:
            self.offloads.set(interface, gro=True)
        except OnmError as error:
            log.warning("could not turn GRO on for %s: %s", interface, error)

    def _claim_prefix(self, prefix: bytes) -> None:
        """Make the host's kernel discard what arrives for our /64 (we have read it already):
        without this route it answers every such packet with Destination Unreachable."""
        network = ipaddress.IPv6Network((prefix + bytes(8), 64))
        try:
            with Kernel(self.netns) as kernel:
                kernel.ensure_blackhole(network)
        except OnmError as error:
            log.warning("could not claim %s: %s", network, error)

    def _sync_ports(self) -> None:
        """Open a socket for every port of the tables whose attempt is due, close those of
        ports that are gone; reopen failed substrate sockets. Never raises for one port.

        An interface that does not exist yet (a VM not started) is tried again later, at the
        pace `PortRetries` sets, and logged once (then at most once a minute).
        """
        now = time.monotonic()
        self._ensure_substrate(now)
        wanted = self.core.tables.interfaces
        for interface in list(self.node_sockets):
            if interface not in wanted:
                self._close_port(interface)
                log.info("detached port %s", interface)
        self.retries.keep_only(wanted)
        for interface in sorted(wanted - set(self.node_sockets)):
            if self.retries.due(interface, now):
                self._attach(interface, now)
        due = [
            t
            for t in (self.retries.next_retry(), self._substrate_retries.next_retry())
            if t is not None
        ]
        self._retry_at = min([*due, now + RETRY_PORTS_EVERY])

    def _attach(self, interface: str, now: float) -> None:
        try:
            [sock] = run_in_netns(self.netns, _opener(interface))
        except (OnmError, OSError) as error:  # no such interface; or no fork, no descriptor
            verdict = self.retries.failed(interface, now)
            if verdict.log and verdict.missing_for == 0:
                log.warning("port %s missing: %s; trying again until it is there", interface, error)
            elif verdict.log:
                log.warning(
                    "port %s still missing after %.0f s (%d more attempts): %s",
                    *(interface, verdict.missing_for, verdict.attempts, error),
                )
            return
        self.node_sockets[interface] = sock
        self.selector.register(sock, selectors.EVENT_READ, interface)
        self._enable_gro(interface)
        back = self.retries.attached(interface, time.monotonic())
        if back is None:
            log.info("attached port %s", interface)
        else:
            log.info("attached port %s (missing for %.1f s)", interface, back.missing_for)

    def _close_port(self, interface: str) -> None:
        sock = self.node_sockets.pop(interface)
        self.selector.unregister(sock)
        sock.close()

    def _lose_port(self, interface: str, sock: socket.socket, error: OSError) -> None:
        """`sock`, the socket of port `interface`, failed: close it, count it, log it once;
        `_sync_ports` attaches the port again when (and if) its interface is there."""
        if self.node_sockets.get(interface) is not sock:  # already lost in this batch
            return
        self._close_port(interface)
        self.core.counters.events[PORTS_LOST] += 1
        now = time.monotonic()
        self.retries.lost(interface, now)
        self._retry_at = min(self._retry_at, self.retries.next_retry() or now)
        log.warning("port %s lost (%s): closed; attached again when it is back", interface, error)

    def _lose_substrate_rx(self, sock: socket.socket, error: OSError) -> None:
        if sock is not self.substrate_rx:
            return
        self.selector.unregister(sock)
        sock.close()
        self.substrate_rx = None
        self.core.counters.events[SUBSTRATE_LOST] += 1
        self._retry_at = time.monotonic()
        log.warning("substrate socket on %s failed (%s): reopening", self.substrate_if, error)

    def _ensure_substrate(self, now: float) -> None:
        """Listen for the host's /64 (once a snapshot has named it); reopen a failed sender.
        Failures are retried and logged at the pace of a missing port."""
        name = self.substrate_if
        listening = self.prefixes is None or (
            self.prefixes == self._listening and self.substrate_rx is not None
        )
        if (listening and self._substrate_tx_ok) or not self._substrate_retries.due(name, now):
            return
        try:
            if self.prefixes is not None:
                self._listen_substrate(self.prefixes)
            if not self._substrate_tx_ok:
                [sock] = run_in_netns(self.netns, _substrate_sender(name))
                self.tx_substrate.close()
                self.tx_substrate = sock
                self._substrate_tx_ok = True
                log.info("substrate packet socket on %s reopened", name)
        except (OnmError, OSError) as error:
            if self._substrate_retries.failed(name, now).log:
                log.warning("substrate %s not usable: %s; trying again", name, error)
            return
        self._substrate_retries.attached(name, now)

    def close(self) -> None:
        for sock in [*self.node_sockets.values(), self.substrate_rx, self.tx6, self.tx_substrate]:
            if sock is not None:
                sock.close()
        self.edge.close()
        self.selector.close()
        self.next_hops.close()
        self.offloads.close()


def _opener(interface: str) -> Callable[[], list[socket.socket]]:
    return lambda: [open_packet_socket(interface, vnet_hdr=True)]


def _substrate_sender(interface: str) -> Callable[[], list[socket.socket]]:
    return lambda: [open_packet_socket(interface, 0, vnet_hdr=True)]


def _interface_down(sock: socket.socket, error: OSError) -> bool:
    """Is `error` on packet socket `sock` only its interface going down (the socket resumes
    when it comes up), rather than the socket's end (the interface deleted, the socket closed)?"""
    if error.errno != errno.ENETDOWN:
        return False
    try:
        return bound_interface(sock) is not None
    except OSError:
        return False
