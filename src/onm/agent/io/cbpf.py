"""Classic BPF socket filters, written by hand: the programs and their wire form.

A packet socket runs its filter on every frame before queueing it, so frames the agent does
not want never reach Python. This module only builds programs (pure, no sockets); attaching
one is `onm.agent.io.packet_socket.attach_filter`.

Instruction encoding and semantics: Documentation/networking/filter.rst ("BPF engine and
instruction set"), constants from include/uapi/linux/filter.h and bpf_common.h. On a packet
socket offset 0 is the first byte of the Ethernet header (packet(7), SOCK_RAW); a load past
the end of the frame ends the program with "drop". The return value is how many bytes of the
frame to keep: 0 drops it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from onm.errors import InvalidInputError
from onm.packet import ethernet

# Instruction classes, sizes, modes, operations and sources (include/uapi/linux/bpf_common.h).
BPF_LD = 0x00
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_ABS = 0x20
BPF_JEQ = 0x10
BPF_K = 0x00

BPF_MAXINSNS = 4096
"""The most instructions a classic program may have (include/uapi/linux/bpf_common.h)."""

ACCEPT_SNAPLEN = 0x40000
"""Bytes kept of an accepted frame: 256 KiB, more than a 64 KiB GSO frame (as tcpdump uses)."""

ETH_HLEN = ethernet.HEADER_LENGTH
"""Ethernet header length: destination MAC, source MAC, ethertype (IEEE 802.3)."""
ETHERTYPE_OFFSET = 12
ETH_P_IPV6 = 0x86DD
"""The IPv6 ethertype (RFC 8200 over Ethernet: RFC 2464 section 3)."""
IPV6_DST_OFFSET = ETH_HLEN + 24
"""The IPv6 destination address follows 8 bytes of header fields and the 16-byte source
(RFC 8200 section 3): 24 bytes into the IPv6 header, 38 into the frame."""

_SOCK_FILTER = struct.Struct("=HBBI")
"""struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; } (include/uapi/linux/filter.h)."""


class BpfInsn(NamedTuple):
    """One classic BPF instruction, struct sock_filter."""

    code: int
    """Opcode: class | size | mode (or class | operation | source)."""
    jt: int
    """For a conditional jump: instructions to skip when true."""
    jf: int
    """For a conditional jump: instructions to skip when false."""
    k: int
    """The generic 32-bit operand: an offset, a constant or a return value."""


def ld_abs_h(offset: int) -> BpfInsn:
    """`ldh [offset]`: A = the big-endian 16-bit word at `offset`."""
    return BpfInsn(BPF_LD | BPF_H | BPF_ABS, 0, 0, offset)


def ld_abs_w(offset: int) -> BpfInsn:
    """`ld [offset]`: A = the big-endian 32-bit word at `offset`."""
    return BpfInsn(BPF_LD | BPF_W | BPF_ABS, 0, 0, offset)


def jeq(value: int, jt: int, jf: int) -> BpfInsn:
    """`jeq #value, jt, jf`: skip `jt` instructions if A == value, else `jf`."""
    return BpfInsn(BPF_JMP | BPF_JEQ | BPF_K, jt, jf, value)


def ret(value: int) -> BpfInsn:
    """`ret #value`: keep `value` bytes of the frame (0 drops it)."""
    return BpfInsn(BPF_RET | BPF_K, 0, 0, value)


def ethertype_filter(ethertype: int) -> list[BpfInsn]:
    """Accept only Ethernet frames whose (outer, untagged) ethertype is `ethertype`."""
    if not 0 <= ethertype <= 0xFFFF:
        raise InvalidInputError("ethertype", f"{ethertype:#x} is not a 16-bit value")
    return [
        ld_abs_h(ETHERTYPE_OFFSET),  # 0: A = ethertype
        jeq(ethertype, 0, 1),  #       1: wanted? fall through, else to 3
        ret(ACCEPT_SNAPLEN),  #        2
        ret(0),  #                     3
    ]


def ipv6_dst_prefix_filter(prefix: bytes) -> list[BpfInsn]:
    """Accept only IPv6 frames whose destination's upper 64 bits equal `prefix` (8 bytes).

    This is how the agent's substrate socket sees only traffic for its own /64.
    """
    return ipv6_dst_prefixes_filter((prefix,))


MAX_PREFIXES = 60
"""The most /64s one filter tests: a jump skips at most 255 instructions, 4 per /64."""


def ipv6_dst_prefixes_filter(prefixes: Sequence[bytes]) -> list[BpfInsn]:
    """Accept only IPv6 frames whose destination's upper 64 bits equal one of `prefixes`
    (8 bytes each, tested in order): an edge host's own /64 and its pools' anycast /64s.
    One prefix gives the program of `ipv6_dst_prefix_filter`."""
    if not 1 <= len(prefixes) <= MAX_PREFIXES:
        raise InvalidInputError("prefixes", f"give 1 to {MAX_PREFIXES} /64s, not {len(prefixes)}")
    count = len(prefixes)
    accept = 2 + 4 * count  # after the ethertype test, four instructions per prefix
    drop = accept + 1
    program = [ld_abs_h(ETHERTYPE_OFFSET), jeq(ETH_P_IPV6, 0, drop - 2)]
    for index, prefix in enumerate(prefixes):
        if len(prefix) != 8:
            raise InvalidInputError("prefix", f"must be the 8 bytes of a /64, got {len(prefix)}")
        high, low = struct.unpack("!II", prefix)
        here = len(program)
        following = here + 4 if index + 1 < count else drop  # the next test, or the drop
        program += [
            ld_abs_w(IPV6_DST_OFFSET),  #                A = destination bits 0..31
            jeq(high, 0, following - (here + 2)),  #     match? else the next prefix
            ld_abs_w(IPV6_DST_OFFSET + 4),  #            A = destination bits 32..63
            jeq(low, accept - (here + 4), following - (here + 4)),
        ]
    return [*program, ret(ACCEPT_SNAPLEN), ret(0)]


def encode_program(program: Sequence[tuple[int, int, int, int]]) -> bytes:
    """The array of struct sock_filter the kernel reads, in host byte order."""
    if not 1 <= len(program) <= BPF_MAXINSNS:
        raise InvalidInputError("program", f"needs 1 to {BPF_MAXINSNS} instructions")
    parts: list[bytes] = []
    for position, (code, jt, jf, k) in enumerate(program):
        if not (0 <= code <= 0xFFFF and 0 <= jt <= 0xFF and 0 <= jf <= 0xFF and 0 <= k < 1 << 32):
            raise InvalidInputError("program", f"instruction {position} is out of range")
        parts.append(_SOCK_FILTER.pack(code, jt, jf, k))
    return b"".join(parts)
