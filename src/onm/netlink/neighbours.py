"""The kernel's neighbour and route events, read from a netlink socket in a namespace.

`NeighbourEvents(netns)` is a netlink socket subscribed to RTNLGRP_NEIGH and the IPv4/IPv6
route groups, opened inside the namespace by `onm.netlink.helper` (the caller never moves).
Its `fileno()` goes into a selector; `read()` drains what arrived as `Neighbour` entries (a
usable MAC, or None when the entry went away or failed) and `RoutesChanged` markers. A full
socket buffer (ENOBUFS: events were lost) is reported as `RoutesChanged` too, so a reader
starts over.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any, Final

from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from onm.netlink import helper
from onm.netlink.errors import KernelError
from onm.netlink.kernel import NETLINK_ROUTE, Neighbour, parse_neighbour

RTMGRP_NEIGH: Final = 0x4
RTMGRP_IPV4_ROUTE: Final = 0x40
RTMGRP_IPV6_ROUTE: Final = 0x400
"""Multicast group bits of neighbour and route changes (include/uapi/linux/rtnetlink.h)."""
BUFFER: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class RoutesChanged:
    """A route was added or removed, or events were lost: every next hop may have moved."""


Event = Neighbour | RoutesChanged


def parse_events(messages: list[Any]) -> list[Event]:
    """Decoded rtnetlink messages (pyroute2's) as events; other messages are ignored."""
    events: list[Event] = []
    for message in messages:
        kind = message.get("event")
        if kind in ("RTM_NEWNEIGH", "RTM_DELNEIGH"):
            entry = parse_neighbour(message, deleted=kind == "RTM_DELNEIGH")
            if entry is not None:
                events.append(entry)
        elif kind in ("RTM_NEWROUTE", "RTM_DELROUTE") and RoutesChanged() not in events:
            events.append(RoutesChanged())
    return events


class NeighbourEvents:
    """A subscription to one namespace's neighbour and route changes."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        try:
            self._sock = helper.socket_in(
                netns,
                socket.AF_NETLINK,
                socket.SOCK_DGRAM,
                NETLINK_ROUTE,
                subject="neighbour events",
            )
            self._sock.bind((0, RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))
            self._sock.setblocking(False)
        except OSError as error:
            raise KernelError("neighbour events", netns, str(error)) from error
        self._marshal = MarshalRtnl()

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def close(self) -> None:
        self._sock.close()

    def read(self) -> list[Event]:
        """Everything that arrived since the last read (never blocks)."""
        events: list[Event] = []
        while True:
            try:
                data = self._sock.recv(BUFFER)
            except BlockingIOError:
                return events
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    events.append(RoutesChanged())
                    continue
                raise KernelError("neighbour events", self.netns, str(error)) from error
            events.extend(parse_events(list(self._marshal.parse(data))))
