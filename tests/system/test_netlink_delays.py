"""Kernel.ensure_delays against the real kernel: IPv6 packets toward a band's networks are
sorted into its class (and only those), a second call changes nothing, a smaller call removes
what it no longer wants, and netem delays what its band holds (where the kernel has netem).

Two namespaces of the test's own (`lt<pid>d...`, deleted by exact name): `a` sends out of d0
toward networks that `b` holds on d1. What the kernel holds is read with `tc -j`, the
independent witness.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from onm.netlink import kernel as nl
from onm.netlink.kernel import Kernel
from support.netem import netem_missing
from support.netns_tools import in_netns

TAG = f"lt{os.getpid()}d"
_serial = itertools.count()
N = ipaddress.IPv6Network
NEAR, FAR, OTHER = N("fd00:0:1:2::/64"), N("fd00:0:1:3::/64"), N("fd00:0:1:4::/64")
TRANSIT_B = "fd00:ffff::2"


def target(network: ipaddress.IPv6Network) -> str:
    return str(network.network_address + 1)


@dataclass
class Pair:
    a: str
    b: str
    kernel: Kernel
    """a's."""


@pytest.fixture
def pair() -> Iterator[Pair]:
    names = [f"{TAG}{next(_serial)}" for _ in range(2)]
    made: list[str] = []
    kernels: list[Kernel] = []
    try:
        for name in names:
            assert nl.ensure_netns(name)
            made.append(name)
        a, b = (Kernel(name) for name in names)
        kernels += [a, b]
        a.ensure_veth("d0", "d1", names[1])
        a.set_link("lo")
        b.set_link("lo")
        a.set_link("d0")
        b.set_link("d1")
        a.ensure_address("d0", ipaddress.IPv6Interface("fd00:ffff::1/64"))
        b.ensure_address("d1", ipaddress.IPv6Interface(f"{TRANSIT_B}/64"))
        for network in (NEAR, FAR, OTHER):
            b.ensure_address("d1", ipaddress.IPv6Interface((target(network), 64)))
            a.ensure_route(network, ipaddress.IPv6Address(TRANSIT_B), "d0")
        yield Pair(names[0], names[1], a)
    finally:
        for k in kernels:
            k.close()
        for name in made:
            nl.delete_netns(name)


def tc_json(namespace: str, *args: str) -> Any:
    done = subprocess.run(
        in_netns(namespace, "tc", "-j", *args), capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout or "[]")


def tc_text(namespace: str, *args: str) -> str:
    return subprocess.run(
        in_netns(namespace, "tc", *args), capture_output=True, text=True, check=True
    ).stdout


def tree(namespace: str) -> tuple[Any, ...]:
    """The qdiscs, classes and filters on d0, without counters (tc prints htb classes and u32
    filters as text only)."""
    qdiscs = [
        (q["kind"], q["handle"], q.get("parent", "root"), _settings(q.get("options", {})))
        for q in tc_json(namespace, "qdisc", "show", "dev", "d0")
    ]
    classes = tc_text(namespace, "class", "show", "dev", "d0")
    return qdiscs, classes, tc_text(namespace, "filter", "show", "dev", "d0")


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    """A qdisc's options without the counter htb reports among them: a stray packet (an MLD
    report the kernel sends on its own) sent between two reads is not a change."""
    return {k: v for k, v in options.items() if k != "direct_packets_stat"}


def class_packets(namespace: str) -> dict[str, int]:
    """Packets each htb class of d0 has sent."""
    text = tc_text(namespace, "-s", "class", "show", "dev", "d0")
    found = re.findall(r"^class htb (\S+) .*?\n\s*Sent \d+ bytes (\d+) pkt", text, re.M)
    return {handle: int(packets) for handle, packets in found}


def ping(namespace: str, address: str, count: int = 3) -> list[float]:
    """Round-trip times (ms) of `count` echoes, all of which must be answered."""
    done = subprocess.run(
        in_netns(namespace, "ping", "-6", "-n", "-c", str(count), "-i", "0.2", "-W", "2", address),
        capture_output=True,
        text=True,
        timeout=30,
    )
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", done.stdout)]
    assert len(times) == count, done.stdout + done.stderr
    return times


def test_packets_toward_a_band_go_to_its_class_and_a_second_call_changes_nothing(
    pair: Pair,
) -> None:
    bands = [[NEAR], [FAR, OTHER]]
    assert pair.kernel.ensure_delay_classes("d0", bands) == (0x10001, 0x10002)
    first = tree(pair.a)
    assert pair.kernel.ensure_delay_classes("d0", bands) == (0x10001, 0x10002)
    assert tree(pair.a) == first
    assert [q[:2] for q in first[0]] == [("htb", "1:")]
    assert "match 00010003/ffffffff at 28" in first[2]

    before = class_packets(pair.a)
    ping(pair.a, target(NEAR), 3)
    ping(pair.a, target(OTHER), 2)
    ping(pair.a, TRANSIT_B, 4)  # not toward a band: leaves unclassified
    after = class_packets(pair.a)
    assert after["1:1"] - before["1:1"] == 3
    assert after["1:2"] - before["1:2"] == 2


def test_a_smaller_call_removes_what_it_no_longer_wants(pair: Pair) -> None:
    pair.kernel.ensure_delay_classes("d0", [[NEAR], [FAR, OTHER]])
    assert pair.kernel.ensure_delay_classes("d0", [[OTHER]]) == (0x10001,)
    _, classes, filters = tree(pair.a)
    assert re.findall(r"^class htb (\S+)", classes, re.M) == ["1:1"]
    assert filters.count("flowid") == 1 and "00010004/ffffffff at 28" in filters
    before = class_packets(pair.a)
    ping(pair.a, target(NEAR), 2)
    ping(pair.a, target(OTHER), 3)
    assert class_packets(pair.a)["1:1"] - before["1:1"] == 3


def test_netem_delays_what_its_band_holds(pair: Pair) -> None:
    missing = netem_missing()
    if missing is not None:
        pytest.skip(f"no netem here: {missing}")
    bands = [(5_000, [NEAR]), (20_000, [FAR])]
    pair.kernel.ensure_delays("d0", bands)
    first = tree(pair.a)
    pair.kernel.ensure_delays("d0", bands)
    assert tree(pair.a) == first
    near, far, direct = (ping(pair.a, x, 5) for x in (target(NEAR), target(FAR), TRANSIT_B))
    # One way only (b adds nothing on its way back).
    assert 5 <= statistics.median(near) < 15, near
    assert 20 <= statistics.median(far) < 60, far
    assert statistics.median(direct) < 5, direct
