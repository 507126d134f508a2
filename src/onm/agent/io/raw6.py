"""Sending finished IPv6 packets into the substrate: a raw IPv6 socket, routed by the kernel.

The userspace datapath builds whole IPv6 packets (header included, source = a node's substrate
address); the kernel only routes them and resolves the next hop's MAC (ndisc). An AF_INET6
SOCK_RAW socket with protocol IPPROTO_RAW does exactly that: on Linux it implies IPV6_HDRINCL
(net/ipv6/af_inet6.c sets HDRINCL for IPPROTO_RAW; raw(7), ipv6(7)), so the buffer given to
sendto(2) is sent as it is, header and all, and the kernel fills in nothing. The kernel does not
check the packet's source either: a source that is not assigned to any local interface (every
node address inside the host's /64) is sent unchanged with no IPV6_FREEBIND, IPV6_TRANSPARENT or
net.ipv6.ip_nonlocal_bind (plain `sendto`: the IPV6_FREEBIND set below only matters for
IPV6_PKTINFO); the system test proves it in a fresh namespace with default sysctls.
Such a socket receives nothing (no packet carries next header 255).

To the kernel's route lookup (and so to a multipath route's hash, net/ipv6/route.c
`rt6_multipath_hash`) such a packet has no source unless one is given: `send_ipv6(...,
route_by_source=True)` passes the header's source as IPV6_PKTINFO (RFC 3542 section 6.1), which
the socket may name without owning it because it is opened with IPV6_FREEBIND. That is how the
source steers the kernel's choice of path toward an anycast /64.

The packet must fit the route's MTU: the kernel neither fragments nor trims a header-included
packet (EMSGSIZE). A link-local or multicast destination needs the interface's `scope_id`.
"""

from __future__ import annotations

import collections
import errno
import socket
import struct

from onm.errors import InvalidInputError
from onm.packet import ipv6

IPPROTO_RAW = 255
"""Raw IP, include/uapi/linux/in.h; for AF_INET6 it means "the packet includes its header"."""
IPV6_HDRINCL = 36
"""include/uapi/linux/in6.h: readable on raw IPv6 sockets since Linux 4.5."""
IPV6_FREEBIND = 78
"""include/uapi/linux/in6.h (Linux 4.15): a source in IPV6_PKTINFO need not be local."""
_PKTINFO_IFINDEX = struct.Struct("=I")
"""struct in6_pktinfo: the address, then the interface index (0: any; RFC 3542 6.1)."""

DEFAULT_SNDBUF = 4 << 20
"""Requested send buffer in bytes (the kernel doubles it, socket(7))."""

IPV6_HEADER_LENGTH = ipv6.HEADER_LENGTH
"""RFC 8200 section 3: the fixed IPv6 header."""
_SRC = slice(8, 24)
_DST = slice(24, 40)
"""The destination address inside the header (RFC 8200 section 3)."""

TRANSIENT_SEND_ERRORS = frozenset(
    {
        errno.EAGAIN,  # the send buffer is full (non-blocking)
        errno.ENOBUFS,  # a queue on the way (qdisc, neighbour) is full
        errno.ENETUNREACH,  # no route to the destination
        errno.EHOSTUNREACH,  # a route, but no usable next hop
        errno.ENETDOWN,  # the route's interface is down
        errno.EMSGSIZE,  # larger than the route's MTU
        errno.EPERM,  # a firewall (netfilter OUTPUT) dropped it
    }
)
"""Errors from sending one packet that are that packet's drop, not the socket's failure."""


def open_raw6_sender(*, sndbuf: int = DEFAULT_SNDBUF) -> socket.socket:
    """A non-blocking raw IPv6 socket that sends header-included packets (this namespace)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_RAW)
    try:
        if sock.getsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL) != 1:  # pragma: no cover
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def send_ipv6(
    sock: socket.socket,
    packet: bytes,
    *,
    scope_id: int = 0,
    drops: collections.Counter[str] | None = None,
    route_by_source: bool = False,
) -> bool:
    """Send the complete IPv6 `packet` to the destination in its own header; with
    `route_by_source`, routed as from its own source (a multipath route hashes on it).

    False (counted in `drops` under the errno name) when the kernel dropped it; InvalidInputError
    if `packet` is not an IPv6 packet at all, which is the caller's bug, not the packet's fate.
    """
    if len(packet) < IPV6_HEADER_LENGTH or packet[0] >> 4 != 6:
        raise InvalidInputError("packet", "is not an IPv6 packet")
    destination = socket.inet_ntop(socket.AF_INET6, packet[_DST])
    try:
        if route_by_source:
            info = b"".join((packet[_SRC], _PKTINFO_IFINDEX.pack(0)))
            ancillary = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)]
            sock.sendmsg([packet], ancillary, 0, (destination, 0, 0, scope_id))
        else:
            sock.sendto(packet, (destination, 0, 0, scope_id))
    except OSError as error:
        if error.errno in TRANSIENT_SEND_ERRORS:
            if drops is not None:
                drops[errno.errorcode[error.errno or 0]] += 1
            return False
        raise
    return True
