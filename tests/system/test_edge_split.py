"""A routed edge pool (`nat: none`) in the lab, and splitting (issue #10; seed 1: "split the load
... across the two or more selected intermediate destinations"): the external server sees the
node's own address, reaches the node back through the pool, and one source/destination pair
that sends faster than `split_above` has its connections spread over the pool's gateways,
while the same pair under the threshold stays on one.

    h1: a 10.0.0.2          gw1..gw3: edge hosts on `internet` (30.0.0.0/16)
    internet: web 30.0.2.2 (HTTP, iperf3), routed back to 10.0.0.0/24 via 30.0.100.1 (the lab)
    links (znet): nat none, hashed on src,dst, split above 20 Mbit/s; route 0.0.0.0/0 -> links

What each gateway carried is read from its ext0's transmit counter (the kernel's).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from onm.lab.plan import EXTERNAL_IF, Role
from support.edge_lab import WEB, EdgeTopology, Pool, edge_lab
from support.netns_tools import in_netns
from support.overlay_lab import Lab, eventually
from support.servers import Background

EDGE = ("gw1", "gw2", "gw3")
LINKS = Pool(
    3, "links", nat="none", hash=("src", "dst"), split_above=20_000_000, probe_interval=None
)
TOPOLOGY = EdgeTopology(pools=(LINKS,), edge_hosts=3)
STREAMS = 8


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "es", TOPOLOGY) as built:
        background = Background()
        server = built.record().namespace_of(Role.SERVER, "web")
        assert server is not None
        try:
            background.start(server, "iperf3", "-s", "-p", "5201")
            yield built
        finally:
            background.stop_all()


def transmitted(lab: Lab) -> dict[str, int]:
    """Bytes each gateway host has sent out of ext0 so far."""
    out = {}
    for host in EDGE:
        done = subprocess.run(
            ["ip", "-j", "-s", "-n", lab.host_ns(host), "link", "show", EXTERNAL_IF],
            capture_output=True,
            text=True,
            check=True,
        )
        out[host] = json.loads(done.stdout)[0]["stats64"]["tx"]["bytes"]
    return out


def iperf(lab: Lab, *options: str) -> dict[str, int]:
    """Run `STREAMS` parallel TCP streams a -> web; what each gateway carried meanwhile."""
    before = transmitted(lab)
    done = subprocess.run(
        in_netns(lab.ns("a"), "iperf3", "-c", WEB, "-p", "5201", "-P", str(STREAMS), *options),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr + lab.logs()
    after = transmitted(lab)
    return {host: after[host] - before[host] for host in EDGE}


def test_the_server_sees_the_nodes_own_address_and_reaches_it_back(lab: Lab) -> None:
    fetch = in_netns(lab.ns("a"), "curl", "-s", "-m", "5", f"http://{WEB}/")

    def seen() -> str | None:
        return subprocess.run(fetch, capture_output=True, text=True, timeout=10).stdout or None

    assert eventually(seen, "a reaches web", 20) == "10.0.0.2"
    ping = lab.exec_in("web", "ping", "-c", "2", "-W", "2", "10.0.0.2")
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_a_pair_under_the_threshold_stays_on_one_gateway(lab: Lab) -> None:
    carried = iperf(lab, "-t", "3", "-b", "1M")  # 8 x 1 Mbit/s: under 20 Mbit/s
    total = sum(carried.values())
    assert total > STREAMS * 250_000, carried
    assert max(carried.values()) > 0.95 * total, carried


def test_a_pair_over_the_threshold_is_spread_over_the_gateways(lab: Lab) -> None:
    carried = iperf(lab, "-t", "4")
    total = sum(carried.values())
    busy = [host for host, sent in carried.items() if sent > 0.1 * total]
    assert len(busy) >= 2, carried
