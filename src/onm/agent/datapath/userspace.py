"""The userspace datapath: packet sockets on the nodes' interfaces and the substrate, one loop.

Portable Python over the same core the eBPF datapath will follow: frames from each node's
host-side interface and IPv6 packets for the host's /64 (a classic BPF filter on the substrate
interface keeps the rest in the kernel) go to `AgentCore`; its actions are carried out here.
Sending to the substrate goes through a raw IPv6 socket, so the kernel routes and resolves
neighbours. All sockets are opened inside the host's network namespace when one is given; the
process itself never changes namespace.
"""

from __future__ import annotations

import datetime as dt
import logging
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from onm.agent.actions import Action, Report, Resolve, ToNode, ToSubstrate
from onm.agent.core import AgentCore
from onm.agent.io.cbpf import ipv6_dst_prefix_filter
from onm.agent.io.netns import run_in_netns
from onm.agent.io.packet_socket import open_packet_socket, recv_batch, send
from onm.agent.io.raw6 import open_raw6_sender, send_ipv6
from onm.agent.link import Event, ManagerLink, Resolved, ResolveFailed, SnapshotArrived
from onm.errors import OnmError
from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.ethernet import EtherType

log = logging.getLogger("onm.agent.datapath")

BATCH = 64
BUFFER = 65536 + 64
RETRY_PORTS_EVERY = 2.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UserspaceDatapath:
    def __init__(
        self,
        core: AgentCore,
        link: ManagerLink,
        substrate_if: str,
        netns: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.core = core
        self.link = link
        self.substrate_if = substrate_if
        self.netns = netns
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self.selector.register(link.inbox, selectors.EVENT_READ, None)
        self.node_sockets: dict[str, socket.socket] = {}
        self.substrate_rx: socket.socket | None = None
        self.prefix: bytes | None = None
        [self.tx6] = run_in_netns(netns, lambda: [open_raw6_sender()])
        self._buffer = bytearray(BUFFER)
        self._retry_at = 0.0
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ToNode: self._to_node,
            ToSubstrate: self._to_substrate,
            Resolve: link.resolve,
            Report: self._report,
        }
        self._from_cache = False

    # --- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            ready = self.selector.select(timeout=0.5)
            now = self.clock()
            for key, _mask in ready:
                source = key.data
                if source is None:
                    self._control(self.link.inbox.drain(), now)
                elif source == "":
                    self._from_substrate(key.fileobj, now)  # type: ignore[arg-type]
                else:
                    self._from_node(source, key.fileobj, now)  # type: ignore[arg-type]
            if time.monotonic() >= self._retry_at:
                self._retry_at = time.monotonic() + RETRY_PORTS_EVERY
                self._sync_ports()

    def _from_node(self, interface: str, sock: socket.socket, now: dt.datetime) -> None:
        core = self.core
        for data in recv_batch(sock, BATCH, BUFFER, buffer=self._buffer):
            parsed = offload.parse(data)
            if isinstance(parsed, DropReason):
                core.counters.drop(parsed)
                continue
            frames = offload.resolve(*parsed)
            if isinstance(frames, DropReason):
                core.counters.drop(frames)
                continue
            for frame in frames:
                self._execute(core.node_frame(interface, frame, now))

    def _from_substrate(self, sock: socket.socket, now: dt.datetime) -> None:
        core = self.core
        for frame in recv_batch(sock, BATCH, BUFFER, buffer=self._buffer):
            self._execute(core.substrate_packet(frame[14:], now))

    def _control(self, events: list[Event], now: dt.datetime) -> None:
        for event in events:
            if isinstance(event, SnapshotArrived):
                self._from_cache = event.from_cache
                actions = self.core.apply_snapshot(event.snapshot, now)
                self._listen_substrate(event.snapshot.host.prefix.network.network_address.packed)
                self._sync_ports()
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
        if sock is None or not send(sock, offload.NONE + action.frame):
            self.core.counters.drop(DropReason.TRANSMIT_FAILED)

    def _to_substrate(self, action: ToSubstrate) -> None:
        if not send_ipv6(self.tx6, action.packet):
            self.core.counters.drop(DropReason.TRANSMIT_FAILED)

    def _report(self, action: Report) -> None:
        if not self._from_cache:  # the manager hears of revisions it sent, not of our cache
            self.link.report(action.revision)

    # --- sockets -----------------------------------------------------------------------------

    def _listen_substrate(self, prefix16: bytes) -> None:
        prefix = prefix16[:8]
        if prefix == self.prefix and self.substrate_rx is not None:
            return
        program = ipv6_dst_prefix_filter(prefix)

        def opener() -> list[socket.socket]:
            return [open_packet_socket(self.substrate_if, EtherType.IPV6, bpf=program)]

        [sock] = run_in_netns(self.netns, opener)
        self._claim_prefix(prefix)
        if self.substrate_rx is not None:
            self.selector.unregister(self.substrate_rx)
            self.substrate_rx.close()
        self.substrate_rx = sock
        self.prefix = prefix
        self.selector.register(sock, selectors.EVENT_READ, "")
        log.info(
            "listening on %s for %s/64",
            self.substrate_if,
            socket.inet_ntop(socket.AF_INET6, prefix + bytes(8)),
        )

    def _claim_prefix(self, prefix: bytes) -> None:
        """Make the host's kernel discard what arrives for our /64 (we have read it already):
        without this route it answers every such packet with Destination Unreachable."""
        network = socket.inet_ntop(socket.AF_INET6, prefix + bytes(8)) + "/64"
        command = ["ip", *(["-n", self.netns] if self.netns else []), "-6", "route", "replace"]
        done = subprocess.run(
            [*command, "blackhole", network], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log.warning("could not claim %s: %s", network, done.stderr.strip())

    def _sync_ports(self) -> None:
        """Open a socket for every port of the tables, close those of ports that are gone.

        An interface that does not exist yet (a VM not started) is tried again later.
        """
        wanted = self.core.tables.interfaces
        for interface in list(self.node_sockets):
            if interface not in wanted:
                sock = self.node_sockets.pop(interface)
                self.selector.unregister(sock)
                sock.close()
        for interface in sorted(wanted - set(self.node_sockets)):
            try:
                [sock] = run_in_netns(self.netns, _opener(interface))
            except OnmError as error:
                log.info("port %s not ready: %s", interface, error)
                continue
            self.node_sockets[interface] = sock
            self.selector.register(sock, selectors.EVENT_READ, interface)
            log.info("attached port %s", interface)

    def close(self) -> None:
        for sock in [*self.node_sockets.values(), self.substrate_rx, self.tx6]:
            if sock is not None:
                sock.close()
        self.selector.close()


def _opener(interface: str) -> Callable[[], list[socket.socket]]:
    return lambda: [open_packet_socket(interface, vnet_hdr=True)]
