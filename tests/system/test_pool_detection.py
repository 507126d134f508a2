"""Pools the lab's agents find and measure (issue #9; seed 0's automatic detection, load and
passive liveness), driven as a user would: addresses configured by hand in the nodes, pings
from the nodes, `onm pool ...` against the lab's manager.

- Two nodes configured with one address no node owns: while nobody has accepted the detected
  pool, traffic from that address is dropped as spoofed; `onm pool accept` makes it live.
- `least-loaded`: the member busy with one requester's pings reports load; a second requester
  is sent to the other.
- Check `none`: a member that stops answering the traffic sent to it is down (passively), and
  is tried again after the hold.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.datapaths import lab_name
from support.netns_tools import in_netns
from support.overlay_lab import Lab, drop_key, eventually, onm, running_lab

TOPOLOGY = """
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
  - {name: t, location: {locale: 2, area: 1, rack: 1, node: 1}}
tenants: [{name: z}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
nodes:
  - {name: j, network: znet, host: r, ip: 10.0.0.10}
  - {name: k, network: znet, host: r, ip: 10.0.0.11}
  - {name: h, network: znet, host: s, ip: 10.0.0.8}
  - {name: g, network: znet, host: t, ip: 10.0.0.7}
"""
PORTS = {"r": 2, "s": 1, "t": 1}


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory, lab_name("pd", datapath), TOPOLOGY, PORTS, 20) as built:
        yield built


def manager(lab: Lab) -> list[str]:
    record = lab.record()
    return ["--url", record.manager_url, "--token", f"@{record.admin_token_file}"]


def pool(lab: Lab, ref: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(onm("pool", "show", ref, "--json", *manager(lab)).stdout)
    return found


def pools(lab: Lab) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads(onm("pool", "list", "--json", *manager(lab)).stdout)}


def health(lab: Lab, ref: str) -> dict[str, str]:
    return {m["node"]: m["health"] for m in pool(lab, ref)["members"]}


def run(lab: Lab, node: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        in_netns(lab.ns(node), *command), capture_output=True, text=True, check=False
    )


def pings(lab: Lab, node: str, target: str, count: int = 1, *extra: str) -> int:
    """How many of `count` echoes from `node` to `target` were answered."""
    done = run(lab, node, "ping", "-n", "-q", "-c", str(count), "-W", "1", *extra, target)
    for line in done.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    return 0


def add_address(lab: Lab, node: str, ip: str) -> None:
    run(lab, node, "ip", "addr", "add", f"{ip}/32", "dev", "eth0").check_returncode()


def test_two_nodes_claiming_one_address_become_a_proposed_pool_then_accepted(lab: Lab) -> None:
    ip, name = "10.0.0.50", "detected-10-0-0-50"
    spoofed = drop_key("arp_spoofed")
    before = lab.metrics("s").get(spoofed, 0)
    for node in ("g", "h"):  # an operator configures the address by hand on two nodes
        add_address(lab, node, ip)
        pings(lab, node, "10.0.0.10", 1, "-I", ip)  # they use it: ARP as 10.0.0.50
    found = eventually(lambda: pools(lab).get(name), "a detected pool", 15)
    assert found["state"] == "proposed" and found["ip"] == ip
    assert sorted(m["node"] for m in found["members"]) == ["g", "h"]
    assert lab.metrics("s")[spoofed] > before  # still spoofed until accepted
    assert pings(lab, "j", ip) == 0  # proposed: resolves to nobody
    events = onm("events", "--json", "-n", "200", *manager(lab)).stdout
    assert '"pool.detected"' in events

    accepted = json.loads(onm("pool", "accept", f"znet/{name}", "--json", *manager(lab)).stdout)
    assert accepted["state"] == "live"
    eventually(lambda: set(health(lab, f"znet/{name}").values()) == {"up"} or None, "up", 15)
    assert eventually(lambda: pings(lab, "j", ip) or None, "an answer from the pool", 10) == 1
    onm("pool", "delete", f"znet/{name}", *manager(lab))


def test_least_loaded_sends_the_next_requester_to_the_member_without_load(lab: Lab) -> None:
    ip = "10.0.0.60"
    for node in ("g", "h"):
        add_address(lab, node, ip)
    args = ("--network", "znet", "--ip", ip, "--policy", "least-loaded", "--check", "none")
    onm("pool", "create", "ll", *args, "--member", "g", "--member", "h", *manager(lab))
    try:
        # about 100 packets a second; most answered (a loaded machine loses some, CI saw it)
        assert pings(lab, "j", ip, 300, "-i", "0.01") > 200
        ref = "znet/ll"

        def busy() -> str | None:
            loads = {m["node"]: m["load"] for m in pool(lab, ref)["members"]}
            loaded = [n for n, load in loads.items() if load > 10]
            return loaded[0] if len(loaded) == 1 else None

        first = eventually(busy, "one member reporting load", 10)
        assert pings(lab, "k", ip, 3) >= 1
        chosen = {m["node"]: m["selections"] for m in pool(lab, ref)["members"]}
        assert chosen == {"g": 1, "h": 1}, (first, chosen)  # k went to the idle one
    finally:
        onm("pool", "delete", "znet/ll", *manager(lab))


def test_check_none_a_member_that_stops_answering_is_down_then_tried_again(lab: Lab) -> None:
    ip = "10.0.0.70"
    add_address(lab, "g", ip)
    args = ("--network", "znet", "--ip", ip, "--check", "none", "--interval", "0.2")
    onm("pool", "create", "pn", *args, "--timeout", "0.2", "--member", "g", *manager(lab))
    ref = "znet/pn"
    try:
        assert eventually(lambda: pings(lab, "j", ip) or None, "an answer", 10) == 1
        run(lab, "g", "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1").check_returncode()
        started = time.monotonic()
        pinger = subprocess.Popen(
            in_netns(lab.ns("j"), "ping", "-n", "-q", "-i", "0.05", "-w", "3", ip),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            eventually(lambda: health(lab, ref)["g"] == "down" or None, "g down", 10)
            # judged down while the 3 s of pings ran; each look is an `onm pool show` process,
            # which takes seconds on a loaded machine (CI): a look's worth of margin
            assert time.monotonic() - started < 3 + 3
        finally:
            pinger.wait(10)
        run(lab, "g", "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0").check_returncode()
        # held down 10 intervals (2 s), then up on probation: it answers again
        eventually(lambda: health(lab, ref)["g"] == "up" or None, "g up again", 10)
        assert eventually(lambda: pings(lab, "j", ip) or None, "an answer again", 10) == 1
    finally:
        onm("pool", "delete", ref, *manager(lab))
