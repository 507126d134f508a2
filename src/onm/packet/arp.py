"""ARP for IPv4 over Ethernet (RFC 826): the only ARP the agent answers.

Requests from nodes never reach the substrate: the agent parses them, resolves the target and
builds the reply itself. Gratuitous ARP (RFC 5227 section 3) is recognised so that it can be
reported for automatic pool detection and otherwise left unanswered; edge gateways send it
(`announcement`) for the external addresses they take over.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from onm.packet.drop import DropReason

LENGTH = 28
HTYPE_ETHERNET = 1  # RFC 826, "ar$hrd"; IANA arp-parameters hardware type 1
PTYPE_IPV4 = 0x0800

_ARP = struct.Struct("!HHBBH6s4s6s4s")


class ArpOp(enum.IntEnum):
    """ARP opcodes (RFC 826 "ar$op"; IANA arp-parameters)."""

    REQUEST = 1
    REPLY = 2


@dataclass(frozen=True, slots=True)
class ArpPacket:
    op: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    @property
    def is_gratuitous(self) -> bool:
        """An announcement of the sender's own address (RFC 5227 section 3)."""
        return self.sender_ip == self.target_ip

    @property
    def is_probe(self) -> bool:
        """An address conflict probe: sender IP all zeros (RFC 5227 section 2.1.1)."""
        return self.op == ArpOp.REQUEST and self.sender_ip == b"\x00\x00\x00\x00"


def parse(data: bytes) -> ArpPacket | DropReason:
    """Parse an Ethernet/IPv4 ARP packet; trailing padding is ignored."""
    if len(data) < LENGTH:
        return DropReason.ARP_MALFORMED
    htype, ptype, hlen, plen, op, smac, sip, tmac, tip = _ARP.unpack_from(data)
    if htype != HTYPE_ETHERNET or ptype != PTYPE_IPV4 or hlen != 6 or plen != 4:
        return DropReason.ARP_UNSUPPORTED
    if op not in (ArpOp.REQUEST, ArpOp.REPLY):
        return DropReason.ARP_UNSUPPORTED
    return ArpPacket(op, smac, sip, tmac, tip)


def build(packet: ArpPacket) -> bytes:
    return _ARP.pack(
        HTYPE_ETHERNET,
        PTYPE_IPV4,
        6,
        4,
        packet.op,
        packet.sender_mac,
        packet.sender_ip,
        packet.target_mac,
        packet.target_ip,
    )


def announcement(mac: bytes, ip: bytes) -> ArpPacket:
    """An ARP Announcement (RFC 5227 section 3: a request with the sender's own address as both
    sender and target IP, target MAC zero): neighbours that have `ip` cached update it to
    `mac`. A gateway sends it for an address it takes over from another."""
    return ArpPacket(ArpOp.REQUEST, mac, ip, bytes(6), ip)


def reply_to(request: ArpPacket, mac: bytes) -> ArpPacket:
    """The reply that tells `request`'s sender that its target IP is at `mac`."""
    return ArpPacket(ArpOp.REPLY, mac, request.target_ip, request.sender_mac, request.sender_ip)
