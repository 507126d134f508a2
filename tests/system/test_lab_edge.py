"""`onm lab` with an external network, a server on it, an edge host and an edge pool (issue
#10), against the real kernel.

The lab (`EDGE`, written to pytest's tmp dir) has a node host with node a, an edge host gw1 on
the external network `internet` (30.0.0.0/16) with server web (30.0.2.2), edge pool egress with
gateway e1 (30.0.100.1 on gw1), and route 0.0.0.0/0 through it. Each lab gets a unique name
(`e<pid><n>`, `support.edge_lab.lab_name`) and is taken down however the test ends. Agents are
not started (`--no-agents`) except where a test says so: these tests check what the lab builds.
The kernel is read over netlink (`onm.netlink`, pyroute2 on a socket the namespace helper opens
inside the namespace): the test process never enters a namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from onm.api.client import Client, read_token_file
from onm.lab import state as lab_state
from onm.netlink import helper
from onm.netlink import kernel as nl
from onm.netlink.kernel import Kernel
from support.edge_lab import EdgeTopology, Pool, lab_name
from support.netns_tools import pings_once
from support.overlay_lab import onm

EDGE = EdgeTopology(pools=(Pool(1, hash=None, probe_interval=None),), edge_hosts=1, mtu=None).yaml()
SEQ = itertools.count(1)
IFF_UP = 0x1
"""include/uapi/linux/if.h"""
RT_SCOPE_LINK = 253
"""include/uapi/linux/rtnetlink.h, enum rt_scope_t"""
MAIN_TABLE = 254


@dataclass
class Lab:
    name: str
    state_dir: Path
    file: Path

    @property
    def flags(self) -> tuple[str, ...]:
        return ("--name", self.name, "--state-dir", str(self.state_dir))

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return onm("lab", "up", str(self.file), *extra, *self.flags)

    def ns(self, role: str, owner: str = "") -> str:
        return f"onm-{self.name}-{role}" + (f"-{owner}" if owner else "")

    def namespaces(self) -> set[str]:
        return {n for n in nl.namespaces() if n.startswith(f"onm-{self.name}-")}

    def client(self) -> Client:
        record = lab_state.load(self.state_dir)
        assert record is not None
        return Client(record.manager_url, read_token_file(Path(record.admin_token_file)))


def new_lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    name = f"{lab_name('e')}{next(SEQ)}"
    directory = tmp_path_factory.mktemp("lab")
    file = directory / "edge.yaml"
    file.write_text(EDGE)
    return Lab(name, directory / name, file)


@contextlib.contextmanager
def taken_down(lab: Lab) -> Iterator[Lab]:
    try:
        yield lab
    finally:
        onm("lab", "down", *lab.flags, check=False)
        assert not lab.namespaces()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab without agents, shared by the tests that only look at it."""
    with taken_down(new_lab(tmp_path_factory)) as built:
        built.up("--no-agents")
        yield built


@contextlib.contextmanager
def netlink(namespace: str) -> Iterator[Any]:
    """pyroute2 on a netlink socket made inside `namespace` (the caller stays where it is)."""
    sock = helper.socket_in(namespace, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    ipr = IPRoute(fileno=sock.detach())
    try:
        yield ipr
    finally:
        ipr.close()


def addresses(namespace: str, device: str) -> list[ipaddress.IPv4Interface]:
    with netlink(namespace) as ipr:
        [link] = ipr.link("get", ifname=device)
        found = ipr.get_addr(family=socket.AF_INET, index=link["index"])
    return [
        ipaddress.IPv4Interface((m.get_attr("IFA_ADDRESS"), int(m["prefixlen"]))) for m in found
    ]


def is_up(namespace: str, device: str) -> bool:
    with netlink(namespace) as ipr:
        [link] = ipr.link("get", ifname=device)
    return bool(int(link["flags"]) & IFF_UP)


def ipv4_routes(namespace: str, device: str) -> list[tuple[str, int, str | None]]:
    """(destination, scope, gateway) of the IPv4 main-table routes out of `device`."""
    with netlink(namespace) as ipr:
        [link] = ipr.link("get", ifname=device)
        found = ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE)
    return [
        (f"{r.get_attr('RTA_DST')}/{r['dst_len']}", int(r["scope"]), r.get_attr("RTA_GATEWAY"))
        for r in found
        if r.get_attr("RTA_OIF") == link["index"] and r.get_attr("RTA_TABLE") == MAIN_TABLE
    ]


def pings(namespace: str, target: str, tries: int = 5) -> bool:
    for _ in range(tries):
        if pings_once(namespace, target):
            return True
        time.sleep(0.2)
    return False


# --- what the manager holds ------------------------------------------------------------------
def test_the_manager_holds_the_external_the_edge_host_the_pool_and_the_route(lab: Lab) -> None:
    with lab.client() as client:
        [internet] = client.list_externals()
        hosts = {h.name: h for h in client.list_hosts()}
        [pool] = client.list_edge_pools()
        routes = client.list_routes(pool.network_id)
    assert (internet.name, internet.cidr) == ("internet", "30.0.0.0/16")
    gw1 = hosts["gw1"]
    assert getattr(gw1, "role", None) == "edge"
    assert getattr(gw1, "external_id", None) == internet.id
    assert getattr(hosts["h1"], "role", None) == "node"
    assert (pool.name, pool.network, pool.nat) == ("egress", "znet", "snat")
    assert [(g.name, g.host_id, g.external_ip) for g in pool.gateways] == [
        ("e1", gw1.id, "30.0.100.1")
    ]
    assert [(r.prefix, r.edge_pool_id) for r in routes] == [("0.0.0.0/0", pool.id)]


# --- what the kernel holds -------------------------------------------------------------------
def test_the_server_has_its_address_on_the_external_switch(lab: Lab) -> None:
    web = lab.ns("s", "web")
    assert addresses(web, "eth0") == [ipaddress.IPv4Interface("30.0.2.2/16")]
    assert is_up(web, "eth0") and is_up(web, "lo")
    with Kernel(lab.ns("x", "internet")) as switch:
        bridge = switch.link("br0")
        assert bridge is not None and bridge.kind == "bridge"
        ports = [switch.link(port) for port in ("h2", "s1")]  # gw1 is host 2; web server 1
        assert [p.kind if p else None for p in ports] == ["veth", "veth"]
        assert switch.link("h1") is None  # h1 is no edge host: no port here


def test_the_edge_host_has_ext0_with_a_link_route_and_no_address(lab: Lab) -> None:
    gw1 = lab.ns("h", "gw1")
    with Kernel(gw1) as kernel:
        ext0 = kernel.link("ext0")
        assert ext0 is not None and ext0.kind == "veth"
        assert kernel.next_hop(ipaddress.IPv4Address("30.0.2.2"), "ext0") == (
            ipaddress.IPv4Address("30.0.2.2")
        )  # on-link
        assert kernel.link("sub0") is not None  # and on the substrate like every host
    assert is_up(gw1, "ext0")
    assert addresses(gw1, "ext0") == []
    assert ipv4_routes(gw1, "ext0") == [("30.0.0.0/16", RT_SCOPE_LINK, None)]
    with Kernel(lab.ns("h", "h1")) as kernel:
        assert kernel.link("ext0") is None


def test_with_a_gateway_address_on_ext0_the_edge_host_reaches_the_server(lab: Lab) -> None:
    gw1 = lab.ns("h", "gw1")
    assert not pings(gw1, "30.0.2.2", tries=1)  # no address of its own to answer to
    with Kernel(gw1) as kernel:
        kernel.ensure_address("ext0", ipaddress.IPv4Interface("30.0.100.1/32"))
    try:
        assert pings(gw1, "30.0.2.2")
        assert pings(lab.ns("s", "web"), "30.0.100.1")
    finally:
        with netlink(gw1) as ipr:
            [link] = ipr.link("get", ifname="ext0")
            ipr.addr("del", index=link["index"], address="30.0.100.1", prefixlen=32)


def test_exec_runs_in_the_server(lab: Lab) -> None:
    assert onm("lab", "exec", "--name", lab.name, "web", "--", "true").returncode == 0
    shown = onm("lab", "exec", "--name", lab.name, "web", "--", "cat", "/proc/net/fib_trie")
    assert "30.0.2.2" in shown.stdout
    failed = onm("lab", "exec", "--name", lab.name, "web", "--", "sh", "-c", "exit 4", check=False)
    assert failed.returncode == 4


def test_status_lists_the_external_and_the_server(lab: Lab) -> None:
    data = json.loads(onm("lab", "status", "--name", lab.name, "--json").stdout)
    found = {(n["role"], n["owner"], n["name"], n["up"]) for n in data["namespaces"]}
    assert ("external", "internet", lab.ns("x", "internet"), True) in found
    assert ("server", "web", lab.ns("s", "web"), True) in found
    assert {n["name"] for n in data["namespaces"]} == {
        lab.ns("sub"),
        lab.ns("h", "h1"),
        lab.ns("h", "gw1"),
        lab.ns("n", "a"),
        lab.ns("x", "internet"),
        lab.ns("s", "web"),
    }
    table = onm("lab", "status", "--name", lab.name).stdout
    assert "external" in table and "server" in table


def test_up_again_makes_nothing_new(lab: Lab) -> None:
    with lab.client() as client:
        before = [p.model_dump() for p in client.list_edge_pools()]
    again = lab.up("--no-agents")
    for word in ("external network", "edge pool", "route", "namespace onm-"):
        assert not any(line.strip().startswith(word) for line in again.stdout.splitlines()), (
            again.stdout
        )
    with lab.client() as client:
        assert [p.model_dump() for p in client.list_edge_pools()] == before


# --- with agents, and down ---------------------------------------------------------------------
def test_every_host_runs_an_agent_and_down_leaves_nothing(
    datapath: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """On each datapath (an agent asked for ebpf that cannot load it exits at start)."""
    with taken_down(new_lab(tmp_path_factory)) as built:
        built.up()  # exits 1 if an agent (the edge host's too) exits at start
        data = json.loads(onm("lab", "status", *built.flags, "--json").stdout)
        agents = {p["owner"]: p["running"] for p in data["processes"] if p["role"] == "agent"}
        assert agents == {"h1": True, "gw1": True}
        for process in data["processes"]:
            if process["role"] == "agent":
                argv = Path(f"/proc/{process['pid']}/cmdline").read_bytes().split(b"\0")
                assert argv[argv.index(b"--datapath") + 1].decode() == datapath, argv
        assert len(built.namespaces()) == 6
        down = onm("lab", "down", *built.flags)
        assert f"lab {built.name} is down" in down.stdout
        assert built.namespaces() == set()
