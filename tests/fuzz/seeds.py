"""Write the seed inputs of the fuzz corpus (`tests/fuzz/corpus/<target>/seed-*`).

The seeds are the shapes the unit tests use (RFC 7915, RFC 4884, RFC 791/8200 vectors, built with
scapy), so fuzzing starts from valid packets and reaches the deep paths at once. Run it again
after adding a seed: `python tests/fuzz/seeds.py` (files are rewritten, crashers left alone).
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_LSRR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.targets import LOCATIONS, as_json
from support.wire_samples import resolution_document, snapshot_document

CORPUS = Path(__file__).resolve().parent / "corpus"

# Addresses both mappers of `fuzz.targets` translate: RFC 6052 (64:ff9b::/96) and the substrate
# network 7 (10.0.0.1..4 live on two hosts whose /64s start fd00:0:...).
V4 = ("192.0.2.33", "198.51.100.10")
V6 = ("64:ff9b::c633:640a", "64:ff9b::c000:221")
SUB4 = ("10.0.0.1", "10.0.0.2")
EXTENSION = bytes.fromhex("20000000") + bytes.fromhex("00080101") + bytes.fromhex("0000a1ff")


def _substrate6() -> tuple[str, str]:
    """The substrate addresses of 10.0.0.1 and 10.0.0.2 (network 7) in `fuzz.targets`."""
    a, b = (LOCATIONS[bytes((10, 0, 0, i))] for i in (1, 2))
    return str(ipaddress.IPv6Address(a)), str(ipaddress.IPv6Address(b))


def ipv4_packets() -> dict[str, bytes]:
    src, dst = V4
    inner = bytes(IP(src=dst, dst=src) / UDP(sport=53, dport=4000) / Raw(b"q" * 120))
    return {
        "udp": bytes(IP(src=src, dst=dst) / UDP(sport=1, dport=2) / Raw(b"hello")),
        "udp-zero": bytes(IP(src=src, dst=dst) / UDP(sport=1, dport=2, chksum=0) / Raw(b"z")),
        "tcp": bytes(IP(src=src, dst=dst, flags="DF") / TCP(sport=1, dport=80, flags="PA") / b"x"),
        "echo": bytes(IP(src=src, dst=dst) / ICMP(type=8, id=1, seq=1) / Raw(b"ping")),
        "frag": bytes(
            IP(src=src, dst=dst, flags="MF", id=7) / UDP(sport=1, dport=2) / Raw(b"f" * 64)
        ),
        "lsrr": bytes(IP(src=src, dst=dst, options=[IPOption_LSRR(routers=["10.9.9.9"])]) / b"o"),
        "ttl1": bytes(IP(src=src, dst=dst, ttl=1) / UDP(sport=1, dport=2)),
        "big-df": bytes(
            IP(src=src, dst=dst, flags="DF") / UDP(sport=1, dport=2) / Raw(b"b" * 1480)
        ),
        "error": bytes(IP(src=src, dst=dst) / ICMP(type=3, code=3) / Raw(inner)),
        "error-4884": bytes(
            IP(src=src, dst=dst) / ICMP(type=11, code=0, length=32) / Raw(inner[:128] + EXTENSION)
        ),
        "sub-udp": bytes(IP(src=SUB4[0], dst=SUB4[1]) / UDP(sport=1, dport=2) / b"s"),
        "sub-tcp-super": bytes(
            IP(src=SUB4[0], dst=SUB4[1], flags="DF")
            / TCP(sport=1, dport=2, flags="A")
            / Raw(b"t" * 3000)
        ),
    }


def ipv6_packets() -> dict[str, bytes]:
    src, dst = V6
    s6, d6 = _substrate6()
    quoted = bytes(IPv6(src=dst, dst=src) / UDP(sport=53, dport=4000) / Raw(b"q" * 200))
    return {
        "udp": bytes(IPv6(src=src, dst=dst) / UDP(sport=1, dport=2) / Raw(b"hello")),
        "tcp": bytes(IPv6(src=src, dst=dst) / TCP(sport=1, dport=80, flags="PA") / b"x"),
        "echo": bytes(IPv6(src=src, dst=dst) / ICMPv6EchoRequest(id=1, seq=1) / b"ping"),
        "ext": bytes(IPv6(src=src, dst=dst) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP()),
        "routing": bytes(IPv6(src=src, dst=dst) / IPv6ExtHdrRouting(segleft=1) / UDP()),
        "frag": bytes(
            IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(id=9, m=1) / UDP() / Raw(b"f" * 64)
        ),
        "frag-ext": bytes(
            IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(id=9, m=1) / IPv6ExtHdrDestOpt() / UDP()
        ),
        "hlim1": bytes(IPv6(src=src, dst=dst, hlim=1) / UDP(sport=1, dport=2)),
        "error": bytes(IPv6(src=src, dst=dst) / ICMPv6DestUnreach(code=4) / Raw(quoted)),
        "ptb": bytes(IPv6(src=src, dst=dst) / ICMPv6PacketTooBig(mtu=1400) / Raw(quoted)),
        "error-4884": bytes(
            IPv6(src=src, dst=dst)
            / ICMPv6DestUnreach(code=4, length=16)
            / Raw(quoted[:128] + EXTENSION)
        ),
        "big": bytes(IPv6(src=src, dst=dst) / UDP(sport=1, dport=2) / Raw(b"b" * 1600)),
        "sub-udp": bytes(IPv6(src=s6, dst=d6) / UDP(sport=1, dport=2) / b"s"),
        "sub-tcp-super": bytes(
            IPv6(src=s6, dst=d6) / TCP(sport=1, dport=2, flags="A") / Raw(b"t" * 3000)
        ),
    }


def _virtio(flags: int, gso_type: int, hdr_len: int, size: int, start: int, offset: int) -> bytes:
    """A virtio-net header (virtio 1.1 section 5.1.6), host byte order as the kernel hands it."""
    return struct.pack("=BBHHHH", flags, gso_type, hdr_len, size, start, offset)


def seeds() -> dict[str, dict[str, bytes]]:
    v4 = ipv4_packets()
    v6 = ipv6_packets()
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(v4["tcp"]))
    arp = bytes(ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", pdst="10.0.0.2"))
    big = bytes(Ether() / IP(v4["sub-tcp-super"]))
    udp_big = bytes(
        Ether() / IP(src=SUB4[0], dst=SUB4[1]) / UDP(sport=1, dport=2) / Raw(b"u" * 3000)
    )
    sub_address = ipaddress.IPv6Address(_substrate6()[0]).packed
    encapsulated = bytes(IPv6(src=V6[0], dst=V6[1], nh=4) / IP(v4["udp"]))
    snapshot = snapshot_document(_substrate6()[1])
    resolution = resolution_document(_substrate6()[1])
    requests = [
        {"name": "acme"},
        {"name": "blue", "cidrs": ["10.0.0.0/24"], "encoding": "siit"},
        {"name": "host-a", "location": {"locale": 0, "area": 1, "rack": 2, "node": 3}},
        {"name": "a", "network": "blue", "host": "host-a", "ip": "10.0.0.1", "interface": "veth0"},
        {"network": "blue", "requester": "a", "ip": "10.0.0.2"},
        {"network": "blue", "ip": "10.0.0.2", "substrate_source": _substrate6()[1]},
        {"applied_revision": 3},
    ]
    out: dict[str, dict[str, bytes]] = {
        "ethernet": {"ipv4": frame, "arp": bytes(Ether(type=0x0806) / ARP(arp))},
        "arp": {"request": arp},
        "ipv4": {name: v4[name] for name in ("udp", "lsrr", "frag", "error")},
        "ipv6": {name: v6[name] for name in ("udp", "ext", "routing", "frag", "frag-ext")},
        "icmpv4": {"echo": v4["echo"][20:], "error-4884": v4["error-4884"][20:]},
        "icmpv6": {"echo": v6["echo"][40:], "error-4884": v6["error-4884"][40:]},
        "tcp": {"segment": v4["tcp"][20:]},
        "udp": {"datagram": v4["udp"][20:]},
        "offload": {
            "tso": _virtio(1, 1, 54, 1448, 34, 16) + big,
            "uso": _virtio(1, 5, 42, 1400, 34, 6) + udp_big,
            "csum": _virtio(1, 0, 0, 0, 34, 16) + frame,
        },
        "addressing": {"packed": sub_address, "text": _substrate6()[0].encode()},
        "api_schemas": {f"{i}": bytes((i,)) + as_json(r) for i, r in enumerate(requests)},
        "wire": {"snapshot": b"s" + as_json(snapshot), "resolution": b"r" + as_json(resolution)},
        "encap": {"udp": b"\x00" + v4["udp"], "decap": b"\x00" + encapsulated},
    }
    for target, packets, selectors in (
        ("siit_4to6", v4, (0, 2, 4, 6, 1, 3)),
        ("siit_6to4", v6, (0, 2, 4, 6, 1, 3)),
        ("plain_4to6", v4, (0, 1)),
        ("plain_6to4", v6, (0, 1)),
    ):
        out[target] = {
            f"{name}-{selector}": bytes((selector,)) + packet
            for name, packet in packets.items()
            for selector in selectors
            if selector & 1 == name.startswith("sub-")
        }
    # Bit 3 of the selector: checksums recomputed after mutation (`fuzz.targets.fix_checksums`).
    for name in ("error", "error-4884", "echo", "ptb"):
        if name in v4:
            out["siit_4to6"][f"{name}-fix"] = b"\x0a" + v4[name]
        out["siit_6to4"][f"{name}-fix"] = b"\x0a" + v6[name]
    out["plain_super"] = {
        "v4": b"\x01" + v4["sub-tcp-super"],
        "v6": b"\x01" + v6["sub-tcp-super"],
        "v4-6052": b"\x00" + bytes(IP(src=V4[0], dst=V4[1]) / TCP(flags="A") / Raw(b"t" * 3000)),
    }
    return out


def main() -> None:
    for target, files in seeds().items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (directory / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
