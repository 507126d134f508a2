"""The userspace datapath: packet sockets on the nodes' interfaces and the substrate, one loop.

Portable Python over the same core the eBPF datapath will follow: frames from each node's
host-side interface and IPv6 packets for the host's /64 go to `AgentCore`; its actions are
carried out here. The substrate's sockets, what they read and how packets leave by them, are
`onm.agent.datapath.substrate`'s; an edge host's TUN devices and gateway kernel state are
`onm.agent.datapath.edge`'s; this module runs the loop and keeps the nodes' ports. All sockets
are opened inside the host's network namespace when one is given; the process itself never
changes namespace.

TCP super-frames (GSO, up to 64 KiB) travel whole where they can: every packet socket speaks
virtio-net headers (`onm.packet.offload`), GRO is turned on for every interface read, and a
super-frame the core re-headered whole goes out with a virtio-net header of its own, for the
kernel to cut on its way out (or never, when the next hop is on this machine).

No one port can stop the loop. A port whose socket fails, or whose interface vanishes under it
(ENETDOWN on receive with no interface left, ENXIO on send, EBADF), is closed and forgotten,
counted (`ports_lost`) and logged once; it is attached again when its interface is back, tried
at the pace `onm.agent.datapath.ports` sets (a missing interface is logged once, then at most
once a minute). A socket closed while a `select()` ready list still names it is skipped: only
the socket the port holds *now* is read. The substrate sockets are reopened the same way when
they fail (`Substrate.ensure`, from `_sync_ports`).
"""

from __future__ import annotations

import datetime as dt
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
from onm.agent.datapath.substrate import (
    BATCH,
    NO_VNET,
    SUBSTRATE_IP,
    Substrate,
    interface_down,
)
from onm.agent.io.netns import run_in_netns
from onm.agent.io.offload import Offloads
from onm.agent.io.packet_socket import (
    SOCKET_GONE_ERRORS,
    open_packet_socket,
    recv_frame,
    send_parts,
)
from onm.agent.link import (
    Event,
    GatewayLoads,
    ManagerLink,
    Resolved,
    ResolveFailed,
    SnapshotArrived,
)
from onm.agent.metrics import KernelCounters
from onm.errors import OnmError
from onm.model.clock import utcnow
from onm.packet import offload
from onm.packet.drop import DropReason

log = logging.getLogger("onm.agent.datapath")

BUFFER = 65536 + 64
RETRY_PORTS_EVERY = MAX_RETRY
"""Seconds between two looks at the ports and substrate sockets when nothing else is due."""
PORTS_LOST = CounterEvent.PORTS_LOST
"""The counter (`Counters.events`) of node ports closed because their socket failed."""
WAIT_AT_MOST = 0.5
"""Seconds one `select()` waits at most (the core's timers and the port retries may wake it
sooner)."""
NODE_IP = SUBSTRATE_IP
"""Where the IP header starts in what a packet socket with a virtio-net header reads."""


class UserspaceDatapath:
    name = "userspace"
    kernel: KernelCounters | None = None
    """The kernel's own counters (the eBPF datapath's programs); none here."""

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
        """Each attached port's socket: what its frames are read from and sent by."""
        self.port_extras: dict[str, list[socket.socket]] = {}
        """More sockets a port's frames are read from (the eBPF datapath's: one per protocol)."""
        self.edge = EdgeSide(netns, external_if, self.selector)
        self.offloads = Offloads(netns)
        self._enable_gro(substrate_if)
        self._retry_at = 0.0
        self.substrate = Substrate(core, substrate_if, netns, self.selector, self._retry_soon)
        self._buffer = bytearray(BUFFER)
        self._view = memoryview(self._buffer)
        self.retries = PortRetries()
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ToNode: self._to_node,
            ToSubstrate: self.substrate.send,
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
            changed = False
            for key, _mask in ready:
                source = key.data
                # A handler earlier in this batch may have closed (and even replaced) a socket
                # the list still names: read only the one its port holds now.
                if source is None:
                    self._control(self.link.inbox.drain(), now)
                    changed = True
                elif source == "":
                    if key.fileobj is self.substrate.rx:
                        self.substrate.read(key.fileobj, self._view, now, self._execute)
                elif isinstance(source, int):  # a served network's device (edge hosts)
                    self._from_tenant(source)
                elif (sock := self._port_socket(source, key.fileobj)) is not None:
                    self._from_node(source, sock, now)
            due = self.core.next_timer()
            if due is not None and due <= now:
                self._execute(self.core.on_timer(now))
                changed = True
            self._tick(now)
            if time.monotonic() >= self._retry_at:
                self._sync_ports()
            self._after_batch(changed)

    def _port_socket(self, interface: str, ready: object) -> socket.socket | None:
        """The socket of port `interface` that `ready` is, if the port still holds it."""
        main = self.node_sockets.get(interface)
        if main is not None and main is ready:
            return main
        for extra in self.port_extras.get(interface, ()):
            if extra is ready:
                return extra
        return None

    def _after_batch(self, changed: bool) -> None:
        """One turn of the loop is done; `changed`: a control event or a timer ran."""
        if changed:
            self._decided()

    def _decided(self) -> None:
        """The core's tables or resolutions may have changed (a snapshot, an answer, a timer):
        nothing to do here; the eBPF datapath writes its maps."""

    def _tick(self, now: dt.datetime) -> None:
        """Each turn of the loop: nothing here; the eBPF datapath reads what the kernel used."""

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
                if not interface_down(sock, error):
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
                self.substrate.prefixes = (own, *sorted(self.core.tables.anycast_in))
                self._sync_ports()
                if self.core.tables.edge or self.edge.tuns:
                    self.edge.sync(self.core.tables)
                self._execute(actions)
            elif isinstance(event, Resolved):
                self._execute(self.core.resolved(event.request, event.answer, now))
            elif isinstance(event, ResolveFailed):
                self._execute(self.core.resolve_failed(event.request, now))
            elif isinstance(event, GatewayLoads):
                self.core.gateway_loads(event.loads)

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

    def _report(self, action: Report) -> None:
        if not self._from_cache:  # the manager hears of revisions it sent, not of our cache
            self.link.report(action.revision)

    # --- sockets -----------------------------------------------------------------------------

    def _enable_gro(self, interface: str) -> None:
        """Let `interface` merge what arrives cut into super-frames (GRO): its packet socket
        then reads one frame where forty segments came. (A veth merges only what a peer
        without TSO sends it: a node with offloads off, a substrate port that cuts.)"""
        try:
            self.offloads.set(interface, gro=True)
        except OnmError as error:
            log.warning("could not turn GRO on for %s: %s", interface, error)

    def _sync_ports(self) -> None:
        """Open a socket for every port of the tables whose attempt is due, close those of
        ports that are gone; reopen failed substrate sockets. Never raises for one port.

        An interface that does not exist yet (a VM not started) is tried again later, at the
        pace `PortRetries` sets, and logged once (then at most once a minute).
        """
        now = time.monotonic()
        self.substrate.ensure(now)
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
            for t in (self.retries.next_retry(), self.substrate.retries.next_retry())
            if t is not None
        ]
        self._retry_at = min([*due, now + RETRY_PORTS_EVERY])

    def _attach(self, interface: str, now: float) -> None:
        try:
            [sock, *extras] = run_in_netns(self.netns, self._opener(interface))
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
        self.port_extras[interface] = extras
        for each in (sock, *extras):
            self.selector.register(each, selectors.EVENT_READ, interface)
        self._enable_gro(interface)
        self._port_attached(interface)
        back = self.retries.attached(interface, time.monotonic())
        if back is None:
            log.info("attached port %s", interface)
        else:
            log.info("attached port %s (missing for %.1f s)", interface, back.missing_for)

    def _opener(self, interface: str) -> Callable[[], list[socket.socket]]:
        """What opens port `interface`'s sockets (in the host's namespace): the first both
        reads and sends, any others only read."""
        return _opener(interface)

    def _port_attached(self, interface: str) -> None:
        """Port `interface` has its sockets (the eBPF datapath attaches its program here)."""

    def _port_closed(self, interface: str) -> None:
        """Port `interface` lost its sockets (the eBPF datapath forgets its ifindex here)."""

    def _close_port(self, interface: str) -> None:
        sock = self.node_sockets.pop(interface)
        for each in (sock, *self.port_extras.pop(interface, ())):
            self.selector.unregister(each)
            each.close()
        self._port_closed(interface)

    def _lose_port(self, interface: str, sock: socket.socket, error: OSError) -> None:
        """`sock`, the socket of port `interface`, failed: close it, count it, log it once;
        `_sync_ports` attaches the port again when (and if) its interface is there."""
        mine = (self.node_sockets.get(interface), *self.port_extras.get(interface, ()))
        if not any(sock is each for each in mine):  # already lost in this batch
            return
        self._close_port(interface)
        self.core.counters.events[PORTS_LOST] += 1
        now = time.monotonic()
        self.retries.lost(interface, now)
        self._retry_at = min(self._retry_at, self.retries.next_retry() or now)
        log.warning("port %s lost (%s): closed; attached again when it is back", interface, error)

    def _retry_soon(self) -> None:
        """A substrate socket failed: `_sync_ports` reopens it at the loop's next turn."""
        self._retry_at = time.monotonic()

    def close(self) -> None:
        for interface in list(self.node_sockets):
            self._close_port(interface)
        self.substrate.close()
        self.edge.close()
        self.selector.close()
        self.offloads.close()


def _opener(interface: str) -> Callable[[], list[socket.socket]]:
    return lambda: [open_packet_socket(interface, vnet_hdr=True)]
