"""Edge pools end to end in the lab (issue #10; seed 1 FIG. 2C): nodes reach a server on the
external network through a pool of three gateways, each flow through the gateway its sending
agent chose (the server sees that gateway's SNAT address), the same gateway every agent (and
this test) computes from the pool's Maglev table; a gateway killed mid-transfer loses only its
own flows, which go on through a survivor, while a download through another carries on.

    h1: a 10.0.0.2, c 10.0.0.4    h2: b 10.0.0.3      gw1..gw3: edge hosts on `internet`
    internet 30.0.0.0/16: web 30.0.2.2 (HTTP: `/` answers the peer's address; `/big` a long body)
    egress (znet): e1 30.0.100.1 (gw1), e2 30.0.100.2 (gw2), e3 30.0.100.3 (gw3), hashed on
    the 5-tuple, probed every 0.2 s; route 0.0.0.0/0 -> egress.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from onm.addressing import SubstrateAddress, embed_ipv4
from onm.agent.datapath.ebpf.datapath import FIGURES_EVERY
from onm.selection.flow import Flow
from support.edge_lab import (
    WEB,
    EdgeTopology,
    Node,
    Pool,
    PoolTable,
    all_agents_ready,
    connections,
    core_packets,
    download_result,
    edge_lab,
    fetch,
    ip4,
    start_download,
    tcp,
)
from support.netns_tools import in_netns
from support.overlay_lab import (
    Lab,
    carrying,
    drop_key,
    eventually,
    ip_json,
    marker,
    send_frames,
    sniffing,
    wait_for_counts,
)

GATEWAYS = {"30.0.100.1": "gw1", "30.0.100.2": "gw2", "30.0.100.3": "gw3"}
TOPOLOGY = EdgeTopology(
    pools=(Pool(3),),
    edge_hosts=3,
    node_hosts=2,
    nodes=(Node("a", "h1", "10.0.0.2"), Node("c", "h1", "10.0.0.4"), Node("b", "h2", "10.0.0.3")),
)
PORTS = TOPOLOGY.ports()


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "eg", TOPOLOGY) as built:
        yield built


def test_nodes_reach_the_server_through_a_gateway_address(lab: Lab) -> None:
    for node in ("a", "b", "c"):
        seen = eventually(lambda n=node: fetch(lab, n) or None, f"{node} reaches web", 15)
        assert seen in GATEWAYS, f"{node}: the server saw {seen!r}\n{lab.logs()}"
    ping = lab.exec_in("a", "ping", "-c", "2", "-W", "2", WEB)
    assert ping.returncode == 0, ping.stdout + ping.stderr


SELECTIONS = "onm_agent_edge_selections_total"
"""The gateways h1's core chose from a table (on ebpf the kernel chooses: not counted here)."""


def new_flows(lab: Lab, host: str) -> float:
    """The new flows `host`'s agent counts over every gateway (the core's and the kernel's)."""
    found = lab.metrics(host)
    return sum(v for k, v in found.items() if k.startswith("onm_agent_edge_new_flows_total{"))


def settled_new_flows(lab: Lab, host: str) -> float:
    """`new_flows` once two readings a figures period apart agree: on ebpf the kernel's counts
    reach the metrics every `FIGURES_EVERY`, so an earlier test's flows may still be coming."""
    last = new_flows(lab, host)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(FIGURES_EVERY + 0.5)
        now = new_flows(lab, host)
        if now == last:
            return now
        last = now
    pytest.fail(f"{host}'s new-flow count still moving after 15 s")


def test_concurrent_flows_take_the_gateway_every_agent_computes(lab: Lab, datapath: str) -> None:
    """On ebpf the kernel chooses and pins every one of them: h1's core makes no choice, and
    the agent's new-flow counts (the kernel's, read back) still grow by all 60."""
    ports = range(42000, 42060)
    counted = settled_new_flows(lab, "h1")
    chosen = lab.metrics("h1")[SELECTIONS]
    seen = connections(lab, "a", ports)
    assert sorted(seen) == list(ports), seen
    pool = PoolTable.of(lab, "znet/egress")
    wrong = {
        port: (address, pool.seen_as(tcp("10.0.0.2", port)))
        for port, address in seen.items()
        if address != pool.seen_as(tcp("10.0.0.2", port))
    }
    assert not wrong, f"port: (seen, computed) {wrong}"
    assert set(seen.values()) == set(GATEWAYS)  # 60 flows of one pair spread over all three
    if datapath == "ebpf":
        assert lab.metrics("h1")[SELECTIONS] == chosen, "the core chose, not the kernel"
    grown = eventually(
        lambda: (n := new_flows(lab, "h1") - counted) >= 60 and n, "h1 counting 60 new flows", 10
    )
    assert grown == 60


def _choosing(lab: Lab, choice: str) -> None:
    """The pool's `choice` set (as `onm edge-pool update --choice` does), once every agent has
    applied it."""
    with lab.client() as client:
        client.update_edge_pool("znet/egress", {"choice": choice})
        revision = client.status().revision

        def applied() -> bool:
            return all(h.applied_revision >= revision for h in client.status().hosts)

        eventually(applied, f"every agent applying choice {choice}", 15)


def test_a_random_choice_spreads_new_flows_and_on_ebpf_the_kernel_makes_it(
    lab: Lab, datapath: str
) -> None:
    """`choice: random`: 60 concurrent flows of one pair all get through, over more than one
    gateway (all on one: 3 x 3^-60); on ebpf the kernel picks and pins each (h1's core makes no
    selection), on userspace the core makes all 60."""
    ports = range(42100, 42160)
    _choosing(lab, "random")
    try:
        chosen = lab.metrics("h1")[SELECTIONS]
        seen = connections(lab, "a", ports)
        assert sorted(seen) == list(ports), seen
        assert len(set(seen.values())) >= 2 and set(seen.values()) <= set(GATEWAYS), seen
        selections = lab.metrics("h1")[SELECTIONS] - chosen
        assert selections == 0 if datapath == "ebpf" else selections >= 60, selections
    finally:
        _choosing(lab, "hash")


def test_external_sources_reach_a_node_only_from_its_networks_gateways(lab: Lab) -> None:
    """A datagram from outside the network is taken only from a gateway of the network's pools
    (`Tables.gateway_sources`; `onm_gateways` on ebpf, where the kernel delivers it): one from
    web forged under node host h2's /64 is dropped and counted on h1, the same under gw1's /64
    reaches a."""
    with lab.client() as client:
        snapshot = client.snapshot("h1")
    assert snapshot is not None
    a_at = next(n.substrate_address for n in snapshot.nodes if n.node.name == "a")
    [pool] = snapshot.edge_pools
    by_host = {lab.hosts[h].id: h for h in lab.hosts}
    gw1 = next(g.prefix for g in pool.gateways if by_host[g.gateway.host_id] == "gw1")
    vni = SubstrateAddress.decode(ipaddress.IPv6Address(a_at).packed).network_id

    def from_web(prefix: str, data: bytes) -> Packet:
        high = int.from_bytes(ipaddress.IPv6Network(prefix).network_address.packed[:8], "big")
        source = ipaddress.IPv6Address(embed_ipv4(high, vni, ip4(WEB)))
        return IPv6(src=str(source), dst=a_at) / UDP(sport=80, dport=9) / Raw(data)

    forged, genuine = marker(), marker()
    before = lab.metrics("h1")
    with sniffing(lab.ns("a")) as seen:
        for host, prefix, data in (("h2", lab.hosts["h2"].prefix, forged), ("gw1", gw1, genuine)):
            (sub0,) = ip_json(lab.host_ns(host), "link", "show", "dev", "sub0")
            (h1_sub0,) = ip_json(lab.host_ns("h1"), "link", "show", "dev", "sub0")
            frame = Ether(src=sub0["address"], dst=h1_sub0["address"]) / from_web(prefix, data)
            send_frames(lab.host_ns(host), "sub0", [frame])
        wait_for_counts(lab, "h1", before, {drop_key("spoofed_substrate_source"): 1})
        eventually(lambda: carrying(seen(), genuine) == 1, "the gateway's datagram reaching a")
        assert carrying(seen(), forged) == 0


def _tenant_packets(lab: Lab, host: str) -> dict[str, float]:
    found = lab.metrics(host)
    return {
        way: sum(
            v
            for k, v in found.items()
            if k.startswith("onm_agent_edge_tenant_packets_total") and f'direction="{way}"' in k
        )
        for way in ("out", "in")
    }


def _carried_through(lab: Lab, datapath: str, port: int) -> str:
    """A 4 MB download by a from `port`: whole, through the gateway the pool's table names,
    carried by the cores on userspace and by neither core on ebpf; that gateway's host."""
    pool = PoolTable.of(lab, "znet/egress")
    carrier = pool.host[pool.gateway(tcp("10.0.0.2", port))]
    # the download's data: sent by the gateway's core, read by h1's (a's ACKs, fewer, and
    # probes and their answers both ways, a few hundred, are not counted on)
    ways = {(carrier, "to_substrate"), ("h1", "from_substrate")}
    before = {way: core_packets(lab, *way) for way in ways}
    counted = _tenant_packets(lab, carrier)
    size = 4_000_000
    got, peer = download_result(start_download(lab, "a", port, size, 1.0))
    assert got == size and GATEWAYS.get(peer) == carrier, (got, peer)
    for way in ways:  # a download of 4 MB is ~2800 datagrams of 1460 octets
        taken = core_packets(lab, *way) - before[way]
        if datapath == "ebpf":
            assert taken < 300, f"{way}: the core carried {taken:.0f} packets of the download"
        else:
            assert taken > 1000, f"{way}: the core carried only {taken:.0f} packets"

    def counted_now() -> dict[str, float] | None:
        now = _tenant_packets(lab, carrier)
        return now if now["in"] - counted["in"] > 1000 else None

    now = eventually(counted_now, f"{carrier}'s counts of the download", 10)
    assert now["out"] - counted["out"] > 20, now  # a's request and ACKs (coalesced by GRO)
    return carrier


def test_on_ebpf_the_kernel_carries_a_gateways_traffic(lab: Lab, datapath: str) -> None:
    """A 4 MB download through a gateway. On ebpf neither the edge host's core nor h1's sees
    its packets (gateway_egress takes the replies from the TUN onto the substrate,
    substrate_ingress hands a's requests into the TUN and delivers the replies to a); on
    userspace both cores carry it. The gateway's per-network counts (on ebpf the kernel's,
    read back) count it either way."""
    all_agents_ready(lab, PORTS)
    _carried_through(lab, datapath, 45500)


def test_a_restarted_gateway_agent_carries_in_the_kernel_again(lab: Lab, datapath: str) -> None:
    """The gateway's agent killed and started again by the lab's supervisor: its TUN went
    with it, so the duties it left in the pinned maps are dropped at adoption (a redirect to a
    device gone is lost uncounted) and written anew for the new TUN once it has the program."""
    all_agents_ready(lab, PORTS)
    carrier = _carried_through(lab, datapath, 45600)
    os.kill(lab.process("agent", carrier).pid, signal.SIGKILL)
    time.sleep(0.5)
    all_agents_ready(lab, PORTS)
    pool = PoolTable.of(lab, "znet/egress")
    name = next(pool.name[g] for g, host in pool.host.items() if host == carrier)
    up = f'onm_agent_edge_gateway_up{{gateway="{name}",pool="egress"}}'
    eventually(lambda: lab.metrics("h1").get(up) == 1 or None, f"h1 finding {name} alive", 20)
    # a new flow (one pinned meanwhile to a survivor stays there) the table gives the carrier
    port = next(
        p for p in range(45601, 46000) if pool.host[pool.gateway(tcp("10.0.0.2", p))] == carrier
    )
    assert _carried_through(lab, datapath, port) == carrier


def test_a_killed_gateway_moves_only_its_flows(lab: Lab) -> None:
    all_agents_ready(lab, PORTS)
    pool = PoolTable.of(lab, "znet/egress")
    a, web = "10.0.0.2", WEB
    victim_address = pool.address[pool.gateway(Flow(ip4(a), ip4(web), 1))]  # ICMP: no ports
    victim = GATEWAYS[victim_address]
    port = next(p for p in range(43000, 44000) if pool.seen_as(tcp(a, p)) != victim_address)
    size = 3_000_000
    download = start_download(lab, "a", port, size, 5)
    pings = subprocess.Popen(
        in_netns(lab.ns("a"), "ping", "-n", "-i", "0.1", "-c", "70", "-W", "1", WEB),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    os.kill(lab.process("agent", victim).pid, signal.SIGKILL)
    out, _ = download.communicate(timeout=40)
    assert download.returncode == 0 and out.split()[0] == str(size), (out, lab.logs())
    assert out.split()[1] == pool.seen_as(tcp(a, port))  # through the gateway computed
    ping_out, _ = pings.communicate(timeout=30)
    replies = [int(m) for m in re.findall(r"icmp_seq=(\d+)", ping_out)]
    assert replies and max(replies) >= 65, ping_out  # the pings go on through a survivor
    lost = 70 - len(replies)
    print(f"gateway killed: {lost} of 70 pings (every 0.1 s) lost")
    assert lost <= 20, f"{lost} pings lost (recovery should take well under 2 s)\n{ping_out}"
    all_agents_ready(lab, PORTS)  # the lab's supervisor starts the killed agent again
