"""Ethernet II frames with an optional 802.1Q tag, and MAC address text."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from onm.packet import ethernet
from onm.packet.drop import DropReason
from onm.packet.ethernet import EthernetFrame, EtherType

FAST = settings(max_examples=200, deadline=None)

macs = st.binary(min_size=6, max_size=6)
ethertypes = st.integers(min_value=0, max_value=0xFFFF)
tcis = st.integers(min_value=0, max_value=0xFFFF)
payloads = st.binary(max_size=64)

# http://www.mynetwatchman.com/kb/NetKb/ARP/goodarp.htm, "Frame 7": a broadcast ARP request
# from 00:a0:c9:22:b2:10 (172.16.1.101) for 172.16.1.50, padded to 60 octets.
ARP_REQUEST_FRAME = bytes.fromhex(
    "ffffffffffff00a0c922b2100806000108000604000100a0c922b210ac100165"
    "000000000000ac100132000000000000000000000000000000000000"
)


def test_captured_arp_frame() -> None:
    frame = ethernet.parse(ARP_REQUEST_FRAME)
    assert isinstance(frame, EthernetFrame)
    assert frame.dst == ethernet.BROADCAST
    assert frame.src == bytes.fromhex("00a0c922b210")
    assert frame.ethertype == EtherType.ARP
    assert frame.vlan_tci is None
    assert frame.vlan_id is None
    assert len(frame.payload) == 60 - ethernet.HEADER_LENGTH  # padding stays in the payload
    assert ethernet.build(frame) == ARP_REQUEST_FRAME


def test_scapy_tagged_frame_parses() -> None:
    wire = bytes(
        Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
        / Dot1Q(prio=5, dei=1, vlan=100)
        / IP(src="10.0.0.1", dst="10.0.0.2")
    )
    frame = ethernet.parse(wire)
    assert isinstance(frame, EthernetFrame)
    assert frame.dst == ethernet.parse_mac("02:00:00:00:00:02")
    assert frame.src == ethernet.parse_mac("02:00:00:00:00:01")
    assert frame.ethertype == EtherType.IPV4
    # 802.1Q TCI: PCP(3) DEI(1) VID(12).
    assert frame.vlan_tci == (5 << 13) | (1 << 12) | 100
    assert frame.vlan_id == 100
    assert frame.payload == wire[18:]


def test_tagged_frame_built_parses_in_scapy() -> None:
    frame = EthernetFrame(
        dst=bytes.fromhex("020000000002"),
        src=bytes.fromhex("020000000001"),
        ethertype=EtherType.ARP,
        payload=bytes(ARP(op=1, psrc="10.0.0.1", pdst="10.0.0.2")),
        vlan_tci=(3 << 13) | 4094,
    )
    parsed = Ether(ethernet.build(frame))
    assert parsed.type == EtherType.VLAN
    assert parsed[Dot1Q].prio == 3
    assert parsed[Dot1Q].dei == 0
    assert parsed[Dot1Q].vlan == 4094
    assert parsed[Dot1Q].type == EtherType.ARP
    assert parsed[ARP].pdst == "10.0.0.2"


def test_untagged_frame_built_parses_in_scapy() -> None:
    frame = EthernetFrame(ethernet.BROADCAST, bytes(range(6)), EtherType.IPV6, b"\x60" + bytes(39))
    parsed = Ether(ethernet.build(frame))
    assert parsed.dst == "ff:ff:ff:ff:ff:ff"
    assert parsed.src == "00:01:02:03:04:05"
    assert parsed.type == EtherType.IPV6
    assert Dot1Q not in parsed


def test_second_tag_is_left_in_the_payload() -> None:
    # 802.1ad-style double tagging with 0x8100 twice: only the outer tag is understood.
    wire = bytes(Ether() / Dot1Q(vlan=10) / Dot1Q(vlan=20) / IP())
    frame = ethernet.parse(wire)
    assert isinstance(frame, EthernetFrame)
    assert frame.vlan_id == 10
    assert frame.ethertype == EtherType.VLAN
    assert frame.payload[:2] == (20).to_bytes(2, "big")


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.ETHERNET_TRUNCATED),
        (ARP_REQUEST_FRAME[:13], DropReason.ETHERNET_TRUNCATED),
        (bytes(12) + b"\x81\x00", DropReason.ETHERNET_TRUNCATED),
        (bytes(12) + b"\x81\x00\x00\x64\x08", DropReason.ETHERNET_TRUNCATED),
    ],
    ids=["empty", "short-header", "tag-missing", "tag-short"],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert ethernet.parse(wire) == reason


def test_header_only_frames_parse() -> None:
    assert ethernet.parse(bytes(12) + b"\x08\x00") == EthernetFrame(bytes(6), bytes(6), 0x0800, b"")
    tagged = ethernet.parse(bytes(12) + b"\x81\x00\x00\x64\x08\x06")
    assert tagged == EthernetFrame(bytes(6), bytes(6), 0x0806, b"", 100)


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(dst=macs, src=macs, ethertype=ethertypes, payload=payloads, tci=st.none() | tcis)
def test_parse_build_round_trip(
    dst: bytes, src: bytes, ethertype: int, payload: bytes, tci: int | None
) -> None:
    # An untagged frame whose EtherType is 0x8100 would read back as tagged.
    assume(tci is not None or ethertype != EtherType.VLAN)
    frame = EthernetFrame(dst, src, ethertype, payload, tci)
    assert ethernet.parse(ethernet.build(frame)) == frame


@FAST
@given(data=st.binary(max_size=40))
def test_random_bytes_parse_or_drop_and_rebuild(data: bytes) -> None:
    result = ethernet.parse(data)
    if isinstance(result, DropReason):
        assert result == DropReason.ETHERNET_TRUNCATED
    else:
        assert ethernet.build(result) == data


@FAST
@given(dst=macs, src=macs, payload=payloads, tci=st.none() | tcis)
def test_every_truncation_is_handled(
    dst: bytes, src: bytes, payload: bytes, tci: int | None
) -> None:
    wire = ethernet.build(EthernetFrame(dst, src, EtherType.IPV4, payload, tci))
    header = ethernet.HEADER_LENGTH + (0 if tci is None else ethernet.VLAN_TAG_LENGTH)
    for cut in range(len(wire)):
        result = ethernet.parse(wire[:cut])
        if cut < header:
            assert result == DropReason.ETHERNET_TRUNCATED
        else:
            assert isinstance(result, EthernetFrame)
            assert result.payload == payload[: cut - header]


# --- MAC address text ----------------------------------------------------------------------------


def test_format_mac() -> None:
    assert ethernet.format_mac(bytes.fromhex("0200000000ab")) == "02:00:00:00:00:ab"


@pytest.mark.parametrize(
    ("text", "mac"),
    [
        ("02:00:00:00:00:01", "020000000001"),
        ("02-00-00-00-00-01", "020000000001"),
        ("2:0:0:0:0:1", "020000000001"),
        ("AA:bb:Cc:dD:ee:FF", "aabbccddeeff"),
        ("ff:ff:ff:ff:ff:ff", "ffffffffffff"),
    ],
)
def test_parse_mac_accepts(text: str, mac: str) -> None:
    assert ethernet.parse_mac(text) == bytes.fromhex(mac)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "02:00:00:00:00",
        "02:00:00:00:00:01:02",
        "020000000001",
        "002:00:00:00:00:01",
        "02::00:00:00:01",
        "02:00:00:00:00:",
        "02:00:00:00:00:0g",
        "02.00.00.00.00.01",
        "02:00:00:00:00:+1",
        "02:00:00:00:00: 1",
        "02:00:00:00:00:1 ",
        "02:00:00:00:00:_1",
        "\u0660\u0662:00:00:00:00:01",  # Arabic-Indic digits, which int() would accept
    ],
)
def test_parse_mac_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        ethernet.parse_mac(text)


@FAST
@given(mac=macs)
def test_mac_text_round_trip(mac: bytes) -> None:
    text = ethernet.format_mac(mac)
    assert ethernet.parse_mac(text) == mac
    assert ethernet.parse_mac(text.upper().replace(":", "-")) == mac
