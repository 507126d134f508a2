"""Edge pools in anycast mode in the lab (issue #10; seed 1: gateways sharing an anycast
address a router spreads by ECMP, steered by "spoofing a specified source network address ...
not actually used"): the pool's gateways share one /64, which h1's kernel routes by one
multipath route (a next hop per gateway host); one node's concurrent connections to one server
leave from 64 steered variants of its address, the kernel hashes each onto a gateway, and the
server sees more than one SNAT address, while every connection completes (the replies come back
to the steered address, which h1's agent delivers to the node).

    h1: a 10.0.0.2            gw1..gw3: edge hosts on `internet`
    internet 30.0.0.0/16: web 30.0.2.2 (HTTP: `/` answers the peer's address)
    egress (znet): mode anycast, hashed on the 5-tuple, e1..e3 30.0.100.1..3 on gw1..gw3;
    route 0.0.0.0/0 -> egress.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest

from onm.addressing import ANYCAST_VERSION, HostPrefix
from onm.api.schemas import HostOut
from onm.lab.plan import transit_address
from onm.netlink.kernel import Kernel
from support.edge_lab import (
    EdgeTopology,
    Pool,
    connections,
    core_packets,
    download_result,
    edge_lab,
    fetch,
    start_download,
)
from support.netns_tools import in_netns
from support.overlay_lab import Lab, eventually

GATEWAYS = {"30.0.100.1": "gw1", "30.0.100.2": "gw2", "30.0.100.3": "gw3"}
TOPOLOGY = EdgeTopology(pools=(Pool(3, mode="anycast"),), edge_hosts=3)
HOST_ORDER = ("h1", "gw1", "gw2", "gw3")


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "ea", TOPOLOGY) as built:
        yield built


def anycast_of(lab: Lab) -> ipaddress.IPv6Network:
    with lab.client() as client:  # the lab's admin token sees the pool's /64
        pool = client.get_edge_pool("znet/egress")
    assert pool.mode == "anycast" and pool.anycast is not None
    return ipaddress.IPv6Network(pool.anycast)


def test_the_pool_has_a_64_of_its_own_and_h1_routes_it_by_ecmp(lab: Lab) -> None:
    prefix = anycast_of(lab)
    assert HostPrefix.from_network(prefix).version == ANYCAST_VERSION
    hosts = {ipaddress.IPv6Network(h.prefix) for h in lab.hosts.values() if isinstance(h, HostOut)}
    assert len(hosts) == 4 and prefix not in hosts
    with Kernel(lab.host_ns("h1")) as kernel:  # read back with pyroute2 in h1's namespace
        hops = kernel.route_next_hops(prefix)
    expected = {transit_address(HOST_ORDER.index(g)).ip for g in ("gw1", "gw2", "gw3")}
    assert len(hops) == 3 and set(hops) == expected, hops  # one route, three next hops
    policy = subprocess.run(
        in_netns(lab.host_ns("h1"), "cat", "/proc/sys/net/ipv6/fib_multipath_hash_policy"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert policy.stdout.strip() == "0"  # layer 3: the steered source address counts
    with Kernel(lab.host_ns("gw1")) as kernel:  # an edge host takes it as its own
        assert kernel.route_next_hops(prefix) == []


def test_one_nodes_flows_spread_over_gateways_and_every_one_completes(lab: Lab) -> None:
    seen = eventually(lambda: fetch(lab, "a") or None, "a reaches web", 20)
    assert seen in GATEWAYS, f"the server saw {seen!r}\n{lab.logs()}"
    ports = range(45000, 45040)
    answers = connections(lab, "a", ports)
    assert sorted(answers) == list(ports), answers
    failed = {port: body for port, body in answers.items() if body not in GATEWAYS}
    assert not failed, f"connections that did not complete: {failed}\n{lab.logs()}"
    spread = Counter(GATEWAYS[body] for body in answers.values())
    # 40 flows of one pair over 3 next hops: all on one would take (1/3)**39 of luck.
    assert len(spread) > 1, spread
    print(f"anycast: {len(ports)} connections of one node -> gateways {dict(spread)}")


def _anycast_sent(lab: Lab) -> float:
    return lab.metrics("h1").get('onm_agent_edge_anycast_sent_packets_total{pool="egress"}', 0.0)


def test_on_ebpf_the_kernel_carries_an_anycast_download_both_ways(lab: Lab, datapath: str) -> None:
    """A 4 MB download through the anycast /64. On ebpf neither h1's core nor the gateway's
    sees its packets: node_ingress sends a's requests from the steered source (the kernel's
    multipath route picks the gateway), the gateway's substrate_ingress takes them into its
    TUN, its gateway_egress sends the replies to the steered variant of a's address, and h1's
    substrate_ingress delivers them to a. On userspace the cores carry it. What h1 sent the
    pool's /64 is counted either way (on ebpf the kernel's count, read back)."""
    sent = _anycast_sent(lab)
    carriers = sorted(GATEWAYS.values())
    ways = [("h1", "from_substrate"), ("h1", "to_substrate")]
    ways += [(g, d) for g in carriers for d in ("from_substrate", "to_substrate")]
    before = {way: core_packets(lab, *way) for way in ways}
    size = 4_000_000
    got, peer = download_result(start_download(lab, "a", 45500, size, 1.0))
    assert got == size and peer in GATEWAYS, (got, peer)
    carrier = GATEWAYS[peer]
    for host, direction in ways:  # a download of 4 MB is ~2800 datagrams of 1460 octets
        if host not in ("h1", carrier):
            continue
        taken = core_packets(lab, host, direction) - before[(host, direction)]
        if datapath == "ebpf":
            assert taken < 300, f"{host} {direction}: the core carried {taken:.0f} packets"
        elif (host, direction) in (("h1", "from_substrate"), (carrier, "to_substrate")):
            assert taken > 1000, f"{host} {direction}: the core carried only {taken:.0f}"
    eventually(
        lambda: _anycast_sent(lab) - sent > 20 or None, "h1 counting what a sent the /64", 10
    )
