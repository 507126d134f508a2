"""What the agent needs to know about a network interface, read inside the right namespace.

Facts come from the SIOCGIF* ioctls on a socket opened in the namespace being asked about
(netdevice(7)). /sys/class/net is deliberately not used: sysfs shows the network namespace of
whoever *mounted* it, so a child that only called setns(2) would still read the agent's own
interfaces there. `interface_info` and `list_interfaces` take `netns` and do their reading in a
helper child (`onm.agent.io.netns`); `read_interface_info` reads in the current namespace and is
what such a child runs.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import socket
import struct
from dataclasses import dataclass

from onm.agent.io.errors import InterfaceNotFoundError
from onm.agent.io.netns import run_in_netns_value
from onm.errors import InvalidInputError

# ioctl request numbers, include/uapi/linux/sockios.h (netdevice(7) documents their ifreq use).
SIOCGIFFLAGS = 0x8913
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933

# Interface flags, include/uapi/linux/if.h (netdevice(7), SIOCGIFFLAGS).
IFF_UP = 0x1
IFF_RUNNING = 0x40

# Link types whose hardware address is a 6-byte MAC, include/uapi/linux/if_arp.h.
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772

IFNAMSIZ = 16
"""Interface names are at most IFNAMSIZ - 1 bytes (include/uapi/linux/if.h)."""

# struct ifreq is the name (IFNAMSIZ bytes) followed by a union whose largest member,
# struct ifmap, makes it 24 bytes on 64-bit Linux: 40 bytes in all.
_IFREQ_SIZE = 40
_UNION = IFNAMSIZ  # offset of the union: ifr_flags, ifr_mtu, ifr_ifindex, ifr_hwaddr


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One network interface as its own namespace sees it."""

    name: str
    """The interface's name."""
    index: int
    """ifindex: unique within the namespace only."""
    mac: bytes
    """The 6-byte hardware address of an Ethernet-like link; empty for links without one (tun)."""
    mtu: int
    """The link MTU in bytes (without the Ethernet header)."""
    up: bool
    """Administratively up (IFF_UP)."""
    running: bool
    """Up and with a carrier (IFF_RUNNING): a veth is running only when its peer is up."""


def check_ifname(name: str) -> str:
    """`name` if the kernel could accept it as an interface name (dev_valid_name in
    net/core/dev.c), else InvalidInputError: a longer name would be silently truncated."""
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ:
        raise InvalidInputError("ifname", f"{name!r} must be 1 to {IFNAMSIZ - 1} bytes long")
    if name in (".", "..") or any(ch == "/" or ch == ":" or ch.isspace() for ch in name):
        raise InvalidInputError("ifname", f"{name!r} is not a valid interface name")
    return name


def read_interface_info(name: str) -> InterfaceInfo:
    """The interface `name` in the current namespace; InterfaceNotFoundError if it is absent."""
    info = _probe(name)
    if info is None:
        raise InterfaceNotFoundError(name)
    return info


def interface_info(name: str, *, netns: str | None = None) -> InterfaceInfo:
    """The interface `name` as namespace `netns` (None: this one) sees it."""
    check_ifname(name)
    info = run_in_netns_value(netns, functools.partial(_probe, name))
    if info is None:
        raise InterfaceNotFoundError(name, netns)
    return info


def list_interfaces(*, netns: str | None = None) -> list[InterfaceInfo]:
    """Every interface of namespace `netns` (None: this one), by index."""
    return run_in_netns_value(netns, _list_here)


def _list_here() -> list[InterfaceInfo]:
    found: list[InterfaceInfo] = []
    for _index, name in socket.if_nameindex():
        info = _probe(name)
        if info is not None:  # it may have gone between the listing and the reading
            found.append(info)
    return sorted(found, key=lambda info: info.index)


def _probe(name: str) -> InterfaceInfo | None:
    """The interface in the current namespace, or None when there is no such interface."""
    check_ifname(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            index = _ifreq_int(sock, name, SIOCGIFINDEX, "i")
            flags = _ifreq_int(sock, name, SIOCGIFFLAGS, "H")
            mtu = _ifreq_int(sock, name, SIOCGIFMTU, "i")
            hwaddr = _ifreq(sock, name, SIOCGIFHWADDR)
        except OSError as error:
            if error.errno == errno.ENODEV:
                return None
            raise
    # ifr_hwaddr is a struct sockaddr: sa_family holds the ARPHRD_* link type, sa_data the address.
    (link_type,) = struct.unpack_from("H", hwaddr, _UNION)
    mac = hwaddr[_UNION + 2 : _UNION + 8] if link_type in (ARPHRD_ETHER, ARPHRD_LOOPBACK) else b""
    return InterfaceInfo(
        name=name,
        index=index,
        mac=bytes(mac),
        mtu=mtu,
        up=bool(flags & IFF_UP),
        running=bool(flags & IFF_RUNNING),
    )


def _ifreq(sock: socket.socket, name: str, request: int) -> bytes:
    buffer = name.encode().ljust(_IFREQ_SIZE, b"\0")
    return fcntl.ioctl(sock.fileno(), request, buffer)


def _ifreq_int(sock: socket.socket, name: str, request: int, fmt: str) -> int:
    (value,) = struct.unpack_from(fmt, _ifreq(sock, name, request), _UNION)
    return int(value)
