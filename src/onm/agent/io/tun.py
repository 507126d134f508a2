"""TUN devices: how an edge host's agent hands a tenant network's IPv4 datagrams to its kernel
and takes the kernel's back (Documentation/networking/tuntap.rst).

A TUN device with IFF_NO_PI reads and writes bare IP datagrams: what the agent writes enters
the kernel as if it had arrived on that interface (so netfilter's prerouting, conntrack, NAT
and policy routing see it), and what the kernel routes out of it is read by the agent. The
device lives as long as the descriptor is open (not persistent), so an agent that ends leaves
no interface behind; its successor makes it again. The descriptor is opened in the host's
network namespace (`onm.agent.io.netns.run_in_netns_fds`): a device belongs to the namespace
of the process that created it.
"""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Final

TUN_DEVICE: Final = "/dev/net/tun"
TUNSETIFF: Final = 0x400454CA
"""_IOW('T', 202, int): include/uapi/linux/if_tun.h."""
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
"""No packet-information prefix: bare IP datagrams (if_tun.h)."""
IFNAMSIZ: Final = 16


def open_tun(name: str) -> int:
    """A non-blocking descriptor of TUN device `name`, made if missing (this namespace)."""
    encoded = name.encode()
    if not 0 < len(encoded) < IFNAMSIZ:
        raise ValueError(f"interface name {name!r} must be 1..{IFNAMSIZ - 1} bytes")
    fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifreq = struct.pack(f"{IFNAMSIZ}sH", encoded, IFF_TUN | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifreq.ljust(40, b"\0"))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_datagram(fd: int, size: int = 65536) -> bytes | None:
    """One datagram the kernel sent out of the device; None when there is none now."""
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None


def write_datagram(fd: int, packet: bytes) -> bool:
    """Hand one datagram to the kernel; False if it refused it (counted by the caller)."""
    try:
        return os.write(fd, packet) == len(packet)
    except OSError:
        return False
