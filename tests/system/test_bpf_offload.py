"""Issue #11: the eBPF datapath carries offloaded traffic in the kernel, proved with real traffic.

BPF_PROG_TEST_RUN builds no GSO packet, so this takes a lab on `--datapath ebpf` (`gso<pid>`,
after `ONM_TEST_LAB_PREFIX`): hosts r and s, znet with a and b on r and g on s. A node's TCP
hands its veth 64 KiB super-packets (TSO); the programs must judge the MTU by their segments
(`skb->gso_size`), translate them whole and keep them whole on the substrate. What proves it,
from the outside: the transfer arrives, the programs passed no frame as too big
(`onm_agent_ebpf_slowpath_total{reason="too_big"}` flat on both hosts), the cores handled next to
none of its packets (`onm_agent_packets_*`), and host s's substrate interface saw IPv6 frames
larger than the substrate MTU (super-packets, which no core and no segmenting would send).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from onm.agent.io.netns import run_in_netns
from onm.agent.io.packet_socket import open_packet_socket, recv_batch
from onm.lab.plan import SUBSTRATE_IF
from support.datapaths import datapath_chosen
from support.overlay_lab import PUBLISH, Lab, eventually, running_lab, wait_reachable
from support.servers import Background

TOPOLOGY = """\
substrate: {mtu: 1520}
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
tenants: [{name: z}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
nodes:
  - {name: a, network: znet, host: r, ip: 10.0.0.2}
  - {name: b, network: znet, host: r, ip: 10.0.0.4}
  - {name: g, network: znet, host: s, ip: 10.0.0.3}
"""
ADDR = {"a": "10.0.0.2", "b": "10.0.0.4", "g": "10.0.0.3"}
PORTS = {"r": 2, "s": 1}
SUBSTRATE_MTU = 1520
ETH_P_IPV6 = 0x86DD
SECONDS = 3
CORE_BUDGET = 64
"""Packets the cores may handle during a transfer: ARP, neighbour discovery, a first miss."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = f"{os.environ.get('ONM_TEST_LAB_PREFIX', '')}gso{os.getpid()}"
    with datapath_chosen("ebpf"), running_lab(tmp_path_factory, name, TOPOLOGY, PORTS, 15) as built:
        yield built


def slow_too_big(lab: Lab) -> float:
    return sum(lab.metrics(h)['onm_agent_ebpf_slowpath_total{reason="too_big"}'] for h in PORTS)


def core_packets(lab: Lab) -> float:
    return sum(
        v for h in PORTS for k, v in lab.metrics(h).items() if k.startswith("onm_agent_packets_")
    )


def iperf3(lab: Lab, background: Background, client: str, server: str) -> dict[str, float]:
    """One `iperf3 -t SECONDS` from `client` to `server`: iperf3's sum_received."""
    listener = background.start(
        lab.ns(server), "iperf3", "-s", "-1", "-B", ADDR[server],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    probe = ["ip", "netns", "exec", lab.ns(server), "ss", "-Hltn", "sport = :5201"]
    eventually(
        lambda: "5201" in subprocess.run(probe, capture_output=True, text=True).stdout,
        f"iperf3 listening in {server}",
    )
    done = lab.exec_in(client, "iperf3", "-c", ADDR[server], "-t", str(SECONDS), "-J")
    report = json.loads(done.stdout)
    assert done.returncode == 0, report.get("error")
    listener.wait(15)
    received: dict[str, float] = report["end"]["sum_received"]
    return received


@contextlib.contextmanager
def substrate_sizes(lab: Lab, host: str) -> Iterator[Callable[[], list[int]]]:
    """A reader of the IPv6 frames `host`'s substrate interface receives from now on: their
    lengths as the kernel hands them over (a GSO packet whole). An ETH_P_ALL tap, which runs
    before tc (one bound to ETH_P_IPV6 sees only what the program passes to the stack)."""
    [sock] = run_in_netns(lab.host_ns(host), lambda: [open_packet_socket(SUBSTRATE_IF)])
    sizes: list[int] = []

    def read() -> list[int]:
        while batch := recv_batch(sock):
            sizes.extend(len(f) for f in batch if int.from_bytes(f[12:14]) == ETH_P_IPV6)
        return sizes

    with sock:
        yield read


def port_sent(lab: Lab, host: str) -> int:
    """Packets the host-side ends of `host`'s node ports transmitted (all but the substrate's)."""
    links = json.loads(
        subprocess.run(
            ["ip", "-n", lab.host_ns(host), "-s", "-j", "link", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return sum(
        link["stats64"]["tx"]["packets"]
        for link in links
        if link["ifname"] not in ("lo", SUBSTRATE_IF)
    )


def test_tcp_super_packets_cross_in_the_kernel_whole(lab: Lab, background: Background) -> None:
    """Also: s delivers into g's namespace with bpf_redirect_peer (its port is a veth), so the
    port's host-side end transmits next to nothing while g receives the whole transfer."""
    wait_reachable(lab, "a", ADDR["g"])
    time.sleep(2 * PUBLISH)
    too_big, handled, sent = slow_too_big(lab), core_packets(lab), port_sent(lab, "s")
    with substrate_sizes(lab, "s") as sizes:
        received = iperf3(lab, background, "a", "g")
        seen = sizes()
    time.sleep(2 * PUBLISH)
    assert received["bytes"] > 0
    assert slow_too_big(lab) == too_big, "the programs passed frames to the cores as too big"
    assert core_packets(lab) - handled < CORE_BUDGET
    assert port_sent(lab, "s") - sent < CORE_BUDGET, "delivered through the port, not its peer"
    larger = [size for size in seen if size > 14 + SUBSTRATE_MTU]
    assert larger, f"no super-packet on s's substrate among {len(seen)} frames"


def test_tcp_between_nodes_on_one_host_stays_in_the_kernel(
    lab: Lab, background: Background
) -> None:
    """a to b, both on r: node_ingress finds b in onm_locals and delivers a's frames (super-
    packets whole) into b's namespace, and b's into a's: the cores see none, and neither port's
    host-side end transmits them."""
    wait_reachable(lab, "a", ADDR["b"])
    time.sleep(2 * PUBLISH)
    too_big, handled, sent = slow_too_big(lab), core_packets(lab), port_sent(lab, "r")
    received = iperf3(lab, background, "a", "b")
    time.sleep(2 * PUBLISH)
    assert received["bytes"] > 0
    assert slow_too_big(lab) == too_big, "the programs passed frames to the cores as too big"
    assert core_packets(lab) - handled < CORE_BUDGET
    assert port_sent(lab, "r") - sent < CORE_BUDGET, "delivered through the ports, not peers"
