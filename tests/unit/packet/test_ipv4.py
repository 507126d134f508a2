"""IPv4 headers (RFC 791): parse with validation, build, source route options."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import Raw, raw
from scapy.layers.inet import IP, IPOption_LSRR, IPOption_NOP, IPOption_RR, IPOption_SSRR

from onm.packet import ipv4
from onm.packet.checksum import internet_checksum
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.ipv4 import IPv4Header, IPv4Packet

FAST = settings(max_examples=200, deadline=None)
SCAPY = settings(max_examples=40, deadline=None)

ipv4s = st.binary(min_size=4, max_size=4)
# Options as they appear on the wire: a whole number of 32-bit words, at most 40 octets.
wire_options = st.integers(min_value=0, max_value=10).flatmap(
    lambda n: st.binary(min_size=4 * n, max_size=4 * n)
)
headers = st.builds(
    IPv4Header,
    src=ipv4s,
    dst=ipv4s,
    protocol=st.integers(min_value=0, max_value=255),
    ttl=st.integers(min_value=0, max_value=255),
    tos=st.integers(min_value=0, max_value=255),
    identification=st.integers(min_value=0, max_value=0xFFFF),
    dont_fragment=st.booleans(),
    more_fragments=st.booleans(),
    fragment_offset=st.integers(min_value=0, max_value=ipv4.OFFSET_MASK),
    options=wire_options,
)
payloads = st.binary(max_size=64)


def _expected(header: IPv4Header, wire: bytes) -> IPv4Header:
    """`header` as parse should give it back: lengths and checksum as on the wire."""
    (csum,) = struct.unpack_from("!H", wire, 10)
    return dataclasses.replace(header, total_length=len(wire), checksum=csum)


def _scapy_recomputed_checksum(wire: bytes) -> int:
    packet = IP(wire)
    del packet.chksum
    return int(IP(bytes(packet)).chksum)


# --- Known vectors -------------------------------------------------------------------------------

# https://en.wikipedia.org/wiki/Internet_checksum (IPv4 header example): a UDP datagram from
# 192.168.0.1 to 192.168.0.199, total length 0x73, DF, TTL 64, checksum 0xb861.
WIKIPEDIA_HEADER = bytes.fromhex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")


def test_known_header_parses() -> None:
    wire = WIKIPEDIA_HEADER + bytes(0x73 - 20)
    packet = ipv4.parse(wire)
    assert isinstance(packet, IPv4Packet)
    h = packet.header
    assert (h.src, h.dst) == (bytes([192, 168, 0, 1]), bytes([192, 168, 0, 199]))
    assert h.protocol == IpProtocol.UDP
    assert (h.ttl, h.tos, h.identification) == (64, 0, 0)
    assert h.dont_fragment
    assert not h.more_fragments
    assert h.fragment_offset == 0
    assert not h.is_fragment
    assert h.options == b""
    assert h.header_length == 20
    assert (h.total_length, h.checksum) == (0x73, 0xB861)
    assert packet.payload == bytes(0x73 - 20)


def test_known_header_builds() -> None:
    header = IPv4Header(
        src=bytes([192, 168, 0, 1]),
        dst=bytes([192, 168, 0, 199]),
        protocol=IpProtocol.UDP,
        dont_fragment=True,
    )
    assert ipv4.build_header(header, 0x73 - 20) == WIKIPEDIA_HEADER


def test_second_known_header() -> None:
    # https://en.wikipedia.org/wiki/IPv4_header_checksum (older revision): TCP, TTL 128,
    # id 0x4422, DF, checksum 0x442e.
    wire = bytes.fromhex("4500 0030 4422 4000 8006 442e 8c7c 19ac ae24 1e2b")
    packet = ipv4.parse(wire + bytes(0x30 - 20))
    assert isinstance(packet, IPv4Packet)
    assert packet.header.checksum == 0x442E
    assert packet.header.identification == 0x4422
    assert packet.header.protocol == IpProtocol.TCP
    assert ipv4.build_header(packet.header, 0x30 - 20) == wire


def test_ethernet_padding_is_discarded() -> None:
    header = IPv4Header(bytes(4), bytes([10, 0, 0, 1]), IpProtocol.ICMP)
    wire = ipv4.build(header, b"abcd")
    packet = ipv4.parse(wire + bytes(22))
    assert isinstance(packet, IPv4Packet)
    assert packet.payload == b"abcd"
    assert packet.header.total_length == 24


def test_options_are_padded_to_a_word() -> None:
    # RFC 791 section 3.1: the header is padded with zeros (End of Option List) to 32 bits.
    header = IPv4Header(bytes(4), bytes(4), 6, options=b"\x01\x01\x01")
    wire = ipv4.build(header, b"")
    assert wire[0] == 0x46
    assert wire[20:] == b"\x01\x01\x01\x00"
    packet = ipv4.parse(wire)
    assert isinstance(packet, IPv4Packet)
    assert packet.header.options == b"\x01\x01\x01\x00"


def test_fragment_fields() -> None:
    header = IPv4Header(
        bytes(4), bytes(4), 17, identification=0xBEEF, more_fragments=True, fragment_offset=185
    )
    wire = ipv4.build(header, bytes(8))
    assert wire[6:8] == struct.pack("!H", ipv4.FLAG_MF | 185)
    packet = ipv4.parse(wire)
    assert isinstance(packet, IPv4Packet)
    assert packet.header.is_fragment
    assert packet.header.fragment_offset == 185
    last = dataclasses.replace(header, more_fragments=False)
    assert last.is_fragment
    assert not dataclasses.replace(last, fragment_offset=0).is_fragment


def test_options_longer_than_40_octets_are_refused() -> None:
    # IHL is 4 bits: 60 octets at most (RFC 791 section 3.1). A longer header cannot be encoded.
    header = IPv4Header(bytes(4), bytes(4), 6, options=bytes(41))
    with pytest.raises(ValueError, match="options"):
        ipv4.build(header, b"")
    assert len(ipv4.build(dataclasses.replace(header, options=bytes(40)), b"")) == 60


# --- scapy as an independent implementation ------------------------------------------------------


def test_built_header_with_source_route_parses_in_scapy() -> None:
    lsrr = bytes([ipv4.OPTION_LSRR, 11, 4, 10, 0, 0, 1, 10, 0, 0, 2])
    header = IPv4Header(
        src=bytes([192, 0, 2, 1]),
        dst=bytes([198, 51, 100, 2]),
        protocol=IpProtocol.UDP,
        ttl=17,
        tos=0xB8,
        identification=4321,
        dont_fragment=True,
        options=bytes([ipv4.OPTION_NOP]) + lsrr,
    )
    wire = ipv4.build(header, b"payload")
    parsed = IP(wire)
    assert (parsed.version, parsed.ihl, parsed.len) == (4, 8, 32 + 7)
    assert (parsed.src, parsed.dst) == ("192.0.2.1", "198.51.100.2")
    assert (parsed.ttl, parsed.tos, parsed.id, parsed.proto) == (17, 0xB8, 4321, 17)
    assert parsed.flags == "DF"
    lsrr_option = parsed.options[1]
    assert isinstance(lsrr_option, IPOption_LSRR)
    assert lsrr_option.routers == ["10.0.0.1", "10.0.0.2"]
    assert lsrr_option.pointer == 4
    assert parsed.chksum == _scapy_recomputed_checksum(wire)


def test_scapy_header_with_options_parses() -> None:
    wire = bytes(
        IP(
            src="203.0.113.9",
            dst="10.1.2.3",
            ttl=3,
            id=0x1234,
            flags="MF",
            frag=100,
            tos=0x10,
            proto=6,
            options=[IPOption_RR(routers=["0.0.0.0"] * 2), IPOption_SSRR(routers=["10.9.9.9"])],
        )
        / (b"x" * 13)
    )
    packet = ipv4.parse(wire)
    assert isinstance(packet, IPv4Packet)
    h = packet.header
    assert (h.src, h.dst) == (bytes([203, 0, 113, 9]), bytes([10, 1, 2, 3]))
    assert (h.ttl, h.identification, h.tos, h.protocol) == (3, 0x1234, 0x10, 6)
    assert h.more_fragments
    assert not h.dont_fragment
    assert h.fragment_offset == 100
    assert h.header_length == (wire[0] & 0x0F) * 4 == 20 + len(h.options)
    assert h.options == wire[20 : h.header_length]
    assert packet.payload == b"x" * 13
    assert ipv4.has_unexpired_source_route(h.options) is True
    assert ipv4.build(h, packet.payload) == wire


@SCAPY
@given(header=headers, payload=payloads)
def test_checksum_agrees_with_scapy(header: IPv4Header, payload: bytes) -> None:
    wire = ipv4.build(header, payload)
    (csum,) = struct.unpack_from("!H", wire, 10)
    assert csum == _scapy_recomputed_checksum(wire)
    parsed = IP(wire)
    assert parsed.len == len(wire)
    assert parsed.frag == header.fragment_offset
    assert bytes(parsed.payload) == payload


# --- Validation ----------------------------------------------------------------------------------

VALID = ipv4.build(
    IPv4Header(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 17, options=b"\x01\x01\x01\x00"),
    bytes(8),
)  # 24-octet header, total length 32


def _patch(wire: bytes, offset: int, value: bytes, fix_checksum: bool = True) -> bytes:
    out = bytearray(wire)
    out[offset : offset + len(value)] = value
    if fix_checksum:
        hlen = min((out[0] & 0x0F) * 4, len(out))
        out[10:12] = b"\x00\x00"
        out[10:12] = struct.pack("!H", internet_checksum(bytes(out[:hlen])))
    return bytes(out)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.IPV4_TRUNCATED),
        (VALID[:19], DropReason.IPV4_TRUNCATED),
        (_patch(VALID, 0, b"\x66"), DropReason.IPV4_BAD_VERSION),
        (_patch(VALID, 0, b"\x06"), DropReason.IPV4_BAD_VERSION),
        (_patch(VALID, 0, b"\x44"), DropReason.IPV4_BAD_HEADER_LENGTH),
        (_patch(VALID, 0, b"\x40"), DropReason.IPV4_BAD_HEADER_LENGTH),
        (_patch(VALID, 0, b"\x4f"), DropReason.IPV4_TRUNCATED),  # IHL 15 > 32 octets given
        (VALID[:23], DropReason.IPV4_TRUNCATED),  # options cut
        (_patch(VALID, 2, b"\x00\x17"), DropReason.IPV4_BAD_TOTAL_LENGTH),  # 23 < IHL 24
        (_patch(VALID, 2, b"\x00\x00"), DropReason.IPV4_BAD_TOTAL_LENGTH),
        (_patch(VALID, 2, b"\x00\x21"), DropReason.IPV4_TRUNCATED),  # 33 > 32 octets given
        (VALID[:31], DropReason.IPV4_TRUNCATED),
        (_patch(VALID, 8, b"\x3f", fix_checksum=False), DropReason.IPV4_BAD_CHECKSUM),
        (_patch(VALID, 10, b"\x00\x00", fix_checksum=False), DropReason.IPV4_BAD_CHECKSUM),
        (_patch(VALID, 23, b"\x01", fix_checksum=False), DropReason.IPV4_BAD_CHECKSUM),
    ],
    ids=[
        "empty",
        "short",
        "version-6",
        "version-0",
        "ihl-4",
        "ihl-0",
        "ihl-beyond-data",
        "options-cut",
        "total-below-ihl",
        "total-zero",
        "total-beyond-data",
        "payload-cut",
        "checksum-ttl",
        "checksum-zeroed",
        "checksum-options",
    ],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert ipv4.parse(wire) == reason


def test_checksum_verification_can_be_skipped() -> None:
    wire = _patch(VALID, 10, b"\x12\x34", fix_checksum=False)
    assert ipv4.parse(wire) == DropReason.IPV4_BAD_CHECKSUM
    packet = ipv4.parse(wire, verify_checksum=False)
    assert isinstance(packet, IPv4Packet)
    assert packet.header.checksum == 0x1234


def test_total_length_equal_to_ihl_is_an_empty_payload() -> None:
    wire = ipv4.build(IPv4Header(bytes(4), bytes(4), 59), b"")
    packet = ipv4.parse(wire)
    assert isinstance(packet, IPv4Packet)
    assert packet.payload == b""


# --- Source route options (RFC 791 section 3.1, RFC 7915 section 4.1) ----------------------------

A1 = bytes([10, 0, 0, 1])
A2 = bytes([10, 0, 0, 2])
LSRR = ipv4.OPTION_LSRR
SSRR = ipv4.OPTION_SSRR
NOP = ipv4.OPTION_NOP
EOL = ipv4.OPTION_EOL


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (b"", False),
        (bytes([EOL]), False),
        (bytes([NOP, NOP, NOP, EOL]), False),
        (bytes([LSRR, 7, 4]) + A1, True),
        (bytes([SSRR, 7, 4]) + A1, True),
        (bytes([LSRR, 11, 8]) + A1 + A2, True),  # second hop still to visit
        (bytes([LSRR, 7, 8]) + A1, False),  # pointer > length: expired
        (bytes([SSRR, 11, 12]) + A1 + A2, False),
        (bytes([LSRR, 3, 4]), False),  # empty route
        (bytes([NOP, LSRR, 7, 4]) + A1, True),
        (bytes([LSRR, 7, 4]) + A1 + bytes([EOL]), True),
        (bytes([EOL, LSRR, 7, 4]) + A1, False),  # nothing after End of Option List counts
        (bytes([7, 7, 4]) + A1 + bytes([LSRR, 7, 4]) + A1, True),  # Record Route skipped
        (bytes([7, 7, 4]) + A1 + bytes([EOL]), False),
        (bytes([LSRR, 7, 8]) + A1 + bytes([SSRR, 7, 4]) + A2, True),
        (bytes([68, 8, 5, 0]) + bytes(4), False),  # Timestamp skipped
        (bytes([LSRR, 1]), DropReason.IPV4_BAD_OPTIONS),  # length < 2
        (bytes([7, 0, 0, 0]), DropReason.IPV4_BAD_OPTIONS),  # length 0 would loop forever
        (bytes([LSRR, 2]), DropReason.IPV4_BAD_OPTIONS),  # no room for the pointer
        (bytes([SSRR, 2, NOP, NOP]), DropReason.IPV4_BAD_OPTIONS),
        (bytes([LSRR]), DropReason.IPV4_BAD_OPTIONS),  # length octet missing
        (bytes([NOP, 68]), DropReason.IPV4_BAD_OPTIONS),
        (bytes([LSRR, 11, 4]) + A1, DropReason.IPV4_BAD_OPTIONS),  # overruns the options
        (bytes([7, 7, 4]) + A1 + bytes([LSRR, 40, 4]), DropReason.IPV4_BAD_OPTIONS),
    ],
    ids=lambda v: v.hex() if isinstance(v, bytes) else str(v),
)
def test_has_unexpired_source_route(options: bytes, expected: bool | DropReason) -> None:
    assert ipv4.has_unexpired_source_route(options) == expected
    assert type(ipv4.has_unexpired_source_route(options)) is type(expected)


def test_scapy_source_routes() -> None:
    fresh = bytes(IP(options=[IPOption_NOP(), IPOption_LSRR(routers=["10.0.0.1"])]))
    expired = bytes(IP(options=[IPOption_SSRR(routers=["10.0.0.1"], pointer=8)]))
    for wire, expected in ((fresh, True), (expired, False)):
        packet = ipv4.parse(wire)
        assert isinstance(packet, IPv4Packet)
        assert ipv4.has_unexpired_source_route(packet.header.options) is expected


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(header=headers, payload=payloads)
def test_parse_build_round_trip(header: IPv4Header, payload: bytes) -> None:
    wire = ipv4.build(header, payload)
    assert len(wire) == header.header_length + len(payload)
    assert ipv4.parse(wire) == IPv4Packet(_expected(header, wire), payload)
    assert internet_checksum(wire[: header.header_length]) == 0


@FAST
@given(header=headers, payload=payloads)
def test_build_parse_is_identity_on_wire(header: IPv4Header, payload: bytes) -> None:
    wire = ipv4.build(header, payload)
    packet = ipv4.parse(wire)
    assert isinstance(packet, IPv4Packet)
    assert ipv4.build(packet.header, packet.payload) == wire


@FAST
@given(data=st.binary(max_size=80))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = ipv4.parse(data)
    assert isinstance(result, IPv4Packet | DropReason)
    assert isinstance(ipv4.parse(data, verify_checksum=False), IPv4Packet | DropReason)


@FAST
@given(data=st.binary(min_size=20, max_size=80))
def test_random_version_4_bytes_never_raise(data: bytes) -> None:
    data = bytes([0x40 | (data[0] & 0x0F)]) + data[1:]
    result = ipv4.parse(data, verify_checksum=False)
    if isinstance(result, IPv4Packet):
        assert result.header.header_length <= result.header.total_length <= len(data)


@FAST
@given(header=headers, payload=payloads)
def test_every_truncation_is_truncated(header: IPv4Header, payload: bytes) -> None:
    wire = ipv4.build(header, payload)
    for cut in range(len(wire)):
        assert ipv4.parse(wire[:cut]) == DropReason.IPV4_TRUNCATED


@FAST
@given(header=headers, data=st.data())
def test_any_single_bit_error_in_the_header_is_dropped(
    header: IPv4Header, data: st.DataObject
) -> None:
    wire = bytearray(ipv4.build(header, b"12345678"))
    bit = data.draw(st.integers(min_value=0, max_value=header.header_length * 8 - 1))
    wire[bit // 8] ^= 0x80 >> (bit % 8)
    assert isinstance(ipv4.parse(bytes(wire)), DropReason)


@FAST
@given(options=st.binary(max_size=40))
def test_source_route_check_never_raises(options: bytes) -> None:
    result = ipv4.has_unexpired_source_route(options)
    assert result in (True, False, DropReason.IPV4_BAD_OPTIONS)


@FAST
@given(header=headers, payload=payloads)
def test_truncations_allowed_for_quoted_datagrams(header: IPv4Header, payload: bytes) -> None:
    # ICMP errors quote a datagram cut short (RFC 792): the header must still be whole.
    wire = ipv4.build(header, payload)
    for cut in range(len(wire) + 1):
        result = ipv4.parse(wire[:cut], allow_truncated=True)
        if cut < header.header_length:
            assert result == DropReason.IPV4_TRUNCATED
        else:
            assert result == IPv4Packet(
                _expected(header, wire), payload[: cut - header.header_length]
            )


def test_allow_truncated_still_validates() -> None:
    total_below_ihl = _patch(VALID, 2, b"\x00\x17")
    assert ipv4.parse(total_below_ihl, allow_truncated=True) == DropReason.IPV4_BAD_TOTAL_LENGTH
    bad_checksum = _patch(VALID, 8, b"\x3f", fix_checksum=False)[:26]
    assert ipv4.parse(bad_checksum, allow_truncated=True) == DropReason.IPV4_BAD_CHECKSUM


# --- fragment, copied_options, decrement_ttl --------------------------------------------------


SRC = bytes((192, 0, 2, 1))
DST = bytes((198, 51, 100, 2))


def _reassemble_from(pieces: tuple[bytes, ...], base: int) -> tuple[bytes, list[ipv4.IPv4Header]]:
    data = b""
    headers = []
    for piece in pieces:
        parsed = ipv4.parse(piece)
        assert isinstance(parsed, ipv4.IPv4Packet)
        assert parsed.header.fragment_offset * 8 == base + len(data)
        data += parsed.payload
        headers.append(parsed.header)
    return data, headers


@pytest.mark.parametrize("mtu", [68, 576, 1280, 1500])
def test_fragment_splits_on_8_octet_boundaries_and_reassembles(mtu: int) -> None:
    # RFC 791 section 3.2: every fragment but the last carries a multiple of 8 octets, MF set.
    header = ipv4.IPv4Header(SRC, DST, 17, identification=4242)
    payload = bytes(range(256)) * 12
    pieces = ipv4.fragment(header, payload, mtu)
    assert all(len(p) <= mtu for p in pieces)
    data, headers = _reassemble_from(pieces, 0)
    assert data == payload
    assert [h.more_fragments for h in headers] == [True] * (len(pieces) - 1) + [False]
    assert {h.identification for h in headers} == {4242}
    assert not any(h.dont_fragment for h in headers)


def test_fragment_of_a_fragment_keeps_offset_and_more_fragments() -> None:
    header = ipv4.IPv4Header(SRC, DST, 6, more_fragments=True, fragment_offset=100)
    pieces = ipv4.fragment(header, bytes(3000), 1500)
    _, headers = _reassemble_from(pieces, 800)
    assert headers[0].fragment_offset == 100
    assert all(h.more_fragments for h in headers)  # the original was not the last fragment


def test_fragment_repeats_only_copied_options() -> None:
    # RFC 791 section 3.1: LSRR (131) has the copied flag, Record Route (7) does not.
    lsrr = bytes([131, 7, 4]) + bytes(4)
    record_route = bytes([7, 7, 4]) + bytes(4)
    header = ipv4.IPv4Header(SRC, DST, 17, options=record_route + lsrr + bytes(2))
    pieces = ipv4.fragment(header, bytes(2000), 1000)
    first = ipv4.parse(pieces[0])
    later = ipv4.parse(pieces[1])
    assert isinstance(first, ipv4.IPv4Packet) and isinstance(later, ipv4.IPv4Packet)
    assert first.header.options.startswith(record_route + lsrr)
    assert later.header.options == lsrr + bytes(1)  # padded to 4 octets
    assert ipv4.copied_options(header.options) == lsrr


def test_copied_options_stops_at_malformed_length() -> None:
    assert ipv4.copied_options(bytes([1, 131, 0, 9])) == b""
    assert ipv4.copied_options(bytes([131])) == b""


def test_decrement_ttl_updates_checksum_incrementally() -> None:
    # RFC 1624 section 4 uses exactly this case; scapy recomputes the checksum independently.
    original = raw(IP(src="192.0.2.1", dst="198.51.100.2", ttl=64) / Raw(b"x"))
    lowered = ipv4.decrement_ttl(original)
    assert lowered[8] == 63
    check = IP(lowered)
    claimed = check.chksum
    del check.chksum
    assert IP(raw(check)).chksum == claimed
    assert lowered[12:] == original[12:]
