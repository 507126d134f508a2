"""Issue #7 defect 8: a host holds more than 63 nodes, and the ones past 63 carry traffic.

Until then the manager refused a host's 64th node ("no free slot", the 6-bit slot of the
substrate address) and so did the lab's topology loader. One lab (`sl<pid>`) with real agents:
host r runs 70 nodes, 66 of tenant z's `znet` and 4 of tenant y's `ynet` on the same CIDR at
the very addresses of z's last four; host s runs one peer per network, both on 10.0.0.3. The
nodes made after the 63rd ping their network's peer across the substrate, and each learns its
own network's peer (by the virtual MAC its agent answered the ARP with), never the other
tenant's. Built by `onm lab up` run as a real process, removed by `onm lab down` (by the lab's
own name) however the module ends.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from support.datapaths import lab_name
from support.netns_tools import in_netns
from support.overlay_lab import Lab, answers, running_lab

Z_NODES = 66
Y_NODES = 4  # the twins of z63..z66: same IPs, same host, another tenant
ON_R = Z_NODES + Y_NODES


def z_ip(i: int) -> str:
    return f"10.0.0.{9 + i}"  # z1 = 10.0.0.10 ... z66 = 10.0.0.75


def topology() -> str:
    nodes = [f"  - {{name: z{i}, network: znet, host: r, ip: {z_ip(i)}}}" for i in range(1, 67)]
    nodes += [
        f"  - {{name: y{i}, network: ynet, host: r, ip: {z_ip(Z_NODES - Y_NODES + i)}}}"
        for i in range(1, Y_NODES + 1)
    ]
    nodes += [
        "  - {name: gz, network: znet, host: s, ip: 10.0.0.3}",
        "  - {name: gy, network: ynet, host: s, ip: 10.0.0.3}",
    ]
    return "\n".join(
        [
            "substrate: {mtu: 1520}",
            "hosts:",
            "  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}",
            "  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}",
            "tenants: [{name: z}, {name: y}]",
            "networks:",
            "  - {name: znet, tenant: z, cidr: 10.0.0.0/24}",
            "  - {name: ynet, tenant: y, cidr: 10.0.0.0/24}",
            "nodes:",
            *nodes,
            "",
        ]
    )


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = time.monotonic()
    # Agent r attaches its 70 ports one by one: the lab is ready once it has them all.
    name, ready = lab_name("sl", datapath), {"r": ON_R}
    with running_lab(tmp_path_factory, name, topology(), ready, 60, timeout=300) as built:
        print(f"\nlab with {ON_R} nodes on one host up in {time.monotonic() - started:.1f} s")
        yield built


def test_the_manager_placed_seventy_nodes_on_one_host(lab: Lab) -> None:
    with lab.client() as client:
        on_r = client.list_nodes(host="r")
    assert len(on_r) == ON_R
    assert len({(n.network_id, n.ip) for n in on_r}) == ON_R
    assert len({n.ip for n in on_r}) == Z_NODES  # the y nodes share the IPs of z63..z66


def neighbour_mac(namespace: str, ip: str) -> str:
    shown = subprocess.run(
        ["ip", "-n", namespace, "neigh", "show", ip], capture_output=True, text=True, check=True
    )
    fields = shown.stdout.split()
    return fields[fields.index("lladdr") + 1] if "lladdr" in fields else ""


def test_the_nodes_past_the_63rd_reach_their_own_networks_peer(lab: Lab) -> None:
    late = [f"z{i}" for i in range(63, Z_NODES + 1)] + [f"y{i}" for i in range(1, Y_NODES + 1)]
    # The agent attaches its 70 ports one by one after its snapshot: wait for the last ones.
    started, deadline = time.monotonic(), time.monotonic() + 90
    for node in late:
        while not answers(lab, node, "10.0.0.3"):
            assert time.monotonic() < deadline, f"{node} never reached its peer\n{lab.logs()}"
            time.sleep(0.3)
    print(f"\nthe last {len(late)} nodes answered within {time.monotonic() - started:.1f} s")
    command = ("ping", "-c", "3", "-i", "0.3", "-w", "30", "10.0.0.3")
    pings = {
        node: subprocess.Popen(
            in_netns(lab.ns(node), *command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in late
    }
    outcome = {}
    for node, process in pings.items():
        try:
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        outcome[node] = (process.returncode, output)
    failed = {node: out for node, (code, out) in outcome.items() if code != 0}
    assert not failed, f"{failed}\n{lab.logs()}"

    with lab.client() as client:
        macs = {n.name: n.mac for n in client.list_nodes(host="s")}
    for node in late:
        peer = "gz" if node.startswith("z") else "gy"
        assert neighbour_mac(lab.ns(node), "10.0.0.3") == macs[peer], node
