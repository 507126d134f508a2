"""One-input fuzz targets for every decoder: bytes in, and the only acceptable outcomes are a
parsed value, a typed drop (`DropReason`, or a result carrying one) or a typed refusal
(`OnmError`; `pydantic.ValidationError` where JSON meets the API schemas, as the client and the
agent's link turn it into an `OnmError`). Anything else propagates and is a crash.

Targets also check what must hold of what they produce (a translated packet parses again, a
decoded address encodes back to the same bytes, the plain fast path agrees byte for byte with
the full translator). The module imports no fuzzing engine: `tests/fuzz/run.py` drives it with
atheris, `tests/fuzz/test_corpus.py` replays the committed corpus with plain pytest.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import pydantic

from onm.addressing import HostPrefix, Location, SubstrateAddress, embed_ipv4, split_address
from onm.api import codec, schemas
from onm.errors import OnmError
from onm.packet import arp, encap, ethernet, icmpv4, icmpv6, ipv4, ipv6, offload, rfc4884, tcp, udp
from onm.packet.checksum import internet_checksum, pseudo_header_v6
from onm.packet.drop import DropReason
from onm.packet.ipproto import IpProtocol
from onm.packet.mapper import AddressMapper, Rfc6052Mapper, SubstrateMapper
from onm.packet.siit import (
    Drop,
    IcmpError,
    Result,
    SiitConfig,
    Translated,
    UdpZeroChecksum,
    translate_4to6,
    translate_6to4,
)
from onm.packet.siit.plain import plain_4to6, plain_6to4, plain_super_4to6, plain_super_6to4

ACCEPTED: tuple[type[BaseException], ...] = (OnmError,)
"""Exceptions that are a typed refusal, not a crash."""

SRC6 = bytes.fromhex("fd000000000000010000000700000000")
DST6 = bytes.fromhex("fd000000000000020000000700000000")

# The translator as the agent runs it (substrate mapper, one network) and as RFC 7915 describes
# it (RFC 6052 well-known prefix); the first input octet picks one of these set-ups.
_NETWORK = 7
_HOST_A = HostPrefix(Location(0, 1, 2, 3))
_HOST_B = HostPrefix(Location(0, 1, 2, 4))
LOCATIONS = {
    bytes((10, 0, 0, i)): embed_ipv4(_HOST_A if i % 2 else _HOST_B, _NETWORK, bytes((10, 0, 0, i)))
    for i in range(1, 5)
}
MAPPERS: tuple[AddressMapper, ...] = (
    Rfc6052Mapper("64:ff9b::/96"),
    SubstrateMapper(_NETWORK, LOCATIONS),
)
CONFIGS: tuple[SiitConfig, ...] = (
    SiitConfig(),
    SiitConfig(
        icmp_source_v4=bytes((203, 0, 113, 1)),
        icmp_source_v6=bytes.fromhex("20010db8ffff00000000000000000001"),
        icmp_error_pool_v4=bytes((203, 0, 113, 2)),
    ),
    SiitConfig(ipv4_mtu=576, ipv6_mtu=1280, udp_zero_checksum=UdpZeroChecksum.COMPUTE),
    SiitConfig(decrement_ttl=False, copy_tos=False, lowest_ipv6_mtu=1500),
)


def setup(data: bytes) -> tuple[AddressMapper, SiitConfig, bytes]:
    """Mapper (bit 0) and configuration (bits 1-2) chosen by the first octet; the packet is the
    rest, its checksums made right first when bit 3 is set (`fix_checksums`)."""
    selector = data[0] if data else 0
    mapper = MAPPERS[selector & 1]
    config = CONFIGS[(selector >> 1) % len(CONFIGS)]
    packet = fix_checksums(data[1:]) if selector & 8 else data[1:]
    return mapper, config, packet


def fix_checksums(packet: bytes) -> bytes:
    """A mutation almost never keeps a checksum right, and a wrong one stops the packet at the
    first check: recompute the IPv4 header checksum and an ICMPv4 or ICMPv6 checksum (over what
    is there) so that the fuzzer reaches what lies behind them, the quoted packet of an error."""
    raw = bytearray(packet)
    if len(raw) >= ipv4.MIN_HEADER_LENGTH and raw[0] >> 4 == 4:
        hlen = (raw[0] & 0x0F) * 4
        if ipv4.MIN_HEADER_LENGTH <= hlen <= len(raw):
            raw[10:12] = bytes(2)
            raw[10:12] = internet_checksum(raw[:hlen]).to_bytes(2, "big")
            end = min(int.from_bytes(raw[2:4], "big"), len(raw))
            if raw[9] == IpProtocol.ICMP and end >= hlen + icmpv4.HEADER_LENGTH:
                raw[hlen + 2 : hlen + 4] = bytes(2)
                raw[hlen + 2 : hlen + 4] = internet_checksum(raw[hlen:end]).to_bytes(2, "big")
    elif len(raw) >= 48 and raw[0] >> 4 == 6 and raw[6] == IpProtocol.ICMPV6:
        end = min(ipv6.HEADER_LENGTH + int.from_bytes(raw[4:6], "big"), len(raw))
        if end >= 48:
            raw[42:44] = bytes(2)
            pseudo = pseudo_header_v6(bytes(raw[8:24]), bytes(raw[24:40]), 58, end - 40)
            raw[42:44] = internet_checksum(raw[40:end], pseudo).to_bytes(2, "big")
    return bytes(raw)


def _must(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


# --- codecs ---------------------------------------------------------------------------------


def fuzz_ethernet(data: bytes) -> None:
    frame = ethernet.parse(data)
    if not isinstance(frame, DropReason):
        _must(ethernet.parse(ethernet.build(frame)) == frame, "ethernet build/parse")


def fuzz_arp(data: bytes) -> None:
    packet = arp.parse(data)
    if not isinstance(packet, DropReason):
        _must(arp.parse(arp.build(packet)) == packet, "arp build/parse")
        arp.reply_to(packet, bytes(6))


def fuzz_ipv4(data: bytes) -> None:
    for verify, truncated in ((True, False), (False, True)):
        parsed = ipv4.parse(data, verify_checksum=verify, allow_truncated=truncated)
        if isinstance(parsed, DropReason):
            continue
        h = parsed.header
        ipv4.has_unexpired_source_route(h.options)
        ipv4.copied_options(h.options)
        rebuilt = ipv4.build(h, parsed.payload)
        _must(not isinstance(ipv4.parse(rebuilt), DropReason), "ipv4 build/parse")
        if verify and h.ttl > 0:  # callers never decrement a TTL of 0 (RFC 1812 4.2.2.9)
            ipv4.decrement_ttl(data[: h.total_length])
            for fragment in ipv4.fragment(h, parsed.payload, 68 + len(h.options)):
                _must(not isinstance(ipv4.parse(fragment), DropReason), "ipv4 fragment")


def fuzz_ipv6(data: bytes) -> None:
    for truncated in (False, True):
        parsed = ipv6.parse(data, allow_truncated=truncated)
        if isinstance(parsed, DropReason):
            continue
        ipv6.find_upper_layer(parsed.header.next_header, parsed.payload)
        rebuilt = ipv6.build(parsed.header, parsed.payload)
        again = ipv6.parse(rebuilt)
        _must(not isinstance(again, DropReason) and again.payload == parsed.payload, "ipv6")
        if not truncated:
            _must(again == parsed, "ipv6 build/parse")


def fuzz_icmpv4(data: bytes) -> None:
    for verify in (True, False):
        message = icmpv4.parse(data, verify_checksum=verify)
        if not isinstance(message, DropReason):
            built = icmpv4.build(message)
            _must(not isinstance(icmpv4.parse(built), DropReason), "icmpv4 build/parse")
            rfc4884.split(message.body, message.rest[1], rfc4884.V4_WORD)


def fuzz_icmpv6(data: bytes) -> None:
    for verify in (True, False):
        message = icmpv6.parse(data, SRC6, DST6, verify_checksum=verify)
        if not isinstance(message, DropReason):
            built = icmpv6.build(message, SRC6, DST6)
            _must(not isinstance(icmpv6.parse(built, SRC6, DST6), DropReason), "icmpv6 build")
            rfc4884.split(message.body, message.rest[0], rfc4884.V6_WORD)


def fuzz_tcp(data: bytes) -> None:
    segment = tcp.parse(data)
    if not isinstance(segment, DropReason):
        tcp.build(segment, SRC6[:4], DST6[:4])


def fuzz_udp(data: bytes) -> None:
    datagram = udp.parse(data)
    if not isinstance(datagram, DropReason):
        udp.build(datagram, SRC6[:4], DST6[:4])
        udp.checksum_v4(SRC6[:4], DST6[:4], data)
        udp.checksum_v6(SRC6, DST6, data)


# --- translation and encapsulation ---------------------------------------------------------


def _check_result(
    result: Result, out: Callable[[bytes], object], back: Callable[[bytes], object]
) -> None:
    """Translated packets parse in the other family; an ICMP error parses in the input's."""
    if isinstance(result, Translated):
        _must(len(result.packets) >= 1, "no packet")
        for packet in result.packets:
            _must(not isinstance(out(packet), DropReason), "translated packet does not parse")
    elif isinstance(result, IcmpError):
        _must(not isinstance(back(result.packet), DropReason), "ICMP error does not parse")
    else:
        _must(isinstance(result, Drop) and isinstance(result.reason, DropReason), "result")


def fuzz_siit_4to6(data: bytes) -> None:
    mapper, config, packet = setup(data)
    result = translate_4to6(packet, mapper, config)
    _check_result(result, ipv6.parse, ipv4.parse)
    if isinstance(result, IcmpError):
        _must(len(result.packet) <= 576, "ICMPv4 error over 576 octets (RFC 1812 4.3.2.3)")


def fuzz_siit_6to4(data: bytes) -> None:
    mapper, config, packet = setup(data)
    result = translate_6to4(packet, mapper, config, identification=0x1234)
    _check_result(result, ipv4.parse, ipv6.parse)
    if isinstance(result, IcmpError):
        _must(len(result.packet) <= 1280, "ICMPv6 error over 1280 octets (RFC 4443 2.4)")


def fuzz_plain_4to6(data: bytes) -> None:
    """The fast path answers only where it agrees byte for byte with the full translator."""
    mapper, config, packet = setup(data)
    quick = plain_4to6(packet, mapper, config)
    if quick is not None:
        _must(translate_4to6(packet, mapper, config) == Translated((quick,)), "plain 4to6")


def fuzz_plain_6to4(data: bytes) -> None:
    mapper, config, packet = setup(data)
    quick = plain_6to4(packet, mapper, config, 0x1234)
    if quick is not None:
        full = translate_6to4(packet, mapper, config, 0x1234)
        _must(full == Translated((quick,)), "plain 6to4")


def fuzz_plain_super(data: bytes) -> None:
    """Super-packet headers: the fast path against the general one (first segment, then
    `offload.super_headers`), both directions."""
    mapper, config, packet = setup(data)
    parts = offload.split_super(packet)
    if isinstance(parts, DropReason):
        return
    end = parts[0]
    headers, body = packet[:end], packet[end:]
    size = 1 + (data[0] if data else 0) * 5
    first = offload.first_segment(headers, body, size)
    if isinstance(first, DropReason):
        return
    quick = plain_super_4to6(headers, len(body), size, mapper, config)
    if quick is not None:
        _super_agrees(quick, translate_4to6(first, mapper, config), len(body))
    quick = plain_super_6to4(headers, len(body), size, mapper, config, 0)
    if quick is not None:
        _super_agrees(quick, translate_6to4(first, mapper, config, 0), len(body))


def _super_agrees(quick: bytes, result: Result, payload_length: int) -> None:
    _must(isinstance(result, Translated) and len(result.packets) == 1, "super: full path")
    assert isinstance(result, Translated)
    general = offload.super_headers(result.packets[0], payload_length)
    _must(general == quick, "plain super headers disagree with the general path")


def fuzz_encap(data: bytes) -> None:
    mapper, config, packet = setup(data)
    result = encap.encapsulate(packet, mapper, config)
    _check_result(result, ipv6.parse, ipv4.parse)
    inner = encap.decapsulate(packet, mapper)
    if not isinstance(inner, DropReason):
        _must(not isinstance(ipv4.parse(inner), DropReason), "decapsulated packet")


def fuzz_offload(data: bytes) -> None:
    parsed = offload.parse(data)
    if isinstance(parsed, DropReason):
        return
    header, frame = parsed
    _must(offload.parse_header(offload.build(header)) == header, "virtio header round trip")
    offload.resolve(header, frame)
    packet = frame[offload.ETHERNET_HEADER :]
    offload.split_super(packet)
    gso = offload.tcp_gso(data)
    if gso is not None:
        offload.tcp_gso_header(packet, gso)
    size = max(header.gso_size, 1)
    offload.segment_tcp(packet, size)
    offload.segment_udp4(frame, size)
    offload.complete_checksum(frame, header.csum_start, header.csum_offset)


# --- addresses and wire formats --------------------------------------------------------------


def fuzz_addressing(data: bytes) -> None:
    """16 octets decode to fields that encode back to the same 16; text decodes or is refused."""
    if len(data) >= 16:
        packed = data[:16]
        try:
            address = SubstrateAddress.decode(packed)
        except OnmError:
            pass
        else:
            _must(address.packed == packed, "address round trip")
            _must(SubstrateAddress.decode(address.encode()) == address, "address object")
            _must(SubstrateAddress.decode(str(address.encode())) == address, "address text")
        _, network_id, v4 = split_address(packed)
        _must(network_id < 1 << 24 and len(v4) == 4, "split_address")
    text = data.decode("utf-8", "replace")
    for decode in (SubstrateAddress.decode, HostPrefix.from_network):
        with contextlib.suppress(OnmError):
            decode(text)


_REQUESTS: tuple[type[pydantic.BaseModel], ...] = (
    schemas.TenantCreate,
    schemas.NetworkCreate,
    schemas.HostCreate,
    schemas.NodeCreate,
    schemas.ResolveRequest,
    schemas.VerifyRequest,
    schemas.ReportIn,
)


def fuzz_api_schemas(data: bytes) -> None:
    """Request bodies as the manager validates them: a model or a ValidationError (422)."""
    model = _REQUESTS[(data[0] if data else 0) % len(_REQUESTS)]
    with contextlib.suppress(pydantic.ValidationError):
        model.model_validate_json(data[1:])


def fuzz_wire(data: bytes) -> None:
    """What the agent reads from the manager (snapshot, resolution) into its domain model."""
    body = data[1:]
    try:
        if data[:1] == b"r":
            codec.resolution(schemas.ResolutionOut.model_validate_json(body))
        else:
            codec.snapshot(schemas.SnapshotOut.model_validate_json(body))
    except pydantic.ValidationError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ethernet": fuzz_ethernet,
    "arp": fuzz_arp,
    "ipv4": fuzz_ipv4,
    "ipv6": fuzz_ipv6,
    "icmpv4": fuzz_icmpv4,
    "icmpv6": fuzz_icmpv6,
    "tcp": fuzz_tcp,
    "udp": fuzz_udp,
    "siit_4to6": fuzz_siit_4to6,
    "siit_6to4": fuzz_siit_6to4,
    "plain_4to6": fuzz_plain_4to6,
    "plain_6to4": fuzz_plain_6to4,
    "plain_super": fuzz_plain_super,
    "encap": fuzz_encap,
    "offload": fuzz_offload,
    "addressing": fuzz_addressing,
    "api_schemas": fuzz_api_schemas,
    "wire": fuzz_wire,
}


def run_one(name: str, data: bytes) -> None:
    """Run one input through a target; a typed refusal (`ACCEPTED`) is a pass."""
    with contextlib.suppress(*ACCEPTED):
        TARGETS[name](data)


def as_json(value: object) -> bytes:
    """Seed helper: compact JSON."""
    return json.dumps(value, separators=(",", ":")).encode()
