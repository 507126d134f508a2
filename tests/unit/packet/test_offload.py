"""onm.packet.offload: what a NIC would do with a node's offloaded frames (virtio 1.1 5.1.6)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt, Raw, raw

from onm.packet import offload
from onm.packet.drop import DropReason
from onm.packet.offload import F_NEEDS_CSUM, Gso, VirtioNetHeader
from support.segments import nic_cut, segment_valid


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


# --- super-frames travelling whole ---------------------------------------------------------------
# A super-packet whose TCP checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL) must come
# out of whoever cuts it as valid segments: `nic_cut` (tests/support/segments.py) is that cutter,
# written from the definitions rather than from onm, and scapy checks the segments.


_PAYLOAD = bytes(range(256)) * 20  # 5120 octets: three segments of 1448 and one of 776
_OPTIONS = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]


def _super4() -> bytes:
    return raw(
        IP(src="10.0.0.2", dst="10.0.0.3", id=100, flags="DF")
        / TCP(sport=40000, dport=5201, seq=1000, flags="PA", options=_OPTIONS)
        / Raw(_PAYLOAD)
    )


def _super6() -> bytes:
    return raw(
        IPv6(src="fd00:0:101:101:400:1:a00:2", dst="fd00:0:101:201:400:1:a00:3", hlim=64)
        / TCP(sport=40000, dport=5201, seq=1000, flags="PA", options=_OPTIONS)
        / Raw(_PAYLOAD)
    )


def _split(packet: bytes) -> tuple[bytes, memoryview]:
    parts = offload.split_super(packet)
    assert not isinstance(parts, DropReason)
    headers, end = parts
    return packet[:headers], memoryview(packet)[headers:end]


@pytest.mark.parametrize("make", [_super4, _super6])
def test_split_finds_headers_and_payload_and_leaves_padding(make: Callable[[], bytes]) -> None:
    headers, payload = _split(make() + b"\0" * 6)
    assert len(headers) == (20 if make is _super4 else 40) + 32
    assert bytes(payload) == _PAYLOAD


@pytest.mark.parametrize("make", [_super4, _super6])
def test_first_segment_is_a_whole_packet_of_one_mss(make: Callable[[], bytes]) -> None:
    first = offload.first_segment(*_split(make()), 1448)
    assert isinstance(first, bytes)
    parsed = IP(first) if first[0] == 0x45 else IPv6(first)
    assert raw(parsed[TCP].payload) == _PAYLOAD[:1448]
    if IP in parsed:
        assert parsed.len == len(first)
        claimed = parsed.chksum
        del parsed.chksum
        assert IP(raw(parsed)).chksum == claimed
    else:
        assert parsed.plen == len(first) - 40


@pytest.mark.parametrize("make", [_super4, _super6])
def test_super_packet_cut_by_a_nic_gives_valid_segments(make: Callable[[], bytes]) -> None:
    packet = make()
    headers, payload = _split(packet)
    made = offload.super_headers(headers, len(payload))
    assert isinstance(made, bytes) and len(made) == len(headers)
    whole = made + bytes(payload)
    assert len(whole) == len(packet) and whole != packet  # the checksum field: partial only
    segments = nic_cut(whole, 1448)
    assert all(segment_valid(s) for s in segments)
    size = len(headers)
    assert [len(s) - size for s in segments] == [1448, 1448, 1448, 776]
    assert b"".join(s[size:] for s in segments) == _PAYLOAD


def test_super_headers_take_the_translated_segment_and_a_link_header() -> None:
    # What the core does: an IPv4 super-packet's payload behind its first segment, translated.
    _, payload = _split(_super4())
    translated = offload.first_segment(*_split(_super6()), 1448)
    assert isinstance(translated, bytes)
    made = offload.super_headers(translated, len(payload), prefix=b"L" * 14)
    assert isinstance(made, bytes) and made[:14] == b"L" * 14
    segments = nic_cut(made[14:] + bytes(payload), 1448)
    assert len(segments) == 4 and all(segment_valid(s) for s in segments)


def test_super_headers_for_more_than_one_datagram_holds_are_refused() -> None:
    four, _ = _split(_super4())
    assert isinstance(offload.super_headers(four, 65535 - 52), bytes)
    assert offload.super_headers(four, 65536 - 52) is DropReason.IPV4_BAD_TOTAL_LENGTH
    six, _ = _split(_super6())
    assert isinstance(offload.super_headers(six, 65535 - 32), bytes)
    assert offload.super_headers(six, 65536 - 32) is DropReason.IPV6_BAD_PAYLOAD_LENGTH


@pytest.mark.parametrize("make", [_super4, _super6])
def test_segment_tcp_cuts_both_families(make: Callable[[], bytes]) -> None:
    segments = offload.segment_tcp(make(), 1448)
    assert isinstance(segments, list) and len(segments) == 4
    assert all(segment_valid(s) for s in segments)
    flags = [(IP(s) if s[0] == 0x45 else IPv6(s))[TCP].flags for s in segments]
    assert [bool(f.P) for f in flags] == [False, False, False, True]
    seqs = [(IP(s) if s[0] == 0x45 else IPv6(s))[TCP].seq for s in segments]
    assert seqs == [1000, 1000 + 1448, 1000 + 2896, 1000 + 4344]


@pytest.mark.parametrize(
    ("make", "gso_type", "start"),
    [(_super4, Gso.TCPV4, 14 + 20), (_super6, Gso.TCPV6, 14 + 40)],
)
def test_gso_header_for_a_super_packet(
    make: Callable[[], bytes], gso_type: Gso, start: int
) -> None:
    header = offload.tcp_gso_header(make(), offload.TcpGso(1448))
    assert isinstance(header, bytes)
    assert offload.parse(header) == (
        VirtioNetHeader(F_NEEDS_CSUM, gso_type, start + 32, 1448, start, 16),
        b"",
    )
    ecn = offload.tcp_gso_header(make(), offload.TcpGso(1448, ecn=True))
    assert isinstance(ecn, bytes) and ecn[1] == gso_type | Gso.ECN


@pytest.mark.parametrize(
    ("gso_type", "size", "expected"),
    [
        (Gso.TCPV4, 1448, offload.TcpGso(1448)),
        (Gso.TCPV6 | Gso.ECN, 1428, offload.TcpGso(1428, ecn=True)),
        (Gso.TCPV4, 0, None),
        (Gso.UDP_L4, 1200, None),
        (Gso.NONE, 0, None),
    ],
)
def test_tcp_gso_of_a_received_header(
    gso_type: int, size: int, expected: offload.TcpGso | None
) -> None:
    header = offload.build(VirtioNetHeader(F_NEEDS_CSUM, gso_type, 0, size, 0, 0))
    assert offload.tcp_gso(header + b"frame") == expected
    assert offload.tcp_gso(header[:9]) is None


def test_what_is_not_a_tcp_super_packet_is_a_drop() -> None:
    udp = raw(IP(src="10.0.0.2", dst="10.0.0.3") / UDP() / Raw(b"x" * 100))
    assert offload.split_super(udp) is DropReason.PROTOCOL_UNTRANSLATABLE
    with_extension = raw(IPv6() / IPv6ExtHdrDestOpt() / TCP() / b"x")
    assert offload.segment_tcp(with_extension, 1448) is DropReason.PROTOCOL_UNTRANSLATABLE
    assert offload.tcp_gso_header(udp, offload.TcpGso(1)) is DropReason.PROTOCOL_UNTRANSLATABLE
    assert offload.split_super(_super4()[:60]) is DropReason.L4_TRUNCATED
    headers, payload = _split(_super4())
    assert offload.first_segment(headers + b"x", payload, 1448) is DropReason.L4_TRUNCATED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 3000), st.sampled_from([0x45, 0x46, 0x60]))
def test_random_super_packets_never_raise(data: bytes, size: int, first: int) -> None:
    for packet in (data, bytes((first,)) + data):
        for result in (
            offload.split_super(packet),
            offload.first_segment(packet, data, size),
            offload.segment_tcp(packet, size),
            offload.tcp_gso_header(packet, offload.TcpGso(size)),
            offload.super_headers(packet, size),
        ):
            assert isinstance(result, tuple | list | bytes | DropReason)


@pytest.mark.parametrize("data_offset", [0, 1, 3, 4])
def test_tcp_data_offset_under_five_words_is_a_drop(data_offset: int) -> None:
    """RFC 9293 3.1: Data Offset counts 32-bit words and is at least 5. A node's GSO frame with
    less (found by fuzzing, `tests/fuzz/corpus/offload/crash-tcp-data-offset-under-5`) raised
    IndexError in the segmenter; it is a counted drop."""
    frame = bytearray(raw(Ether() / IP(src="10.0.0.2", dst="10.0.0.3") / TCP() / Raw(b"t" * 200)))
    frame[14 + 20 + 12] = data_offset << 4
    header = VirtioNetHeader(F_NEEDS_CSUM, Gso.TCPV4, 54, 100, 34, 16)
    assert offload.resolve(header, bytes(frame)) is DropReason.L4_TRUNCATED
    assert offload.split_super(bytes(frame[14:])) is DropReason.L4_TRUNCATED
