"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

The ones' complement sum of 16-bit words equals the big-endian integer value of the data modulo
0xFFFF (since 2**16 = 1 mod 0xFFFF), which lets CPython do the whole sum in C: this matters for a
userspace datapath that checksums every packet it builds.
"""

from __future__ import annotations

import struct

_PSEUDO_V4 = struct.Struct("!4s4sxBH")
_PSEUDO_V6 = struct.Struct("!16s16sI3xB")


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The folded 16-bit ones' complement sum of `data` (odd length padded with a zero byte).

    Returns a value in 0..0xFFFF; zero only when data and `initial` are all zero (ones' complement
    addition of anything non-zero never yields +0, RFC 1071 section 1).
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = int.from_bytes(data, "big") + initial
    if total == 0:
        return 0
    folded = total % 0xFFFF
    return folded or 0xFFFF


def finish(total: int) -> int:
    """The checksum field value for a folded sum: its ones' complement."""
    return ~total & 0xFFFF


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The RFC 1071 checksum of `data`; a result of 0 means the data verifies when it holds one."""
    return finish(ones_sum(data, initial))


def pseudo_header_v4(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    """Folded sum of the IPv4 pseudo-header (RFC 768, RFC 9293 section 3.1)."""
    return ones_sum(_PSEUDO_V4.pack(src, dst, protocol, length))


def pseudo_header_v6(src: bytes, dst: bytes, next_header: int, length: int) -> int:
    """Folded sum of the IPv6 pseudo-header (RFC 8200 section 8.1)."""
    return ones_sum(_PSEUDO_V6.pack(src, dst, length, next_header))


def add(a: int, b: int) -> int:
    """Ones' complement addition of two folded sums."""
    total = a + b
    return (total & 0xFFFF) + (total >> 16)


def adjust(checksum: int, old_sum: int, new_sum: int) -> int:
    """Update a checksum field when covered data whose folded sum was `old_sum` becomes `new_sum`.

    RFC 1624 section 3, eqn. 3: HC' = ~(~HC + ~m + m'). Works on sums of whole regions as well as
    single words, so a pseudo-header swap (IPv4 <-> IPv6) is one call.
    """
    total = add(add(~checksum & 0xFFFF, ~old_sum & 0xFFFF), new_sum)
    return ~total & 0xFFFF


def adjust_bytes(checksum: int, old: bytes, new: bytes) -> int:
    """`adjust` for a field that changed from `old` to `new` (both of even length)."""
    return adjust(checksum, ones_sum(old), ones_sum(new))
