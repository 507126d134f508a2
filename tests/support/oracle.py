"""Checks shared by the packet tests: outcomes of a translation, and scapy as an independent
checksum oracle (never onm's own checksum code)."""

from __future__ import annotations

from scapy.layers.inet import IP

from onm.packet.siit import Result, Translated


def single_packet(result: Result) -> bytes:
    """The one packet of a translation that must neither fail nor fragment."""
    assert isinstance(result, Translated), result
    assert len(result.packets) == 1, len(result.packets)
    return result.packets[0]


def assert_ipv4_header_checksum(wire: bytes) -> None:
    """scapy recomputes the IPv4 header checksum and finds the one on the wire."""
    packet = IP(wire)
    written = packet.chksum
    del packet.chksum
    assert IP(bytes(packet)).chksum == written
