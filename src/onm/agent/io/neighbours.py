"""The link-layer address of the next hop toward a substrate destination, as the kernel knows it.

The userspace datapath sends substrate packets through a packet socket, behind an Ethernet
header it writes: a TCP super-frame can leave no other way (a raw IPv6 socket knows no GSO), and
the kernel then neither routes nor filters each packet again. So the agent asks the kernel of
the host's namespace, over netlink (`onm.netlink`), where a destination goes and what MAC that
next hop has. Only a usable entry counts (not INCOMPLETE, FAILED, NONE); without one the
datapath sends through its raw socket (`onm.agent.io.raw6`), whose traffic makes the kernel
resolve the neighbour, and the kernel's neighbour event brings the MAC.

`NextHops` keeps the answers per destination /64 in a thread of its own, so the datapath never
waits for the kernel: until an answer is there, it sends the slow way. Rules: a /64 is looked
up once, when first asked; after that only events change it (a neighbour event for its next
hop sets or clears the MAC; a route event, or lost events, forgets every answer so each is
looked up again when next asked). Nothing is polled.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import queue
import selectors
import socket
import threading

from onm.netlink.errors import KernelError
from onm.netlink.kernel import Kernel, Neighbour
from onm.netlink.neighbours import NeighbourEvents, RoutesChanged

log = logging.getLogger(__name__)


def next_hop_mac(destination: bytes, interface: str, netns: str | None) -> bytes | None:
    """The MAC the kernel of `netns` would send an IPv6 packet for `destination` to, out of
    `interface`; None when it has none (yet), or sends it elsewhere."""
    with Kernel(netns) as kernel:
        hop = kernel.next_hop(ipaddress.IPv6Address(destination), interface)
        return None if hop is None else kernel.neighbour(hop, interface)


class NextHops:
    """Ethernet headers toward substrate destinations, by /64 (every substrate route is a host's
    /64), looked up in the background and kept current by events: `ethernet_to` never blocks."""

    def __init__(self, interface: str, netns: str | None, source_mac: bytes) -> None:
        self.interface = interface
        self.netns = netns
        self._tail = source_mac + b"\x86\xdd"  # our MAC, then EtherType IPv6
        self._known: dict[bytes, bytes | None] = {}
        self._hops: dict[bytes, ipaddress.IPv6Address] = {}
        self._asked: set[bytes] = set()
        self._wanted: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._wake, self._woken = socket.socketpair()
        self._worker = threading.Thread(target=self._work, name="onm-next-hops", daemon=True)
        self._worker.start()

    def ethernet_to(self, destination: bytes) -> bytes | None:
        """The Ethernet header for an IPv6 packet to `destination`, if known; None: not known
        (yet), asked for once."""
        key = destination[:8]
        if key not in self._known and key not in self._asked:
            self._asked.add(key)
            self._ask(destination)
        return self._known.get(key)

    def close(self) -> None:
        self._ask(None)

    def _ask(self, destination: bytes | None) -> None:
        self._wanted.put(destination)
        with contextlib.suppress(OSError):  # closed, or full: the worker is awake anyway
            self._wake.send(b"\0")

    def _work(self) -> None:
        try:
            events = NeighbourEvents(self.netns)
        except KernelError as error:
            log.warning("next hops: %s; substrate packets go the slow way", error)
            self._woken.close()
            return
        kernel = Kernel(self.netns)
        selector = selectors.DefaultSelector()
        selector.register(events, selectors.EVENT_READ)
        selector.register(self._woken, selectors.EVENT_READ)
        try:
            while True:
                for key, _mask in selector.select():
                    if key.fileobj is events:
                        self._apply(events, kernel)
                    else:
                        self._woken.recv(4096)
                while not self._wanted.empty():
                    destination = self._wanted.get()
                    if destination is None:
                        return
                    self._look_up(destination, kernel)
        finally:
            selector.close()
            events.close()
            kernel.close()
            self._woken.close()
            self._wake.close()

    def _look_up(self, destination: bytes, kernel: Kernel) -> None:
        key = destination[:8]
        hop = kernel.next_hop(ipaddress.IPv6Address(destination), self.interface)
        mac = None
        if isinstance(hop, ipaddress.IPv6Address):
            self._hops[key] = hop
            mac = kernel.neighbour(hop, self.interface)
        self._known[key] = None if mac is None else mac + self._tail
        self._asked.discard(key)

    def _apply(self, events: NeighbourEvents, kernel: Kernel) -> None:
        try:
            arrived = events.read()
        except KernelError as error:
            log.warning("next hops: %s", error)
            arrived = [RoutesChanged()]
        link = None
        for event in arrived:
            if isinstance(event, RoutesChanged):
                self._forget()
                continue
            link = link or kernel.link(self.interface)
            if link is not None and event.ifindex == link.index:
                self._neighbour(event)

    def _neighbour(self, event: Neighbour) -> None:
        header = None if event.mac is None else event.mac + self._tail
        for key, hop in list(self._hops.items()):
            if hop == event.address:
                self._known[key] = header

    def _forget(self) -> None:
        """Every answer is looked up again when next asked for."""
        self._hops.clear()
        self._known.clear()
