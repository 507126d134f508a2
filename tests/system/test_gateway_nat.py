"""A gateway host's kernel side with real traffic: two tenants with one CIDR (10.0.0.0/24) reach
an external host through one gateway namespace, SNATed to their own addresses, filtered by their
own rules, and kept apart by conntrack zones, marks and per-tenant routing tables; or one of
them routed as it is (`nat: none`), which the external host reaches through the gateway.

    ten1 10.0.0.2/24 eth0 ==== t1 10.0.0.1/32 --+
                                                gw  ext 30.0.0.254/16 ==== eth0 30.0.2.2/16 internet
    ten2 10.0.0.2/24 eth0 ==== t2 10.0.0.1/32 --+

The test process never enters a namespace: topology and gateway state go through
`onm.netlink` (`gateway.apply`), programs run under `ip netns exec`. Every namespace is named
`onm-nf<pid>-...` and deleted by its exact name by the fixture that made it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from onm.netlink import gateway, nftables
from onm.netlink import kernel as nl
from onm.netlink.gateway_plan import (
    Action,
    Direction,
    FirewallRule,
    GatewayPlan,
    Proto,
    PublicIp,
    TenantEdge,
    realise,
)
from onm.netlink.kernel import Kernel
from support.netns_tools import in_netns
from support.servers import EXTERNAL as SERVER
from support.servers import Background

TAG = f"onm-nf{os.getpid()}-"
IP4 = ipaddress.IPv4Address
NET4 = ipaddress.IPv4Network
IFACE4 = ipaddress.IPv4Interface
SERVER_IP = "30.0.2.2"
SNAT1, SNAT2, PUBLIC1 = "30.0.100.1", "30.0.100.2", "30.0.100.50"
BIG, SLOW = 1_500_000, 4.0
"""Bytes of the long download, and the seconds the server spreads them over."""

CONNECT = r"""
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        print(s.recv(100).decode().strip())
except OSError as error:
    print(f"failed: {error}")
    sys.exit(1)
"""


@dataclass(frozen=True)
class Lab:
    internet: str
    gw: str
    ten1: str
    ten2: str
    background: Background


def _tenant(vni: int, interface: str, snat: str) -> TenantEdge:
    return TenantEdge(vni, interface, (NET4("10.0.0.0/24"),), IP4(snat))


BASE = GatewayPlan("ext", (_tenant(1, "t1", SNAT1), _tenant(2, "t2", SNAT2)))
DENY_25 = FirewallRule("rule-1", Direction.EGRESS, Action.DENY, Proto.TCP, (25, 25))


def with_rules(plan: GatewayPlan, vni: int, **changes: Any) -> GatewayPlan:
    tenants = tuple(replace(t, **changes) if t.vni == vni else t for t in plan.tenants)
    return replace(plan, tenants=tenants)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    made: list[str] = []
    background = Background()
    kernels: list[Kernel] = []
    try:
        names = [f"{TAG}{n}" for n in ("inet", "gw", "ten1", "ten2")]
        for name in names:
            assert nl.ensure_netns(name) is True
            made.append(name)
        internet, gw, ten1, ten2 = names
        g, i, k1, k2 = (Kernel(n) for n in (gw, internet, ten1, ten2))
        kernels += [g, i, k1, k2]
        g.ensure_veth("ext", "eth0", internet)
        g.ensure_veth("t1", "eth0", ten1)
        g.ensure_veth("t2", "eth0", ten2)
        for k, device in (
            (g, "ext"),
            (g, "t1"),
            (g, "t2"),
            (i, "eth0"),
            (k1, "eth0"),
            (k2, "eth0"),
        ):
            k.set_link(device, up=True)
        for k in kernels:
            k.set_link("lo", up=True)
        g.ensure_address("ext", IFACE4("30.0.0.254/16"))
        i.ensure_address("eth0", IFACE4(f"{SERVER_IP}/16"))
        for device in ("t1", "t2"):  # one address on two interfaces: no /24 in the main table
            g.ensure_address(device, IFACE4("10.0.0.1/32"))
        for k in (k1, k2):
            k.ensure_address("eth0", IFACE4("10.0.0.2/24"))
            k.ensure_route(NET4("0.0.0.0/0"), IP4("10.0.0.1"), "eth0")
        # The external network reaches ten2's CIDR through the gateway when ten2 is routed.
        i.ensure_route(NET4("10.0.0.0/24"), IP4(SNAT2), "eth0")
        for namespace in (internet, ten1):
            server = background.start(
                namespace, sys.executable, "-c", SERVER, stdout=subprocess.PIPE
            )
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield Lab(internet, gw, ten1, ten2, background)
    finally:
        background.stop_all()
        for k in kernels:
            k.close()
        for name in reversed(made):
            nl.delete_netns(name)


NAMED = r"""
import socket, sys
# One TCP listener that greets every peer with its own name and the peer's address.
with socket.create_server(("0.0.0.0", int(sys.argv[2])), reuse_port=True) as server:
    print("ready", flush=True)
    while True:
        peer, (address, _) = server.accept()
        with peer:
            peer.sendall(f"{sys.argv[1]} {address}\n".encode())
"""


def curl(namespace: str, url: str, *more: str) -> subprocess.Popen[str]:
    command = in_netns(namespace, "curl", "-sS", "--max-time", "10", *more, url)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out.strip()


def connect(namespace: str, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    command = in_netns(namespace, sys.executable, "-c", CONNECT, host, str(port), str(timeout))
    done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    return done.returncode == 0, done.stdout.strip()


def conntrack(namespace: str) -> list[str]:
    command = in_netns(namespace, "cat", "/proc/net/nf_conntrack")
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()


def ip_json(namespace: str, *args: str) -> Any:
    done = subprocess.run(
        ["ip", "-j", "-n", namespace, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout or "[]")


MOVING = frozenset({"handle", "packets", "bytes"})


def shape(value: object) -> object:
    """The table as nft lists it, without handles and counter values (which move)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k not in MOVING}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def test_two_tenants_with_one_cidr_leave_by_their_own_snat_address(lab: Lab) -> None:
    gateway.apply(lab.gw, realise(BASE))
    one, two = curl(lab.ten1, f"http://{SERVER_IP}/"), curl(lab.ten2, f"http://{SERVER_IP}/")
    assert (answer(one), answer(two)) == (SNAT1, SNAT2)
    entries = [e for e in conntrack(lab.gw) if "dst=30.0.2.2" in e and "dport=80 " in e]
    for zone, snat in ((1, SNAT1), (2, SNAT2)):
        mine = [e for e in entries if f"zone={zone}" in e.split()]
        assert mine, entries
        assert all("src=10.0.0.2" in e and f"dst={snat}" in e for e in mine), mine
    # Policy routing: each tenant's CIDR lives in its own table only.
    for vni, device in ((1, "t1"), (2, "t2")):
        table = str((1 << 24) | vni)
        routes = ip_json(lab.gw, "route", "show", "table", table)
        assert [(r["dst"], r["dev"]) for r in routes] == [("10.0.0.0/24", device)]
    assert not [r for r in ip_json(lab.gw, "route", "show") if r["dst"].startswith("10.")]


def test_a_deny_rule_blocks_its_tenant_only_and_counts(lab: Lab) -> None:
    plan = with_rules(BASE, 1, rules=(DENY_25,))
    gateway.apply(lab.gw, realise(plan))
    before = nftables.counters(lab.gw)["vni1-rule-1"]
    ok, said = connect(lab.ten1, SERVER_IP, 25)
    assert not ok, said
    after = nftables.counters(lab.gw)["vni1-rule-1"]
    assert after[0] > before[0], (before, after)
    assert connect(lab.ten2, SERVER_IP, 25) == (True, f"220 {SNAT2}")
    assert answer(curl(lab.ten1, f"http://{SERVER_IP}/")) == SNAT1  # port 80 still allowed


def test_unsolicited_ingress_to_a_snat_address_is_dropped_and_counted(lab: Lab) -> None:
    gateway.apply(lab.gw, realise(BASE))
    before = nftables.counters(lab.gw)["vni1.ingress-dropped"]
    ok, said = connect(lab.internet, SNAT1, 80, timeout=1.5)
    assert not ok and "timed out" in said, said
    after = nftables.counters(lab.gw)["vni1.ingress-dropped"]
    assert after[0] > before[0], (before, after)


def test_reapplying_keeps_state_and_an_established_download(lab: Lab) -> None:
    plan = with_rules(BASE, 1, rules=(DENY_25,))
    gateway.apply(lab.gw, realise(plan))
    download = curl(
        lab.ten2,
        f"http://{SERVER_IP}/big?n={BIG}&t={SLOW}",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
    )
    time.sleep(1.0)
    table = shape(nftables.listing(lab.gw))
    assert table is not None
    rules = ip_json(lab.gw, "rule", "show")
    counted = nftables.counters(lab.gw)
    for _ in range(3):
        gateway.apply(lab.gw, realise(plan))
        time.sleep(0.3)
    assert shape(nftables.listing(lab.gw)) == table
    assert ip_json(lab.gw, "rule", "show") == rules
    again = nftables.counters(lab.gw)
    assert all(again[name][0] >= packets for name, (packets, _) in counted.items())
    assert download.poll() is None, "the download ended before the re-applies were done"
    assert answer(download) == str(BIG)


def test_a_public_ip_is_reachable_and_used_for_its_nodes_egress(lab: Lab) -> None:
    public = (PublicIp(IP4("10.0.0.2"), IP4(PUBLIC1)),)
    gateway.apply(lab.gw, realise(with_rules(BASE, 1, public_ips=public)))
    # In from the internet: DNAT to ten1's node, which sees the real source.
    assert answer(curl(lab.internet, f"http://{PUBLIC1}/")) == SERVER_IP
    # Out from that node: 1:1 SNAT before the pool's; ten2 (same node address) unaffected.
    assert answer(curl(lab.ten1, f"http://{SERVER_IP}/")) == PUBLIC1
    assert answer(curl(lab.ten2, f"http://{SERVER_IP}/")) == SNAT2
    assert nftables.counters(lab.gw)["vni1.public-allowed"][0] >= 1


def test_a_routed_tenant_is_neither_translated_nor_mixed_with_a_translated_one(lab: Lab) -> None:
    routed = with_rules(BASE, 2, routed=True)  # a `nat: none` pool: one CIDR with ten1
    gateway.apply(lab.gw, realise(routed))
    listener = lab.background.start(
        lab.ten2, sys.executable, "-c", NAMED, "ten2", "2222", stdout=subprocess.PIPE
    )
    assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
    before = nftables.counters(lab.gw)["vni2.routed-allowed"]
    # Out: the server sees ten2's own address; ten1, same address, is still SNATed.
    assert answer(curl(lab.ten2, f"http://{SERVER_IP}/")) == "10.0.0.2"
    assert answer(curl(lab.ten1, f"http://{SERVER_IP}/")) == SNAT1
    # In, unsolicited, by the route through the gateway: ten2's node, never ten1's.
    assert connect(lab.internet, "10.0.0.2", 2222) == (True, f"ten2 {SERVER_IP}")
    # Not tracked (the zone's SNATed entries of earlier tests may still be there).
    assert not [e for e in conntrack(lab.gw) if "zone=2" in e.split() and "dst=10.0.0.2 " in e]
    assert nftables.counters(lab.gw)["vni2.routed-allowed"][0] > before[0]
    # A rule still applies, packet by packet.
    deny = FirewallRule("rule-9", Direction.INGRESS, Action.DENY, Proto.TCP, (2222, 2222))
    gateway.apply(lab.gw, realise(with_rules(routed, 2, rules=(deny,))))
    ok, said = connect(lab.internet, "10.0.0.2", 2222, timeout=1.5)
    assert not ok, said
    assert nftables.counters(lab.gw)["vni2-rule-9"][0] >= 1
    gateway.apply(lab.gw, realise(BASE))


def test_a_removed_tenant_leaves_no_chain_counter_rule_or_address(lab: Lab) -> None:
    both, alone = realise(BASE), realise(replace(BASE, tenants=BASE.tenants[:1]))
    gateway.apply(lab.gw, both)
    gateway.apply(lab.gw, alone)
    gateway.withdraw(lab.gw, both, alone)
    listing = nftables.listing(lab.gw)
    assert listing is not None
    names = [str(body.get("name")) for item in listing for body in item.values()]
    assert "vni1-egress" in names and "vni1.egress-allowed" in names
    assert not [name for name in names if name.startswith("vni2")]
    assert (
        "fwmark 0x1000002"
        not in subprocess.run(
            ["ip", "-n", lab.gw, "rule"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert answer(curl(lab.ten1, f"http://{SERVER_IP}/")) == SNAT1
    # Its SNAT address is off the external interface: the host answers no ARP for it.
    held = subprocess.run(
        ["ip", "-n", lab.gw, "-4", "-o", "addr"], capture_output=True, text=True, check=True
    ).stdout
    assert f" {SNAT1}/32 " in held and f" {SNAT2}/32 " not in held, held


def test_delete_removes_only_onms_table(lab: Lab) -> None:
    nft = in_netns(lab.gw, "nft")
    subprocess.run([*nft, "add", "table", "inet", "someone-else"], check=True)
    nftables.delete(lab.gw)
    assert nftables.listing(lab.gw) is None
    left = subprocess.run([*nft, "list", "tables"], capture_output=True, text=True, check=True)
    assert left.stdout.split() == ["table", "inet", "someone-else"]
    assert nftables.counters(lab.gw) == {}
    nftables.delete(lab.gw)  # absent is success
