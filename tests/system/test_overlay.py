"""Issue #4's system tests: real agents carry real traffic between the lab's namespaces.

One lab (`ov<pid>`) serves the module. Hosts r and s; tenant z's `znet` (10.0.0.0/24, SIIT)
with a and b on r and g on s; tenant y's `ynet` on the same CIDR with y1 on r at g's address
and y2 on s at a's; tenant x's `xnet`, encapsulated (RFC 2473), with x1 on r and x2 on s. It is
built by `onm lab up` run as a real process and removed by `onm lab down` however the module
ends; every program a test starts inside a namespace is stopped by its pid.

The agents are judged from the outside, as an operator would: from the nodes (ping, curl,
iperf3, `ip neigh`) and from their Prometheus metrics. Forged frames are written from inside a
namespace through a packet socket that a short-lived child opens there (`run_in_netns`, as the
agent does): the test process never changes namespace. Throughput is printed, never asserted.
The tests that stop the manager and kill an agent come last; `onm lab up` repairs the lab.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from onm.api.schemas import NodeOut
from onm.lab import netns, processes
from onm.lab.plan import SYSCTLS, Address, End, Role, Route, Veth
from support.netns_tools import ping_counts
from support.overlay_lab import (
    PUBLISH,
    Lab,
    agent_ready,
    carrying,
    drop_key,
    eventually,
    ip_json,
    marker,
    onm,
    running_datapath,
    running_lab,
    send_frames,
    sniffing,
    wait_for_counts,
    wait_reachable,
)
from support.servers import SERVE, Background

T = TypeVar("T")

TOPOLOGY = """\
substrate: {mtu: 1520}
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
tenants: [{name: z}, {name: y}, {name: x}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
  - {name: ynet, tenant: y, cidr: 10.0.0.0/24}
  - {name: xnet, tenant: x, cidr: 10.0.0.0/24, encoding: encap}
nodes:
  - {name: a, network: znet, host: r, ip: 10.0.0.2}
  - {name: b, network: znet, host: r, ip: 10.0.0.4}
  - {name: g, network: znet, host: s, ip: 10.0.0.3}
  - {name: y1, network: ynet, host: r, ip: 10.0.0.3}   # g's address, in the other tenant
  - {name: y2, network: ynet, host: s, ip: 10.0.0.2}   # a's address, in the other tenant
  - {name: x1, network: xnet, host: r, ip: 10.0.0.2}
  - {name: x2, network: xnet, host: s, ip: 10.0.0.3}
"""
NODES: dict[str, dict[str, str]] = {n["name"]: n for n in yaml.safe_load(TOPOLOGY)["nodes"]}
ADDR = {name: node["ip"] for name, node in NODES.items()}
MTU = {"znet": 1500, "xnet": 1480}
"""Node MTUs on the 1520-byte substrate: 20 bytes for SIIT, 40 for encapsulation."""
PORTS = {host: sum(n["host"] == host for n in NODES.values()) for host in ("r", "s")}

HTTP_PORT = 8000
BLOB_SIZE = 2 * 1024 * 1024


# --- running things --------------------------------------------------------------------------
def diagnosis(lab: Lab) -> str:
    """The agents' drop counters that are not zero, for a failing assertion's message."""
    lines = []
    for host in PORTS:
        try:
            samples = lab.metrics(host)
        except httpx.HTTPError as error:
            lines.append(f"agent {host}: no metrics ({error})")
            continue
        drops = {k: v for k, v in samples.items() if k.startswith("onm_agent_drops") and v}
        lines.append(f"agent {host} drops: {drops or 'none'}")
    return "\n".join(lines)


def ping(lab: Lab, node: str, target: str, count: int = 3, wait: int = 2) -> tuple[int, int, str]:
    """(transmitted, received, output) of `ping -c COUNT -W WAIT` from `node`."""
    command = ("ping", "-c", str(count), "-i", "0.2", "-W", str(wait), target)
    result = lab.exec_in(node, *command)
    transmitted, received = ping_counts(result.stdout + result.stderr)
    return transmitted, received, result.stdout + result.stderr


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a measurement so that it shows in the test log even when output is captured."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n    {line}", end="", flush=True)

    return say


# --- the lab ---------------------------------------------------------------------------------
PREFIX = {"userspace": "ov", "ebpf": "ovb"}
"""Each datapath's lab has a name of its own."""


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = f"{PREFIX[datapath]}{os.getpid()}"
    with running_lab(tmp_path_factory, name, TOPOLOGY, PORTS, 15) as built:
        status = json.loads(onm("lab", "status", *built.flags, "--json").stdout)
        assert all(ns["up"] for ns in status["namespaces"]), status
        assert all(p["running"] for p in status["processes"]), status
        assert sorted((p["role"], p["owner"]) for p in status["processes"]) == [
            ("agent", "r"),
            ("agent", "s"),
            ("manager", ""),
        ]
        yield built


@dataclass(frozen=True)
class Web:
    digests: dict[str, str]
    """sha256 of each server's blob.bin (every node serves different random bytes)."""


@pytest.fixture(scope="module")
def web(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """An HTTP server (`SERVE`) on g, b, y1 and y2, each serving whoami.txt (its own name) and
    a 2 MiB blob.bin of random bytes."""
    servers = Background()
    digests = {}
    try:
        for name in ("g", "b", "y1", "y2"):
            root = tmp_path_factory.mktemp(f"www-{name}")
            (root / "whoami.txt").write_text(name)
            blob = os.urandom(BLOB_SIZE)
            (root / "blob.bin").write_bytes(blob)
            digests[name] = hashlib.sha256(blob).hexdigest()
            servers.start(
                lab.ns(name),
                *(sys.executable, "-c", SERVE, ADDR[name], str(HTTP_PORT), str(root)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for name in digests:  # each answers on its own address (inside its namespace)
            url = f"http://{ADDR[name]}:{HTTP_PORT}/whoami.txt"
            eventually(
                lambda name=name, url=url: (
                    subprocess.run(
                        ["ip", "netns", "exec", lab.ns(name), "curl", "-s", "-m", "2", url],
                        capture_output=True,
                        text=True,
                    ).stdout
                    == name
                ),
                f"the web server of {name}",
            )
        yield Web(digests)
    finally:
        servers.stop_all()


def fetch(lab: Lab, node: str, address: str, path: str = "whoami.txt") -> str | None:
    """The body of http://ADDRESS:8000/PATH as fetched from `node`, or None if it failed."""
    result = lab.exec_in(
        node, "curl", "-sS", "-f", "--connect-timeout", "2", "-m", "10",
        f"http://{address}:{HTTP_PORT}/{path}",
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else None


# --- frames written from inside a namespace --------------------------------------------------
# --- traffic ---------------------------------------------------------------------------------
PAIRS = [("a", "g"), ("a", "b"), ("x1", "x2")]
PAIR_IDS = ["other-host", "same-host", "encap-other-host"]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=PAIR_IDS)
def test_ping(lab: Lab, source: str, target: str) -> None:
    wait_reachable(lab, source, ADDR[target])
    transmitted, received, output = ping(lab, source, ADDR[target], count=3)
    assert (transmitted, received) == (3, 3), output + diagnosis(lab)
    assert "0% packet loss" in output


def core_packets(lab: Lab) -> float:
    """Packets the agents' cores handled, both hosts, every direction."""
    return sum(
        v for h in PORTS for k, v in lab.metrics(h).items() if k.startswith("onm_agent_packets_")
    )


@pytest.mark.parametrize(("source", "target"), [("a", "g"), ("x1", "x2")], ids=["siit", "encap"])
def test_pings_between_hosts_are_answered_once_and_on_ebpf_never_reach_the_core(
    lab: Lab, source: str, target: str
) -> None:
    """No frame is forwarded twice (by the program and by the core that read it too); on
    ebpf the echoes between two known nodes stay in the kernel, translated or encapsulated."""
    wait_reachable(lab, source, ADDR[target])
    time.sleep(2 * PUBLISH)
    before = core_packets(lab)
    transmitted, received, output = ping(lab, source, ADDR[target], count=20)
    assert (transmitted, received) == (20, 20), output + diagnosis(lab)
    assert "DUP!" not in output, output
    time.sleep(2 * PUBLISH)
    handled = core_packets(lab) - before
    if running_datapath(lab.process("agent", "r")) == "ebpf":
        assert handled < 8, f"the cores handled {handled} packets of 80" + diagnosis(lab)
    else:
        assert handled >= 80


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=PAIR_IDS)
def test_the_largest_unfragmented_packet_passes_and_one_byte_more_is_refused_locally(
    lab: Lab, source: str, target: str
) -> None:
    mtu = MTU[NODES[source]["network"]]
    largest = mtu - 20 - 8  # IPv4 and ICMP headers
    wait_reachable(lab, source, ADDR[target])
    fits = lab.exec_in(source, "ping", "-c1", "-W2", "-M", "do", "-s", str(largest), ADDR[target])
    assert fits.returncode == 0, fits.stdout + fits.stderr + diagnosis(lab)
    assert f"{largest + 8} bytes from {ADDR[target]}" in fits.stdout
    too_big = lab.exec_in(
        source, "ping", "-c1", "-W1", "-M", "do", "-s", str(largest + 1), ADDR[target]
    )
    assert too_big.returncode != 0
    assert f"message too long, mtu={mtu}" in too_big.stdout + too_big.stderr


@pytest.mark.parametrize("server", ["g", "b"], ids=["other-host", "same-host"])
def test_http_brings_a_file_intact(
    lab: Lab, web: Web, server: str, tmp_path: Path, report: Callable[[str], None]
) -> None:
    wait_reachable(lab, "a", ADDR[server])
    out = tmp_path / "blob.bin"
    result = lab.exec_in(
        "a", "curl", "-sS", "-m", "30", "-o", str(out), "-w", "%{http_code} %{speed_download}",
        f"http://{ADDR[server]}:{HTTP_PORT}/blob.bin",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + diagnosis(lab)
    code, speed = result.stdout.split()
    assert code == "200"
    assert out.stat().st_size == BLOB_SIZE
    assert hashlib.sha256(out.read_bytes()).hexdigest() == web.digests[server]
    report(f"HTTP a->{server}: {BLOB_SIZE >> 20} MiB, sha256 equal, {float(speed) / 1e6:.1f} MB/s")


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=PAIR_IDS)
def test_tcp_flows_for_three_seconds(
    lab: Lab, background: Background, report: Callable[[str], None], source: str, target: str
) -> None:
    address = ADDR[target]
    wait_reachable(lab, source, address)
    server = background.start(
        lab.ns(target), "iperf3", "-s", "-1", "-B", address, "-J",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    eventually(
        lambda: (
            "5201"
            in subprocess.run(
                ["ip", "netns", "exec", lab.ns(target), "ss", "-Hltn", "sport = :5201"],
                capture_output=True,
                text=True,
            ).stdout
        ),
        f"iperf3 listening in {target}",
    )
    result = lab.exec_in(source, "iperf3", "-c", address, "-t", "3", "-J", timeout=60)
    outcome = json.loads(result.stdout)
    assert result.returncode == 0, f"{outcome.get('error')}\n{diagnosis(lab)}"
    sent, received = outcome["end"]["sum_sent"], outcome["end"]["sum_received"]
    assert received["bytes"] > 0
    segments = sent["bytes"] / outcome["start"]["tcp_mss_default"]
    assert sent["retransmits"] <= max(20, 0.02 * segments), f"{sent}\n{diagnosis(lab)}"
    server_out, _ = server.communicate(timeout=15)
    assert server.returncode == 0, server_out
    report(
        f"TCP {source}->{target} ({NODES[source]['network']}): "
        f"{received['bits_per_second'] / 1e9:.2f} Gbit/s, {received['bytes'] >> 20} MiB, "
        f"{sent['retransmits']} retransmits of ~{segments:.0f} segments"
    )


# --- isolation -------------------------------------------------------------------------------
def test_two_tenants_on_one_cidr_each_reach_only_their_own(lab: Lab, web: Web) -> None:
    # 10.0.0.3 is g in znet and y1 in ynet; 10.0.0.2 is a in znet and y2 in ynet.
    assert fetch(lab, "a", "10.0.0.3") == "g"  # r -> s
    assert fetch(lab, "b", "10.0.0.3") == "g"  # from y1's own host, still g
    assert fetch(lab, "y2", "10.0.0.3") == "y1"  # s -> r, from g's own host, not g
    assert fetch(lab, "y1", "10.0.0.2") == "y2"  # r -> s, not a next door on r
    # 10.0.0.4 (b) exists only in znet: nothing in ynet answers for it, from either host; the
    # manager refuses the resolution, so the ARP goes unanswered.
    before = {host: lab.metrics(host) for host in ("r", "s")}
    for node in ("y2", "y1"):
        transmitted, received, output = ping(lab, node, ADDR["b"], count=1, wait=1)
        assert (transmitted, received) == (1, 0), output
        neighbours = ip_json(lab.ns(node), "neigh", "show", ADDR["b"], "dev", "eth0")
        assert all(n.get("lladdr") != lab.nodes["b"].mac for n in neighbours), neighbours
    key = 'onm_agent_resolutions_total{result="refused"}'
    for host in ("r", "s"):
        eventually(
            lambda host=host: lab.metrics(host)[key] > before[host][key],
            f"agent {host} counting a refused resolution",
            5 * PUBLISH,
        )


def test_a_forged_source_ip_is_dropped_and_counted(lab: Lab) -> None:
    wait_reachable(lab, "a", ADDR["g"])  # a's agent knows g: only the source differs below
    a, g = lab.nodes["a"], lab.nodes["g"]
    forged, genuine = marker(), marker()

    def echo(source: str, payload: bytes) -> Packet:
        return Ether(src=a.mac, dst=g.mac) / IP(src=source, dst=g.ip) / ICMP(id=77) / Raw(payload)

    before = lab.metrics("r")
    with sniffing(lab.ns("g")) as seen:
        send_frames(lab.ns("a"), "eth0", [echo("10.0.0.9", forged), echo(a.ip, genuine)])
        wait_for_counts(lab, "r", before, {drop_key("spoofed_source_ip"): 1})
        # The genuine copy, sent after the forged one, arrives: the forged one would be before it.
        eventually(lambda: carrying(seen(), genuine) == 1, "the genuine echo reaching g")
        assert carrying(seen(), forged) == 0


def test_a_forged_source_mac_is_dropped_and_counted(lab: Lab) -> None:
    wait_reachable(lab, "a", ADDR["g"])
    a, g = lab.nodes["a"], lab.nodes["g"]
    forged, genuine = marker(), marker()

    def echo(mac: str, payload: bytes) -> Packet:
        return Ether(src=mac, dst=g.mac) / IP(src=a.ip, dst=g.ip) / ICMP(id=78) / Raw(payload)

    before = lab.metrics("r")
    with sniffing(lab.ns("g")) as seen:
        send_frames(lab.ns("a"), "eth0", [echo("02:00:00:00:0b:ad", forged), echo(a.mac, genuine)])
        wait_for_counts(lab, "r", before, {drop_key("spoofed_source_mac"): 1})
        eventually(lambda: carrying(seen(), genuine) == 1, "the genuine echo reaching g")
        assert carrying(seen(), forged) == 0


def test_arp_claiming_another_nodes_address_is_dropped_and_changes_nobody(lab: Lab) -> None:
    a, b, g = lab.nodes["a"], lab.nodes["b"], lab.nodes["g"]
    wait_reachable(lab, "a", b.ip)
    wait_reachable(lab, "b", g.ip)  # b has g in its ARP cache
    # "10.0.0.3 is at a's MAC": told to b directly, and announced to all; then an ARP whose
    # sender MAC is not a's. None may leave r's agent.
    stolen = Ether(src=a.mac, dst=b.mac) / ARP(op=2, hwsrc=a.mac, psrc=g.ip, hwdst=b.mac, pdst=b.ip)
    gratuitous = Ether(src=a.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=a.mac, psrc=g.ip, hwdst="00:00:00:00:00:00", pdst=g.ip
    )
    other_mac = Ether(src=a.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc="02:00:00:00:0b:ad", psrc=a.ip, pdst=b.ip
    )
    genuine = marker()
    after_them = Ether(src=a.mac, dst=b.mac) / IP(src=a.ip, dst=b.ip) / ICMP(id=79) / Raw(genuine)
    before = lab.metrics("r")
    with sniffing(lab.ns("b")) as seen:
        send_frames(lab.ns("a"), "eth0", [stolen, gratuitous, other_mac, after_them])
        wait_for_counts(lab, "r", before, {drop_key("arp_spoofed"): 3})
        eventually(lambda: carrying(seen(), genuine) == 1, "a's genuine echo reaching b")
        # No ARP saying "10.0.0.3 is at a's MAC" (sender MAC then sender IP) reached b.
        assert carrying(seen(), bytes.fromhex(a.mac.replace(":", "")) + socket.inet_aton(g.ip)) == 0
    # b still has g's real MAC for 10.0.0.3 and still reaches g.
    (entry,) = ip_json(lab.ns("b"), "neigh", "show", g.ip, "dev", "eth0")
    assert entry["lladdr"] == g.mac
    transmitted, received, output = ping(lab, "b", g.ip, count=3)
    assert (transmitted, received) == (3, 3), output
    (entry,) = ip_json(lab.ns("b"), "neigh", "show", g.ip, "dev", "eth0")
    assert entry["lladdr"] == g.mac


def test_forged_substrate_packets_are_dropped_and_counted(lab: Lab) -> None:
    """Host s's namespace sends to host r what no agent of s would: a's packets (a lives on r),
    one of tenant y's to tenant z's b, one for no node at all. Only the echo from g, which
    really lives on s, reaches b."""
    wait_reachable(lab, "g", ADDR["b"])
    with lab.client() as client:
        snapshot = client.snapshot("r")
    assert snapshot is not None
    where = {
        (resident.network_id, resident.ip): ipaddress.IPv6Address(resident.substrate_address)
        for resident in snapshot.residents
    }
    znet, ynet = lab.networks["znet"].id, lab.networks["ynet"].id
    a_real, b_real = where[(znet, ADDR["a"])], where[(znet, ADDR["b"])]
    g_real, y2_real = where[(znet, ADDR["g"])], where[(ynet, ADDR["y2"])]
    s_prefix = ipaddress.IPv6Network(lab.hosts["s"].prefix).network_address
    # a's identity (network id, IPv4, slot) under host s's /64, where a does not live:
    a_from_s = ipaddress.IPv6Address(s_prefix.packed[:8] + a_real.packed[8:])
    nobody = ipaddress.IPv6Address(b_real.packed[:12] + socket.inet_aton("10.0.0.99"))
    assert a_from_s != a_real and nobody not in where.values()

    (r_sub0,) = ip_json(lab.host_ns("r"), "link", "show", "dev", "sub0")
    (s_sub0,) = ip_json(lab.host_ns("s"), "link", "show", "dev", "sub0")

    def echo(source: ipaddress.IPv6Address, target: ipaddress.IPv6Address, data: bytes) -> Packet:
        return (
            Ether(src=s_sub0["address"], dst=r_sub0["address"])
            / IPv6(src=str(source), dst=str(target))
            / ICMPv6EchoRequest(id=80, data=data)
        )

    forged = {name: marker() for name in ("a-from-s", "a-itself", "nobody", "other-tenant")}
    genuine = marker()
    frames = [
        echo(a_from_s, b_real, forged["a-from-s"]),  # spoofed_substrate_source
        echo(a_real, b_real, forged["a-itself"]),  # spoofed_substrate_source: a is r's own
        echo(g_real, nobody, forged["nobody"]),  # not_local_destination
        echo(y2_real, b_real, forged["other-tenant"]),  # network_mismatch
        echo(g_real, b_real, genuine),  # g does live on s: translated and delivered
    ]
    before = lab.metrics("r")
    with sniffing(lab.ns("b")) as seen:
        send_frames(lab.host_ns("s"), "sub0", frames)
        wait_for_counts(
            lab,
            "r",
            before,
            {
                drop_key("spoofed_substrate_source"): 2,
                drop_key("not_local_destination"): 1,
                drop_key("network_mismatch"): 1,
            },
        )
        # The genuine echo, sent last, arrives: a forged one delivered would be there before it.
        eventually(lambda: carrying(seen(), genuine) == 1, "g's echo reaching b")
        assert {name: carrying(seen(), m) for name, m in forged.items()} == dict.fromkeys(forged, 0)


# --- the manager away, an agent killed (these change the lab: keep them last) ----------------
def manager_answers(lab: Lab) -> bool:
    try:
        return httpx.get(f"{lab.record().manager_url}/openapi.json", timeout=2).is_success
    except httpx.HTTPError:
        return False


def connected(lab: Lab, host: str) -> float:
    return lab.metrics(host)["onm_agent_manager_connected"]


@contextlib.contextmanager
def extra_node(lab: Lab, name: str, host: str, address: str) -> Iterator[NodeOut]:
    """A node created through the API after the lab went up, with a namespace of its own
    (`onm-LAB-t-NAME`), wired as the lab wires its nodes; both removed at the end."""
    znet = lab.networks["znet"]
    with lab.client() as client:
        node = client.create_node(name, znet.id, lab.hosts[host].id, address)
    namespace = f"onm-{lab.name}-t-{name}"
    try:
        netns.ensure_netns(namespace)
        for key, value in SYSCTLS[Role.NODE]:
            netns.set_sysctl(namespace, key, value)
        netns.set_up(namespace, "lo")
        eth0 = End(namespace, "eth0", MTU["znet"], mac=node.mac)
        netns.ensure_veth(Veth(eth0, End(lab.host_ns(host), node.interface, 1520)))
        netns.ensure_address(Address(namespace, "eth0", ipaddress.IPv4Interface(f"{address}/24")))
        gateway = ipaddress.IPv4Address(znet.gateways[0])
        netns.ensure_route(Route(namespace, ipaddress.IPv4Network("0.0.0.0/0"), gateway, "eth0"))
        yield node
    finally:
        netns.delete_netns(namespace)
        with lab.client() as client:
            client.delete_node(node.id)


def test_manager_away_traffic_flows_and_back_changes_flow(
    lab: Lab, background: Background, report: Callable[[str], None]
) -> None:
    wait_reachable(lab, "a", ADDR["g"])
    wait_reachable(lab, "a", ADDR["b"])
    agents = {host: lab.process("agent", host).pid for host in ("r", "s")}
    manager = lab.process("manager")
    url = lab.record().manager_url

    # An established flow across the substrate, 80 echoes over 8 s, outlives the manager.
    flow = background.start(
        lab.ns("a"), "ping", "-c", "80", "-i", "0.1", "-W", "2", ADDR["g"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(0.5)
    assert processes.stop(manager)  # SIGTERM (its pid and start time checked first)
    assert not manager_answers(lab)
    for host in agents:
        eventually(lambda host=host: connected(lab, host) == 0, f"agent {host} disconnected")
    # ARP is answered from the agent's cache: a forgets b and asks again, b stays reachable.
    hits = lab.metrics("r")["onm_agent_cache_hits_total"]
    assert lab.exec_in("a", "ip", "neigh", "del", ADDR["b"], "dev", "eth0").returncode == 0
    transmitted, received, output = ping(lab, "a", ADDR["b"], count=3)
    assert (transmitted, received) == (3, 3), output
    eventually(
        lambda: lab.metrics("r")["onm_agent_cache_hits_total"] > hits,
        "r answering a's ARP from its cache",
        5 * PUBLISH,
    )
    out, _ = flow.communicate(timeout=30)
    transmitted, received = ping_counts(out)
    assert (transmitted, received) == (80, 80), out
    assert not manager_answers(lab)  # the whole flow ran while the manager was away
    report(f"manager away: a->g {received}/{transmitted} echoes answered, 0% loss")

    # Back (`onm lab up` repairs): same URL, the agents kept (they reconnect by themselves).
    lab.up()
    assert lab.process("manager").pid != manager.pid
    assert lab.record().manager_url == url
    assert {host: lab.process("agent", host).pid for host in agents} == agents
    started = time.monotonic()
    for host in agents:
        eventually(lambda host=host: connected(lab, host) == 1, f"agent {host} reconnected", 30)
    reconnected = time.monotonic() - started

    # A change flows again: a node made now is attached on s and reached from a on r, and both
    # agents report the revision that made it (`onm status`: nobody lagging).
    with extra_node(lab, "late", "s", "10.0.0.60") as late:
        with lab.client() as client:
            made_at = client.status().revision
        took = wait_reachable(lab, "a", late.ip, timeout=15)
        token = f"@{lab.record().admin_token_file}"

        def caught_up() -> dict[str, Any] | None:
            status: dict[str, Any] = json.loads(
                onm("status", "--json", "--url", url, "--token", token).stdout
            )
            hosts = status["hosts"]
            done = all(
                h["applied_revision"] == h["desired_revision"] >= made_at and not h["lagging"]
                for h in hosts
            )
            return status if done and {h["host"] for h in hosts} == set(agents) else None

        eventually(caught_up, f"every host applying revision {made_at}", 10)
        for host in agents:  # and so say the agents themselves
            eventually(
                lambda host=host: lab.metrics(host)["onm_agent_applied_revision"] >= made_at,
                f"agent {host} exporting revision {made_at} as applied",
                5 * PUBLISH,
            )
    report(
        f"manager back: agents reconnected in {reconnected:.1f} s, "
        f"a new node reachable {took:.1f} s after it was made"
    )


def answered_seqs(output: str) -> list[int]:
    """The icmp_seq of each echo reply ping printed."""
    return [int(n) for n in re.findall(r"bytes from .* icmp_seq=(\d+)", output)]


def test_a_killed_agent_restarted_forwards_again_without_the_nodes_doing_anything(
    lab: Lab, report: Callable[[str], None]
) -> None:
    """On ebpf, issue #11's static stability: a ping every 20 ms from a to g (on s) runs
    through the kill and the restart and loses none (the pinned programs forward while no
    agent runs; the new agent adopts them). On userspace the new agent forwards again."""
    wait_reachable(lab, "a", ADDR["g"])
    ebpf = running_datapath(lab.process("agent", "s")) == "ebpf"
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("a"), "ping", "-i", "0.02", "-W", "2", ADDR["g"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1)
        agent = lab.process("agent", "s")
        assert processes.is_running(agent)
        killed = time.monotonic()
        os.kill(agent.pid, signal.SIGKILL)
        eventually(lambda: not processes.is_running(agent), "agent s gone")

        # The lab's supervisor starts a new agent on s; nothing is done inside any node.
        def restarted() -> bool:
            again = lab.process("agent", "s")
            return again.pid != agent.pid and processes.is_running(again)

        eventually(restarted, "agent s restarted by the lab's supervisor", timeout=10)
        eventually(lambda: agent_ready(lab, "s", PORTS["s"]), "agent s ready again", 20)
        if ebpf:  # it took over what the killed one left: no fresh, empty maps
            log = Path(lab.process("agent", "s").log).read_text(errors="replace")
            assert "maps adopted at" in log.rpartition("eBPF datapath: programs from")[2], log
        wait_reachable(lab, "a", ADDR["g"], timeout=10)
        took = time.monotonic() - killed
        time.sleep(1)  # and a while under the new agent
    finally:
        pinger.send_signal(signal.SIGINT)
        output, _ = pinger.communicate(timeout=10)
    seqs = answered_seqs(output)
    assert seqs, output
    missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
    transmitted, _received = ping_counts(output)
    if ebpf:
        assert not missing, f"lost {len(missing)} of {seqs[-1]}: icmp_seq {missing}\n{output}"
        assert transmitted - seqs[-1] <= 3, output  # only what was in flight at the end
    transmitted, received, output = ping(lab, "a", ADDR["g"], count=3)
    assert (transmitted, received) == (3, 3), output
    report(
        f"agent s killed: restarted by the supervisor, a->g answered {took:.1f} s after the "
        f"kill; a ping every 20 ms lost {len(missing)} of {seqs[-1]} meanwhile"
    )
