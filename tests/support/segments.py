"""What a NIC (or Linux's GSO) does with a TCP super-packet, written for tests apart from onm.

`nic_cut` cuts an IPv4 or IPv6 TCP super-packet whose checksum field holds the pseudo-header sum
(CHECKSUM_PARTIAL) as Linux's tcp_gso_segment (net/ipv4/tcp_offload.c) does: the partial sum is
moved from the super-packet's TCP length to each segment's, then the checksum is completed from
the TCP header on (what a device does with csum_start / csum_offset). `segment_valid` has scapy
recompute a segment's checksums.
"""

from __future__ import annotations

import struct

from scapy.all import IP, TCP, IPv6, raw


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _words(data: bytes) -> int:
    data = data + b"\0" * (len(data) % 2)
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def nic_cut(packet: bytes, mss: int) -> list[bytes]:
    """The segments a device makes of `packet` (sequence numbers advanced, flags untouched)."""
    version = packet[0] >> 4
    at = (packet[0] & 0x0F) * 4 if version == 4 else 40
    thl = (packet[at + 12] >> 4) * 4
    payload = packet[at + thl :]
    partial = int.from_bytes(packet[at + 16 : at + 18], "big")
    seq = int.from_bytes(packet[at + 4 : at + 8], "big")
    out = []
    for i in range(0, len(payload), mss):
        chunk = payload[i : i + mss]
        length = thl + len(chunk)
        # The pseudo-header's length word changes from the whole TCP length to the segment's.
        moved = _fold(partial + (~(thl + len(payload)) & 0xFFFF) + length)
        tcp = bytearray(packet[at : at + thl])
        tcp[4:8] = ((seq + i) & 0xFFFFFFFF).to_bytes(4, "big")
        tcp[16:18] = moved.to_bytes(2, "big")
        tcp[16:18] = (~_fold(_words(bytes(tcp) + chunk)) & 0xFFFF).to_bytes(2, "big")
        ip = bytearray(packet[:at])
        if version == 4:
            ip[2:4] = (at + length).to_bytes(2, "big")
            ip[10:12] = b"\0\0"
            ip[10:12] = (~_fold(_words(bytes(ip))) & 0xFFFF).to_bytes(2, "big")
        else:
            ip[4:6] = length.to_bytes(2, "big")
        out.append(bytes(ip) + bytes(tcp) + chunk)
    return out


def segment_valid(packet: bytes) -> bool:
    """scapy recomputes the TCP (and IPv4 header) checksums independently of onm."""
    parsed = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
    claimed = parsed[TCP].chksum
    del parsed[TCP].chksum
    if IP in parsed:
        ip_claimed = parsed[IP].chksum
        del parsed[IP].chksum
        again = IP(raw(parsed))
        return (again.chksum, again[TCP].chksum) == (ip_claimed, claimed)
    return IPv6(raw(parsed))[TCP].chksum == claimed
