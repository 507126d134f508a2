"""The shape of the qdisc tree that delays traffic by destination, as numbers (no I/O here).

`Kernel.ensure_delays` builds it on one device; this module only says what goes where:

    htb 1: (root, default 0: whatever no filter claims leaves at once, unshaped)
     +-- class 1:1 (rate far above the lab's traffic) -- netem 10: delay D1
     +-- class 1:2                                     -- netem 11: delay D2
     ...
    u32 filters on 1:, preference 1, IPv6 only, one per destination network, handles
    800::1, 800::2, ... in u32's default hash table 800:, each matching the destination
    address and naming its band's class.

htb is the classful root (the kernel's `prio` is not built into every kernel that has
`netem`); netem delays each packet by its band's value and keeps their order.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final, NamedTuple

ETH_P_IPV6: Final = 0x86DD
"""EtherType of IPv6 (include/uapi/linux/if_ether.h): the filters' protocol."""
ROOT: Final = 0x0001_0000
"""The root htb qdisc's handle, 1: (major 1, minor 0)."""
FILTER_PREFERENCE: Final = 1
"""All our filters share one preference (and so one u32 classifier instance)."""
U32_TABLE: Final = 0x800
"""u32's default hash table, 800: (net/sched/cls_u32.c: the first table is 0x800)."""
U32_MAX_NODE: Final = 0xFFF
"""A u32 handle is table (12 bits) : bucket (8 bits) : node (12 bits)."""
NETEM_MAJOR: Final = 0x10
"""Band i's netem qdisc has handle (0x10 + i):."""
MAX_BANDS: Final = 0xFFFF - NETEM_MAJOR
IPV6_DESTINATION: Final = 24
"""Byte offset of the destination address in the IPv6 header (RFC 8200 section 3): u32
offsets count from the network header."""
BAND_RATE: Final = "10gbit"
"""Each band's htb rate: far above what a lab sends, so htb only sorts, never shapes."""
BAND_QUANTUM: Final = 60_000
"""Bytes a band sends per round (htb would derive one above its 200,000 limit from the rate)."""

# include/uapi/linux/pkt_cls.h: struct tc_u32_sel (flags, offshift, nkeys, offmask, off, offoff,
# hoff, hmask) and the tc_u32_key array after it (mask, val, off, offmask).
_U32_SEL: Final = struct.Struct("=BBBxHHhhI")
_U32_KEY: Final = struct.Struct("=4s4sii")
_NLA_HEADER: Final = 4


class U32Key(NamedTuple):
    """One 32-bit match of a u32 filter: `(word at offset) & mask == value`."""

    value: int
    mask: int
    offset: int
    """Bytes from the start of the network header."""

    def notation(self) -> str:
        """pyroute2's `VALUE/MASK+OFFSET`."""
        return f"0x{self.value:08x}/0x{self.mask:08x}+{self.offset}"


def band_class(band: int) -> int:
    """The htb class of band `band` (from 0): 1:1, 1:2, ..."""
    if not 0 <= band < MAX_BANDS:
        raise ValueError(f"band {band} is out of range")
    return ROOT | (band + 1)


def band_leaf(band: int) -> int:
    """The handle of band `band`'s netem qdisc: 10:, 11:, ..."""
    if not 0 <= band < MAX_BANDS:
        raise ValueError(f"band {band} is out of range")
    return (NETEM_MAJOR + band) << 16


def filter_handle(number: int) -> int:
    """The u32 handle of filter `number` (from 0): 800::1, 800::2, ..."""
    if not 0 <= number < U32_MAX_NODE:
        raise ValueError(f"at most {U32_MAX_NODE} destinations per device, not {number + 1}")
    return (U32_TABLE << 20) | (number + 1)


def is_filter_node(handle: int) -> bool:
    """A filter in table 800: that matches something (not the table itself, not the head)."""
    return handle >> 20 == U32_TABLE and handle & U32_MAX_NODE != 0


def destination_keys(network: ipaddress.IPv6Network) -> tuple[U32Key, ...]:
    """The u32 keys matching IPv6 destinations in `network`, as the kernel keeps them: one
    32-bit word per word of the prefix (a /0 needs none: it matches every IPv6 packet)."""
    address = int(network.network_address)
    mask = int(network.netmask)
    keys = []
    for word in range((network.prefixlen + 31) // 32):
        shift = 96 - 32 * word
        word_mask = (mask >> shift) & 0xFFFF_FFFF
        word_value = (address >> shift) & word_mask
        keys.append(U32Key(word_value, word_mask, IPV6_DESTINATION + 4 * word))
    return tuple(keys)


def parse_selector(attribute: bytes) -> tuple[U32Key, ...]:
    """The keys of a TCA_U32_SEL attribute (its 4-byte header included), as the kernel
    reports them; ValueError if it is cut short."""
    body = attribute[_NLA_HEADER:]
    if len(body) < _U32_SEL.size:
        raise ValueError("u32 selector shorter than its header")
    _, _, nkeys, *_ = _U32_SEL.unpack_from(body)
    if len(body) < _U32_SEL.size + nkeys * _U32_KEY.size:
        raise ValueError(f"u32 selector too short for its {nkeys} keys")
    keys = []
    for i in range(nkeys):
        mask, value, offset, _ = _U32_KEY.unpack_from(body, _U32_SEL.size + i * _U32_KEY.size)
        keys.append(U32Key(int.from_bytes(value, "big"), int.from_bytes(mask, "big"), offset))
    return tuple(keys)
