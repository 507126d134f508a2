"""Transport checksums across a translation: what changes is only the pseudo-header.

TCP and UDP (RFC 9293 3.1, RFC 768) sum the same pseudo-header fields in both families except
the addresses, so the checksum moves with one RFC 1624 update from the old address pair to the
new. ICMP is the exception: ICMPv6 sums a pseudo-header and ICMPv4 none (RFC 4443 2.3).
"""

from __future__ import annotations

import struct
from typing import Final

from onm.packet import checksum
from onm.packet.ipproto import IpProtocol

# Offset of the checksum field in each transport header.
CHECKSUM_AT: Final[dict[int, int]] = {IpProtocol.TCP: 16, IpProtocol.UDP: 6}

_TYPE_CODE = struct.Struct("!BB")


def move_checksum(
    protocol: int, payload: bytes, old_addresses: bytes, new_addresses: bytes
) -> bytes:
    """`payload` with its TCP/UDP checksum moved from one address pair to another.

    A checksum field not present (truncated quote) is left alone, and so is a UDP zero checksum
    (no checksum, RFC 768); a UDP result of zero is sent as all ones.
    """
    at = CHECKSUM_AT[protocol]
    if len(payload) < at + 2:
        return payload
    old = int.from_bytes(payload[at : at + 2], "big")
    if protocol == IpProtocol.UDP and old == 0:
        return payload
    new = checksum.adjust(old, checksum.ones_sum(old_addresses), checksum.ones_sum(new_addresses))
    if protocol == IpProtocol.UDP and new == 0:
        new = 0xFFFF
    return payload[:at] + new.to_bytes(2, "big") + payload[at + 2 :]


def retype_icmp(message: bytes, new_type: int, add_sum: int, remove_sum: int) -> bytes:
    """Change an ICMP message's type, fixing its checksum incrementally (RFC 1624).

    Works on a truncated message too: the checksum covers the whole original message, and only
    the type octet and the pseudo-header (`add_sum` in, `remove_sum` out) change.
    """
    if len(message) < 4:
        return bytes((new_type,)) + message[1:]
    old_word = message[0] << 8 | message[1]
    new_word = new_type << 8 | message[1]
    old = int.from_bytes(message[2:4], "big")
    new = checksum.adjust(old, checksum.add(old_word, remove_sum), checksum.add(new_word, add_sum))
    return _TYPE_CODE.pack(new_type, message[1]) + new.to_bytes(2, "big") + message[4:]
