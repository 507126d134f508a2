"""The userspace datapath's side on the substrate: the sockets on the host's substrate
interface, what they read, and how a packet for the substrate leaves.

A packet socket reads the IPv6 packets for the host's /64 (and an edge host's anycast /64s): a
classic BPF filter keeps the rest in the kernel, and a blackhole route per prefix keeps the
kernel from answering what we read with Destination Unreachable. Packets for the substrate
leave through a packet socket behind an Ethernet header to the next hop the kernel of the host
knows for their destination (`onm.agent.io.neighbours`); until it knows one, through a raw IPv6
socket, so that the kernel routes them and resolves the neighbour. A super-packet (GSO) goes
out whole with a virtio-net header through the packet socket, and is cut here first for the
raw socket. Packets to an anycast /64 always take the raw socket, routed by their (steered)
source, so that the host's multipath route picks the gateway.

A socket that fails is closed, counted (`SUBSTRATE_LOST`) and logged, and reopened by
`ensure` at the pace `onm.agent.datapath.ports` sets for a missing port; the datapath is told
(`on_lost`) so that it calls `ensure` soon.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import logging
import selectors
import socket
from collections.abc import Callable

from onm.agent.actions import Action, ToSubstrate
from onm.agent.core import AgentCore
from onm.agent.counters import Event as CounterEvent
from onm.agent.datapath.ports import PortRetries
from onm.agent.io.cbpf import ipv6_dst_prefixes_filter
from onm.agent.io.interfaces import interface_info
from onm.agent.io.neighbours import NextHops
from onm.agent.io.netns import run_in_netns
from onm.agent.io.packet_socket import (
    SOCKET_GONE_ERRORS,
    bound_interface,
    open_packet_socket,
    recv_frame,
    send_parts,
)
from onm.agent.io.raw6 import open_raw6_sender, send_ipv6
from onm.errors import OnmError
from onm.netlink.kernel import Kernel
from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.ethernet import EtherType

log = logging.getLogger("onm.agent.datapath")

BATCH = 64
"""Frames read from one socket before the loop looks at the others."""
SUBSTRATE_LOST = CounterEvent.SUBSTRATE_SOCKETS_LOST
"""The counter of substrate sockets closed (and reopened) because they failed."""
SUBSTRATE_IP = offload.LENGTH + offload.ETHERNET_HEADER
"""Where the IP header starts in what a packet socket with a virtio-net header reads."""
NO_VNET = offload.NONE
"""The virtio-net header of a frame that needs nothing of the kernel."""
ExecuteFn = Callable[[list[Action]], None]
"""Carries out what the core returned."""


class Substrate:
    def __init__(
        self,
        core: AgentCore,
        interface: str,
        netns: str | None,
        selector: selectors.BaseSelector,
        on_lost: Callable[[], None],
    ) -> None:
        """Open the senders, then start the next-hop lookups (a thread: every fork first);
        the receiving socket waits for `prefixes` and `ensure`."""
        self.core = core
        self.interface = interface
        self.netns = netns
        self.selector = selector
        self.on_lost = on_lost
        self.rx: socket.socket | None = None
        """The receiving socket, registered with `selector` (data "")."""
        self.prefixes: tuple[bytes, ...] | None = None
        """The host's /64 (8 bytes) from the last snapshot, then (an edge host) its pools'
        anycast /64s: what the receiving socket reads."""
        self._listening: tuple[bytes, ...] | None = None
        [self.tx6, self.tx] = run_in_netns(
            netns, lambda: [open_raw6_sender(), *_sender(interface)()]
        )
        mac = interface_info(interface, netns=netns).mac
        self.next_hops = NextHops(interface, netns, mac)
        self.retries = PortRetries()
        self._tx_ok = True

    # --- receiving ---------------------------------------------------------------------------

    def read(
        self, sock: socket.socket, view: memoryview, now: dt.datetime, execute: ExecuteFn
    ) -> None:
        """Up to `BATCH` packets from `sock` (the receiving socket) to the core."""
        core = self.core
        for _ in range(BATCH):
            try:
                length = recv_frame(sock, view)
            except OSError as error:
                if not interface_down(sock, error):
                    self._lose_rx(sock, error)
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

    # --- sending -----------------------------------------------------------------------------

    def send(self, action: ToSubstrate) -> None:
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
            if ethernet is not None and self._send_packet((NO_VNET, ethernet, packet)):
                return
            if not self._send_raw(packet):
                self.core.counters.drop(DropReason.TRANSMIT_FAILED)
            return
        header = offload.tcp_gso_header(packet, gso)
        if isinstance(header, DropReason):
            self.core.counters.drop(header)
            return
        parts = (header, ethernet or b"", packet, action.payload)
        if ethernet is not None and self._send_packet(parts):
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

    def _send_packet(self, parts: tuple[bytes | memoryview, ...]) -> bool:
        """Through the substrate packet socket; False (the raw socket's turn) if it cannot."""
        if not self._tx_ok:
            return False
        try:
            return send_parts(self.tx, parts)
        except OSError as error:
            if error.errno not in SOCKET_GONE_ERRORS:  # this packet's refusal
                return False
            # The substrate interface vanished: reopened by `ensure`.
            self._tx_ok = False
            self.core.counters.events[SUBSTRATE_LOST] += 1
            self.on_lost()
            log.warning("substrate packet socket on %s failed (%s)", self.interface, error)
            return False

    def _send_raw(self, packet: bytes) -> bool:
        """Through the raw IPv6 socket (the kernel routes it); False if it was not sent."""
        try:
            return send_ipv6(self.tx6, packet)
        except OSError:  # a per-packet refusal not in its list (EINVAL, EADDRNOTAVAIL, ...)
            return False

    # --- the sockets -------------------------------------------------------------------------

    def ensure(self, now: float) -> None:
        """Listen for the host's /64 (once a snapshot has named it); reopen a failed sender.
        Failures are retried and logged at the pace of a missing port."""
        name = self.interface
        listening = self.prefixes is None or (
            self.prefixes == self._listening and self.rx is not None
        )
        if (listening and self._tx_ok) or not self.retries.due(name, now):
            return
        try:
            if self.prefixes is not None:
                self._listen(self.prefixes)
            if not self._tx_ok:
                [sock] = run_in_netns(self.netns, _sender(name))
                self.tx.close()
                self.tx = sock
                self._tx_ok = True
                log.info("substrate packet socket on %s reopened", name)
        except (OnmError, OSError) as error:
            if self.retries.failed(name, now).log:
                log.warning("substrate %s not usable: %s; trying again", name, error)
            return
        self.retries.attached(name, now)

    def _listen(self, prefixes: tuple[bytes, ...]) -> None:
        """Listen on the substrate interface for packets to `prefixes` (the host's /64, and an
        edge host's anycast /64s): opened when missing or for other prefixes, else kept."""
        if prefixes == self._listening and self.rx is not None:
            return
        program = ipv6_dst_prefixes_filter(prefixes)

        def opener() -> list[socket.socket]:
            return [open_packet_socket(self.interface, EtherType.IPV6, bpf=program, vnet_hdr=True)]

        [sock] = run_in_netns(self.netns, opener)
        for prefix in prefixes:
            self._claim_prefix(prefix)
        if self.rx is not None:
            self.selector.unregister(self.rx)
            self.rx.close()
        self.rx = sock
        self._listening = prefixes
        self.selector.register(sock, selectors.EVENT_READ, "")
        log.info(
            "listening on %s for %s",
            self.interface,
            ", ".join(f"{socket.inet_ntop(socket.AF_INET6, p + bytes(8))}/64" for p in prefixes),
        )

    def _claim_prefix(self, prefix: bytes) -> None:
        """Make the host's kernel discard what arrives for our /64 (we have read it already):
        without this route it answers every such packet with Destination Unreachable."""
        network = ipaddress.IPv6Network((prefix + bytes(8), 64))
        try:
            with Kernel(self.netns) as kernel:
                kernel.ensure_blackhole(network)
        except OnmError as error:
            log.warning("could not claim %s: %s", network, error)

    def _lose_rx(self, sock: socket.socket, error: OSError) -> None:
        if sock is not self.rx:
            return
        self.selector.unregister(sock)
        sock.close()
        self.rx = None
        self.core.counters.events[SUBSTRATE_LOST] += 1
        self.on_lost()
        log.warning("substrate socket on %s failed (%s): reopening", self.interface, error)

    def close(self) -> None:
        for sock in (self.rx, self.tx6, self.tx):
            if sock is not None:
                sock.close()
        self.next_hops.close()


def _sender(interface: str) -> Callable[[], list[socket.socket]]:
    return lambda: [open_packet_socket(interface, 0, vnet_hdr=True)]


def interface_down(sock: socket.socket, error: OSError) -> bool:
    """Is `error` on packet socket `sock` only its interface going down (the socket resumes
    when it comes up), rather than the socket's end (the interface deleted, the socket closed)?"""
    if error.errno != errno.ENETDOWN:
        return False
    try:
        return bound_interface(sock) is not None
    except OSError:
        return False
