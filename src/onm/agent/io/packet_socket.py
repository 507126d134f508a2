"""AF_PACKET sockets: whole Ethernet frames in and out of one interface, for the userspace datapath.

`open_packet_socket` gives a non-blocking SOCK_RAW packet socket bound to one interface in the
current namespace (open it inside another through `onm.agent.io.netns.run_in_netns`). The
socket is created with protocol 0, so it receives nothing until it is configured, filtered and
bound: no unwanted frame is ever queued. `recv_batch` drains what is queued into one buffer,
`recv_frame` reads the next frame into a buffer for its caller to use in place (so a 64 KiB
frame need not be copied at all); `send` writes one frame, `send_parts` one frame given in
pieces (gathered by the kernel: no copy to put a header in front). A full queue and similar
per-frame failures are returned as False and counted, never raised (STYLE rule 5). A failure of
the socket itself is raised as the OSError it is, for the caller to close the socket: its
interface has vanished (the socket stays bound to an interface index that no longer exists:
ENXIO on send, ENETDOWN once on receive, then silence; `bound_interface` tells), or the socket
was closed (EBADF).

Constants: packet(7) and include/uapi/linux/if_packet.h, include/uapi/linux/if_ether.h,
include/uapi/asm-generic/socket.h.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import socket
import struct
from collections.abc import Sequence

from onm.agent.io.cbpf import BpfInsn, encode_program, ethertype_filter, ipv6_dst_prefix_filter
from onm.agent.io.errors import InterfaceNotFoundError
from onm.agent.io.interfaces import check_ifname

__all__ = [
    "SOCKET_GONE_ERRORS",
    "BpfInsn",
    "attach_filter",
    "bound_interface",
    "detach_filter",
    "ethertype_filter",
    "ipv6_dst_prefix_filter",
    "open_packet_socket",
    "recv_batch",
    "recv_frame",
    "send",
    "send_parts",
]

ETH_P_ALL = 0x0003
"""Every protocol, include/uapi/linux/if_ether.h."""

SOL_PACKET = 263
"""Socket option level of packet sockets, include/linux/socket.h."""
PACKET_AUXDATA = 8
"""packet(7): deliver a struct tpacket_auxdata control message with each frame."""
PACKET_VNET_HDR = 15
"""packet(7): each frame is preceded by a struct virtio_net_hdr (see `offload`)."""
PACKET_IGNORE_OUTGOING = 23
"""packet(7) (Linux 4.20): do not loop the socket's own interface's transmissions back to it."""

SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
"""socket(7): like SO_SNDBUF/SO_RCVBUF but may exceed wmem_max/rmem_max (CAP_NET_ADMIN)."""
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
"""socket(7) and Documentation/networking/filter.rst: attach/detach a classic BPF program."""

DEFAULT_RCVBUF = 8 << 20
DEFAULT_SNDBUF = 4 << 20
"""Requested buffer sizes (the kernel doubles them for bookkeeping, socket(7))."""

DEFAULT_BUFSIZE = 65535 + 14 + 4
"""A receive buffer that holds the largest frame a GRO'd veth may hand over (64 KiB + header)."""

TRANSIENT_SEND_ERRORS = frozenset(
    {
        errno.EAGAIN,  # the socket's send buffer is full (non-blocking)
        errno.ENOBUFS,  # the device queue (qdisc) is full
        errno.ENETDOWN,  # the interface is down
        errno.EMSGSIZE,  # the frame is larger than the interface allows
    }
)
"""Errors from sending one frame that are that frame's drop, not the socket's failure.

ENXIO is not among them: it means the interface the socket is bound to has been deleted
(net/packet/af_packet.c finds no device at the socket's ifindex), so every later frame fails too.
"""
SOCKET_GONE_ERRORS = frozenset({errno.ENXIO, errno.ENODEV, errno.EBADF})
"""Errors that end the socket: its interface was deleted, or the socket was closed. Any other
error raised by a send (EINVAL for a virtio-net header the kernel refuses, say) is that frame's."""
BATCH_ENDING_ERRORS = frozenset({errno.ENETDOWN, errno.ENXIO})
"""Errors `recv_batch` counts and ends its batch on: the kernel reports them once per event."""


def open_packet_socket(
    ifname: str,
    ethertype: int = ETH_P_ALL,
    *,
    ignore_outgoing: bool = True,
    rcvbuf: int = DEFAULT_RCVBUF,
    sndbuf: int = DEFAULT_SNDBUF,
    auxdata: bool = False,
    bpf: Sequence[tuple[int, int, int, int]] | None = None,
    vnet_hdr: bool = False,
) -> socket.socket:
    """A non-blocking packet socket receiving `ethertype` frames of `ifname` (this namespace).

    `ignore_outgoing` keeps the socket from reading back frames sent out of `ifname`, its own
    included. `bpf`, if given, is attached before the socket is bound, so not a single frame
    gets past it. `auxdata` is left off: the datapath reads plain frames with `recv_batch`.
    `vnet_hdr` makes the kernel hand over (and expect) offloaded frames whole, each behind a
    virtio-net header (`onm.packet.offload`): partial checksums and 64 KiB GSO super-frames.
    """
    check_ifname(ifname)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setblocking(False)
        _set_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
        _set_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, int(ignore_outgoing))
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, int(auxdata))
        if vnet_hdr:  # every frame read or written starts with a struct virtio_net_hdr
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        if bpf is not None:
            attach_filter(sock, bpf)
        try:
            # CPython converts the protocol of an AF_PACKET address to network byte order
            # itself (sll_protocol = htons(proto)), unlike the third argument of socket().
            sock.bind((ifname, ethertype))
        except OSError as error:
            if error.errno == errno.ENODEV:
                raise InterfaceNotFoundError(ifname) from None
            raise
    except BaseException:
        sock.close()
        raise
    return sock


def attach_filter(sock: socket.socket, program: Sequence[tuple[int, int, int, int]]) -> None:
    """Run classic BPF `program` on every frame `sock` receives (replacing any earlier one).

    SO_ATTACH_FILTER takes a struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    (include/uapi/linux/filter.h); the kernel copies the instructions before returning.
    """
    code = encode_program(program)
    instructions = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HP", len(program), ctypes.addressof(instructions))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def detach_filter(sock: socket.socket) -> None:
    """Remove the socket's filter: every frame of its protocol is received again."""
    sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)


def recv_batch(
    sock: socket.socket,
    max_packets: int = 64,
    bufsize: int = DEFAULT_BUFSIZE,
    *,
    buffer: bytearray | None = None,
    drops: collections.Counter[str] | None = None,
) -> list[bytes]:
    """Up to `max_packets` frames queued on non-blocking `sock`, oldest first; [] if none.

    Frames are received into one buffer (pass `buffer`, at least `bufsize` long, to reuse it
    across calls) and copied out at their length. A frame longer than `bufsize` is dropped and
    counted as "truncated" in `drops` (MSG_TRUNC makes the kernel report its real length). An
    error the kernel reports once on the socket (ENETDOWN when the interface goes down) ends the
    batch and is counted under its errno name.
    """
    if buffer is None:
        buffer = bytearray(bufsize)
    elif len(buffer) < bufsize:
        raise ValueError(f"buffer holds {len(buffer)} bytes, fewer than bufsize {bufsize}")
    view = memoryview(buffer)[:bufsize]
    frames: list[bytes] = []
    while len(frames) < max_packets:
        try:
            length = recv_frame(sock, view, drops=drops)
        except OSError as error:
            if error.errno in BATCH_ENDING_ERRORS:
                _count(drops, errno.errorcode[error.errno])
                break
            raise
        if length is None:
            break
        frames.append(bytes(view[:length]))
    return frames


def recv_frame(
    sock: socket.socket,
    view: memoryview,
    *,
    drops: collections.Counter[str] | None = None,
) -> int | None:
    """Receive the next frame queued on non-blocking `sock` into `view`; its length, or None
    when none is queued.

    A frame longer than `view` is dropped and counted as "truncated", and the next one read.
    Any other error is raised: ENETDOWN (the interface went down, or was deleted: see
    `bound_interface`), EBADF (the socket was closed), ...; the caller decides what it means.
    """
    bufsize = len(view)
    while True:
        try:
            length = sock.recv_into(view, bufsize, socket.MSG_TRUNC)
        except BlockingIOError:
            return None
        if length <= bufsize:
            return length
        _count(drops, "truncated")


def bound_interface(sock: socket.socket) -> str | None:
    """The name of the interface packet socket `sock` is bound to; None if it has been deleted.

    A deleted interface leaves the socket bound to index -1 (af_packet.c, NETDEV_UNREGISTER),
    which has no name; one that is merely down keeps its name and its socket, which resumes
    when it comes up again.
    """
    name = str(sock.getsockname()[0])
    return name or None


def send(
    sock: socket.socket, frame: bytes, *, drops: collections.Counter[str] | None = None
) -> bool:
    """Send one whole Ethernet `frame`; False (counted in `drops`) if it was dropped."""
    try:
        sock.send(frame)
    except OSError as error:
        if error.errno in TRANSIENT_SEND_ERRORS:
            _count(drops, errno.errorcode[error.errno or 0])
            return False
        raise
    return True


def send_parts(
    sock: socket.socket,
    parts: Sequence[bytes | memoryview],
    *,
    drops: collections.Counter[str] | None = None,
) -> bool:
    """Send one frame made of `parts` (sendmsg(2) gathers them); False if it was dropped."""
    try:
        sock.sendmsg(parts)
    except OSError as error:
        if error.errno in TRANSIENT_SEND_ERRORS:
            _count(drops, errno.errorcode[error.errno or 0])
            return False
        raise
    return True


def _count(drops: collections.Counter[str] | None, reason: str) -> None:
    if drops is not None:
        drops[reason] += 1


def _set_buffer(sock: socket.socket, forced: int, plain: int, size: int) -> None:
    """Ask for `size` bytes, beyond the sysctl limit if we are allowed to, else up to it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, forced, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)
