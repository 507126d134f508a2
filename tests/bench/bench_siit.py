"""Micro-benchmark of the SIIT translator: packets per second, 4->6 and 6->4.

Not part of the pass/fail suite (`make bench`). The machine is shared and noisy, so every figure
is printed beside a baseline measured in the same run: the cheapest per-packet work any Python
datapath does (unpack the IPv4 header and build a new packet from a 40-octet header and the
payload). The ratio translate/baseline is what to compare between runs.
"""

from __future__ import annotations

import statistics
import struct
import sys
import time
from collections.abc import Callable

from scapy.all import IP, TCP, Raw, raw

from onm.addressing import HostPrefix, Location, embed_ipv4
from onm.packet.mapper import Rfc6052Mapper, SubstrateMapper
from onm.packet.siit import SiitConfig, Translated, translate_4to6, translate_6to4

ROUNDS = 7
SECONDS_PER_ROUND = 0.3
_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")


def _tcp_packet(size: int) -> bytes:
    """An IPv4 TCP packet of `size` octets in all (64 or 1400 in the report)."""
    header = raw(IP(src="10.0.0.2", dst="10.0.0.3", flags="DF") / TCP(sport=40000, dport=5201))
    return raw(
        IP(src="10.0.0.2", dst="10.0.0.3", flags="DF")
        / TCP(sport=40000, dport=5201, flags="PA")
        / Raw(b"\xa5" * (size - len(header)))
    )


def _rate(work: Callable[[bytes], object], packet: bytes) -> float:
    """Median packets per second over ROUNDS timed rounds."""
    rates = []
    batch = 2000
    for _ in range(ROUNDS):
        done = 0
        start = time.perf_counter()
        while True:
            for _ in range(batch):
                work(packet)
            done += batch
            elapsed = time.perf_counter() - start
            if elapsed >= SECONDS_PER_ROUND:
                break
        rates.append(done / elapsed)
    return statistics.median(rates)


def _baseline(packet: bytes) -> bytes:
    fields = _V4.unpack_from(packet)
    return (
        _V6.pack(0x60000000, fields[2] - 20, fields[6], fields[5], bytes(16), bytes(16))
        + (packet[20:])
    )


def main() -> int:
    a = bytes((10, 0, 0, 2))
    g = bytes((10, 0, 0, 3))
    substrate = SubstrateMapper(
        0x102,
        {
            a: embed_ipv4(HostPrefix(Location(1, 1, 1, 1)), 0x102, a, slot=1),
            g: embed_ipv4(HostPrefix(Location(1, 1, 2, 1)), 0x102, g, slot=1),
        },
    )
    rfc6052 = Rfc6052Mapper("64:ff9b::/96")
    config = SiitConfig(ipv6_mtu=1520, lowest_ipv6_mtu=1520, decrement_ttl=False)
    print(f"python {sys.version.split()[0]}; median of {ROUNDS} rounds of {SECONDS_PER_ROUND}s")
    print(f"{'case':38} {'packets/s':>12} {'vs baseline':>12}")
    for size in (64, 1400):
        v4 = _tcp_packet(size)
        translated = translate_4to6(v4, substrate, config)
        assert isinstance(translated, Translated)
        v6 = translated.packets[0]
        base = _rate(_baseline, v4)
        print(f"{f'baseline (header swap), {size} B':38} {base:12,.0f} {1.0:12.2f}")
        for name, mapper in (("substrate", substrate), ("rfc6052", rfc6052)):
            to6 = _rate(lambda p, m=mapper: translate_4to6(p, m, config), v4)
            packet6 = v6 if mapper is substrate else translate_4to6(v4, mapper, config)
            if isinstance(packet6, Translated):
                packet6 = packet6.packets[0]
            assert isinstance(packet6, bytes)
            to4 = _rate(lambda p, m=mapper: translate_6to4(p, m, config), packet6)
            print(f"{f'translate_4to6 {name}, {size} B':38} {to6:12,.0f} {to6 / base:12.2f}")
            print(f"{f'translate_6to4 {name}, {size} B':38} {to4:12,.0f} {to4 / base:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
