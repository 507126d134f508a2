"""Ethernet II frames with an optional IEEE 802.1Q tag: what nodes hand to their agent."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from onm.packet.drop import DropReason

HEADER_LENGTH = 14
VLAN_TAG_LENGTH = 4
BROADCAST = b"\xff" * 6

_HEADER = struct.Struct("!6s6sH")
_TAG = struct.Struct("!HH")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class EtherType(enum.IntEnum):
    """EtherType values (IEEE 802, registry at IANA "ieee-802-numbers")."""

    IPV4 = 0x0800
    ARP = 0x0806
    VLAN = 0x8100  # IEEE 802.1Q customer tag
    IPV6 = 0x86DD


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    """A frame with its payload; `vlan_tci` is the 802.1Q tag control field, if tagged."""

    dst: bytes
    src: bytes
    ethertype: int
    payload: bytes
    vlan_tci: int | None = None

    @property
    def vlan_id(self) -> int | None:
        return None if self.vlan_tci is None else self.vlan_tci & 0x0FFF


def parse(data: bytes) -> EthernetFrame | DropReason:
    """Parse a frame; one 802.1Q tag is understood, a second is left in the payload."""
    if len(data) < HEADER_LENGTH:
        return DropReason.ETHERNET_TRUNCATED
    dst, src, ethertype = _HEADER.unpack_from(data)
    if ethertype != EtherType.VLAN:
        return EthernetFrame(dst, src, ethertype, data[HEADER_LENGTH:])
    if len(data) < HEADER_LENGTH + VLAN_TAG_LENGTH:
        return DropReason.ETHERNET_TRUNCATED
    tci, ethertype = _TAG.unpack_from(data, HEADER_LENGTH)
    return EthernetFrame(dst, src, ethertype, data[HEADER_LENGTH + VLAN_TAG_LENGTH :], tci)


def build(frame: EthernetFrame) -> bytes:
    """The wire bytes of `frame` (no padding: the kernel pads short frames)."""
    if frame.vlan_tci is None:
        return _HEADER.pack(frame.dst, frame.src, frame.ethertype) + frame.payload
    return (
        _HEADER.pack(frame.dst, frame.src, EtherType.VLAN)
        + _TAG.pack(frame.vlan_tci, frame.ethertype)
        + frame.payload
    )


def format_mac(mac: bytes) -> str:
    """`02:00:00:00:00:01` form."""
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str) -> bytes:
    """Inverse of `format_mac`; accepts `:` or `-` separators. Raises ValueError when malformed."""
    parts = text.replace("-", ":").split(":")
    # Checked by hand: int(p, 16) alone would also take "+1", " 1" and non-ASCII digits.
    if len(parts) != 6 or not all(len(p) in (1, 2) and set(p) <= _HEX_DIGITS for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)
