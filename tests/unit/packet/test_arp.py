"""ARP for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP

from onm.packet import arp, ethernet
from onm.packet.arp import ArpOp, ArpPacket
from onm.packet.drop import DropReason
from onm.packet.ethernet import EthernetFrame, EtherType

FAST = settings(max_examples=200, deadline=None)

macs = st.binary(min_size=6, max_size=6)
ipv4s = st.binary(min_size=4, max_size=4)
arp_packets = st.builds(ArpPacket, st.sampled_from(ArpOp), macs, ipv4s, macs, ipv4s)

# https://topic.alibabacloud.com/a/arp-learning-notes-linux-high-performance-service-programming_1_16_30212073.html
# (`tcpdump -X` of one exchange): bc:ee:7b:9d:ee:02 (192.168.5.109) asks for 192.168.5.190, the
# request padded to 46 octets; 40:16:7e:79:c7:36 answers, unpadded.
CAPTURED_REQUEST = bytes.fromhex(
    "0001 0800 0604 0001 bcee 7b9d ee02 c0a8 056d 0000 0000 0000 c0a8 05be"
    "0000 0000 0000 0000 0000 0000 0000 0000 0000"
)
CAPTURED_REPLY = bytes.fromhex(
    "0001 0800 0604 0002 4016 7e79 c736 c0a8 05be bcee 7b9d ee02 c0a8 056d"
)

# http://www.mynetwatchman.com/kb/NetKb/ARP/goodarp.htm, "Frame 7": a whole Ethernet frame.
CAPTURED_FRAME = bytes.fromhex(
    "ffffffffffff00a0c922b2100806000108000604000100a0c922b210ac100165"
    "000000000000ac100132000000000000000000000000000000000000"
)


def test_captured_request() -> None:
    request = arp.parse(CAPTURED_REQUEST)
    assert request == ArpPacket(
        op=ArpOp.REQUEST,
        sender_mac=bytes.fromhex("bcee7b9dee02"),
        sender_ip=bytes([192, 168, 5, 109]),
        target_mac=bytes(6),
        target_ip=bytes([192, 168, 5, 190]),
    )
    assert not request.is_gratuitous
    assert not request.is_probe
    assert arp.build(request) == CAPTURED_REQUEST[: arp.LENGTH]  # padding is not kept


def test_captured_reply() -> None:
    reply = arp.parse(CAPTURED_REPLY)
    assert reply == ArpPacket(
        op=ArpOp.REPLY,
        sender_mac=bytes.fromhex("40167e79c736"),
        sender_ip=bytes([192, 168, 5, 190]),
        target_mac=bytes.fromhex("bcee7b9dee02"),
        target_ip=bytes([192, 168, 5, 109]),
    )
    assert arp.build(reply) == CAPTURED_REPLY


def test_reply_to_reproduces_the_captured_reply() -> None:
    request = arp.parse(CAPTURED_REQUEST)
    assert isinstance(request, ArpPacket)
    reply = arp.reply_to(request, bytes.fromhex("40167e79c736"))
    assert arp.build(reply) == CAPTURED_REPLY


def test_captured_frame() -> None:
    frame = ethernet.parse(CAPTURED_FRAME)
    assert isinstance(frame, EthernetFrame)
    assert frame.ethertype == EtherType.ARP
    request = arp.parse(frame.payload)
    assert isinstance(request, ArpPacket)
    assert request.op == ArpOp.REQUEST
    assert request.sender_mac == frame.src
    assert request.sender_ip == bytes([172, 16, 1, 101])
    assert request.target_ip == bytes([172, 16, 1, 50])


def test_gratuitous_announcement_and_probe() -> None:
    # RFC 5227 section 2.3: an announcement has sender IP = target IP;
    # section 2.1.1: a probe has an all-zero sender IP.
    mac = bytes.fromhex("020000000001")
    ip = bytes([10, 0, 0, 5])
    announcement = ArpPacket(ArpOp.REQUEST, mac, ip, bytes(6), ip)
    assert announcement.is_gratuitous
    assert not announcement.is_probe
    probe = ArpPacket(ArpOp.REQUEST, mac, bytes(4), bytes(6), ip)
    assert probe.is_probe
    assert not probe.is_gratuitous
    gratuitous_reply = ArpPacket(ArpOp.REPLY, mac, ip, ethernet.BROADCAST, ip)
    assert gratuitous_reply.is_gratuitous
    assert not ArpPacket(ArpOp.REPLY, mac, bytes(4), bytes(6), ip).is_probe


def test_scapy_request_parses() -> None:
    wire = bytes(ARP(op="who-has", hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", pdst="10.0.0.3"))
    assert arp.parse(wire) == ArpPacket(
        ArpOp.REQUEST,
        bytes.fromhex("020000000001"),
        bytes([10, 0, 0, 1]),
        bytes(6),
        bytes([10, 0, 0, 3]),
    )


def test_built_reply_parses_in_scapy() -> None:
    request = ArpPacket(
        ArpOp.REQUEST,
        bytes.fromhex("020000000001"),
        bytes([10, 0, 0, 1]),
        bytes(6),
        bytes([10, 0, 0, 3]),
    )
    parsed = ARP(arp.build(arp.reply_to(request, bytes.fromhex("02000000aa03"))))
    assert parsed.hwtype == arp.HTYPE_ETHERNET
    assert parsed.ptype == arp.PTYPE_IPV4
    assert (parsed.hwlen, parsed.plen) == (6, 4)
    assert parsed.op == 2
    assert parsed.hwsrc == "02:00:00:00:aa:03"
    assert parsed.psrc == "10.0.0.3"
    assert parsed.hwdst == "02:00:00:00:00:01"
    assert parsed.pdst == "10.0.0.1"


def _with(offset: int, value: bytes) -> bytes:
    return CAPTURED_REPLY[:offset] + value + CAPTURED_REPLY[offset + len(value) :]


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.ARP_MALFORMED),
        (CAPTURED_REPLY[:27], DropReason.ARP_MALFORMED),
        (_with(0, b"\x00\x06"), DropReason.ARP_UNSUPPORTED),  # htype IEEE 802 networks
        (_with(0, b"\x00\x00"), DropReason.ARP_UNSUPPORTED),
        (_with(2, b"\x86\xdd"), DropReason.ARP_UNSUPPORTED),  # ptype IPv6
        (_with(4, b"\x08"), DropReason.ARP_UNSUPPORTED),  # hlen 8
        (_with(5, b"\x10"), DropReason.ARP_UNSUPPORTED),  # plen 16
        (_with(6, b"\x00\x03"), DropReason.ARP_UNSUPPORTED),  # RARP request (RFC 903)
        (_with(6, b"\x00\x00"), DropReason.ARP_UNSUPPORTED),
        (_with(6, b"\x01\x01"), DropReason.ARP_UNSUPPORTED),
    ],
    ids=[
        "empty",
        "short",
        "htype-ieee802",
        "htype-0",
        "ptype-ipv6",
        "hlen",
        "plen",
        "op-rarp",
        "op-0",
        "op-257",
    ],
)
def test_drop_reasons(wire: bytes, reason: DropReason) -> None:
    assert arp.parse(wire) == reason


# --- Properties ----------------------------------------------------------------------------------


@FAST
@given(packet=arp_packets, padding=st.binary(max_size=18))
def test_parse_build_round_trip(packet: ArpPacket, padding: bytes) -> None:
    wire = arp.build(packet)
    assert len(wire) == arp.LENGTH
    assert arp.parse(wire + padding) == packet


@FAST
@given(data=st.binary(max_size=40))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = arp.parse(data)
    if isinstance(result, ArpPacket):
        assert arp.build(result) == data[: arp.LENGTH]
    else:
        assert result in (DropReason.ARP_MALFORMED, DropReason.ARP_UNSUPPORTED)


@FAST
@given(packet=arp_packets)
def test_every_truncation_is_malformed(packet: ArpPacket) -> None:
    wire = arp.build(packet)
    for cut in range(len(wire)):
        assert arp.parse(wire[:cut]) == DropReason.ARP_MALFORMED


@FAST
@given(packet=arp_packets, mac=macs)
def test_reply_to_swaps_roles(packet: ArpPacket, mac: bytes) -> None:
    reply = arp.reply_to(packet, mac)
    assert reply.op == ArpOp.REPLY
    assert (reply.sender_mac, reply.sender_ip) == (mac, packet.target_ip)
    assert (reply.target_mac, reply.target_ip) == (packet.sender_mac, packet.sender_ip)


def test_an_announcement_is_a_request_naming_its_own_address_twice() -> None:
    """RFC 5227 section 3: ARP Announcement, sender IP = target IP, target MAC zero."""
    mac, ip = bytes.fromhex("020000000001"), bytes([30, 0, 100, 50])
    sent = arp.announcement(mac, ip)
    wire = arp.build(sent)
    assert wire == bytes.fromhex("0001 0800 06 04 0001") + mac + ip + bytes(6) + ip
    back = arp.parse(wire)
    assert back == sent and isinstance(back, arp.ArpPacket)
    assert back.is_gratuitous and not back.is_probe
