"""onm.packet.offload: what a NIC would do with a node's offloaded frames (virtio 1.1 5.1.6)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Ether, Raw, raw

from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.offload import F_NEEDS_CSUM, Gso, VirtioNetHeader


def _valid(frame: bytes) -> bool:
    """scapy recomputes IP and transport checksums independently of onm."""
    packet = Ether(frame)
    layer = TCP if TCP in packet else UDP
    claimed = (packet[IP].chksum, packet[layer].chksum)
    del packet[IP].chksum
    del packet[layer].chksum
    again = Ether(raw(packet))
    return claimed == (again[IP].chksum, again[layer].chksum)


def _partial(frame: bytes, at: int) -> bytes:
    """The frame as a kernel with checksum offload hands it over: pseudo-header sum only."""
    packet = Ether(frame)
    ip = packet[IP]
    length = len(raw(ip.payload))
    pseudo = struct.pack(
        "!4s4sxBH",
        bytes(map(int, ip.src.split("."))),
        bytes(map(int, ip.dst.split("."))),
        ip.proto,
        length,
    )
    total = sum(struct.unpack(f"!{len(pseudo) // 2}H", pseudo))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    data = bytearray(raw(packet))
    struct.pack_into("!H", data, at, total)
    return bytes(data)


def test_header_round_trip() -> None:
    header = VirtioNetHeader(F_NEEDS_CSUM, Gso.TCPV4, 66, 1448, 34, 16)
    parsed = offload.parse(offload.build(header) + b"frame")
    assert parsed == (header, b"frame")
    assert offload.parse(b"short") is DropReason.ETHERNET_TRUNCATED


def test_partial_tcp_checksum_is_completed() -> None:
    frame = raw(Ether() / IP(src="10.0.0.2", dst="10.0.0.3") / TCP(sport=1, dport=2) / b"data")
    partial = _partial(frame, 14 + 20 + 16)
    assert not _valid(partial)
    header = VirtioNetHeader(F_NEEDS_CSUM, Gso.NONE, 0, 0, 34, 16)
    [done] = offload.resolve(header, partial)  # type: ignore[misc]
    assert _valid(done)
    assert done == frame


def test_frame_needing_nothing_is_itself() -> None:
    frame = raw(Ether() / IP() / UDP() / b"x")
    assert offload.resolve(VirtioNetHeader(0, 0, 0, 0, 0, 0), frame) == [frame]


def test_tcp_super_frame_is_cut_into_valid_segments() -> None:
    # RFC 9293 3.7.1: segments of MSS octets, consecutive sequence numbers; PSH/FIN on the last.
    payload = bytes(range(256)) * 20  # 5120 octets
    frame = raw(
        Ether()
        / IP(src="10.0.0.2", dst="10.0.0.3", id=100, flags="DF")
        / TCP(sport=40000, dport=5201, seq=1000, flags="PA", options=[("NOP", None)] * 4)
        / Raw(payload)
    )
    header = VirtioNetHeader(F_NEEDS_CSUM, Gso.TCPV4, 66, 1448, 34, 16)
    segments = offload.resolve(header, frame)
    assert isinstance(segments, list) and len(segments) == 4
    data = b""
    for i, segment in enumerate(segments):
        assert _valid(segment)
        packet = Ether(segment)
        assert packet[TCP].seq == 1000 + len(data)
        assert packet[IP].id == 100 + i and packet[IP].flags.DF
        assert bool(packet[TCP].flags.P) == (i == 3)
        assert len(raw(packet[TCP].payload)) <= 1448
        data += raw(packet[TCP].payload)
    assert data == payload


def test_udp_gso_frame_is_cut_into_datagrams() -> None:
    payload = b"u" * 3000
    frame = raw(Ether() / IP(src="10.0.0.2", dst="10.0.0.3") / UDP(sport=5, dport=6) / payload)
    header = VirtioNetHeader(F_NEEDS_CSUM, Gso.UDP_L4, 42, 1200, 34, 6)
    datagrams = offload.resolve(header, frame)
    assert isinstance(datagrams, list)
    assert [len(raw(Ether(d)[UDP].payload)) for d in datagrams] == [1200, 1200, 600]
    assert all(_valid(d) for d in datagrams)


def test_ipv6_super_frames_are_not_carried() -> None:
    header = VirtioNetHeader(0, Gso.TCPV6, 0, 1400, 0, 0)
    assert offload.resolve(header, b"x" * 100) is DropReason.ETHERTYPE_UNSUPPORTED


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200),
    st.sampled_from(list(Gso)),
    st.integers(0, 0xFFFF),
    st.integers(0, 300),
    st.integers(0, 300),
)
def test_random_frames_never_raise(
    data: bytes, gso: int, size: int, start: int, offset: int
) -> None:
    header = VirtioNetHeader(F_NEEDS_CSUM, gso, 0, size, start, offset)
    result = offload.resolve(header, data)
    assert isinstance(result, list | DropReason)
