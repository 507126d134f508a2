"""Multi-location labs (issue #9): `substrate.latency` delays traffic between hosts by how far
apart they are, so `nearest` shows in round-trip times. Hosts r and s share locale 1 (other
racks), t is in locale 2 with `between_locales: 20ms` (one way, each way: +40 ms a round trip).
J on r pings H on s (near) and G on t (far); then the pool of H and G, `policy: nearest`,
answers J's pings at near speed while G's own address stays far away.

Needs netem (CONFIG_NET_SCH_NETEM); without it the latency tests skip, and one test checks
that `onm lab up` refuses such a file with the kernel's reason and leaves nothing behind. One
more runs everywhere: in a lab without latency, the delay classes put on host r's `sub0` catch
the agents' SIIT traffic toward t's /64 (and not r's own traffic to t's transit address): what
the delays are built on.
"""

from __future__ import annotations

import ipaddress
import json
import re
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from onm.netlink.kernel import Kernel
from support.datapaths import lab_name
from support.netem import netem_missing
from support.netns_tools import in_netns
from support.overlay_lab import Lab, eventually, onm, running_lab, wait_reachable

POOL_IP = "10.0.0.3"
IPS = {"j": "10.0.0.10", "h": "10.0.0.8", "g": "10.0.0.7"}
TOPOLOGY = f"""
substrate: {{latency: {{between_locales: 20ms}}}}
hosts:
  - {{name: r, location: {{locale: 1, area: 1, rack: 1, node: 1}}}}
  - {{name: s, location: {{locale: 1, area: 1, rack: 2, node: 1}}}}
  - {{name: t, location: {{locale: 2, area: 1, rack: 1, node: 1}}}}
tenants: [{{name: z}}]
networks:
  - {{name: znet, tenant: z, cidr: 10.0.0.0/24}}
nodes:
  - {{name: j, network: znet, host: r, ip: {IPS["j"]}}}
  - {{name: h, network: znet, host: s, ip: {IPS["h"]}}}
  - {{name: g, network: znet, host: t, ip: {IPS["g"]}}}
pools:
  - name: web
    network: znet
    ip: {POOL_IP}
    policy: nearest
    check: {{kind: icmp, interval: 0.2, timeout: 0.2, rise: 1, fall: 2}}
    members: [g, h]
"""
PORTS = {"r": 1, "s": 1, "t": 1}
measured: dict[str, float] = {}
"""Median RTTs (ms), printed at the end of the module (`pytest -s`)."""


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    missing = netem_missing()
    if missing is not None:
        pytest.skip(f"no netem here: {missing}")
    with running_lab(tmp_path_factory, lab_name("lt", datapath), TOPOLOGY, PORTS, 30) as built:
        yield built
    print("median RTTs (ms):", json.dumps(measured))


def median_rtt(lab: Lab, node: str, address: str, count: int = 10) -> float:
    """Median round trip (ms) of `count` pings from `node`; most must be answered."""
    done = subprocess.run(
        in_netns(lab.ns(node), "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", address),
        capture_output=True,
        text=True,
        timeout=60,
    )
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", done.stdout)]
    assert len(times) >= count - 2, done.stdout + done.stderr
    return statistics.median(times)


def health(lab: Lab) -> dict[str, str]:
    record = lab.record()
    manager = ["--url", record.manager_url, "--token", f"@{record.admin_token_file}"]
    shown = json.loads(onm("pool", "show", "znet/web", "--json", *manager).stdout)
    return {m["node"]: m["health"] for m in shown["members"]}


def test_round_trips_follow_the_locations(lab: Lab) -> None:
    for node in ("h", "g"):
        wait_reachable(lab, "j", IPS[node], 15)
    near = measured["same locale"] = median_rtt(lab, "j", IPS["h"])
    far = measured["other locale"] = median_rtt(lab, "j", IPS["g"])
    assert near < 10, near
    assert 40 <= far < 200, far


def test_the_nearest_member_answers_the_pool(lab: Lab) -> None:
    eventually(lambda: health(lab) == {"g": "up", "h": "up"} or None, "both members up", 20)
    wait_reachable(lab, "j", POOL_IP, 15)
    pool = measured["pool IP"] = median_rtt(lab, "j", POOL_IP)
    member = measured["far member"] = median_rtt(lab, "j", IPS["g"])
    assert pool < 10, pool  # h answers: nearest
    assert member >= 40, member


def test_without_netem_up_is_refused_with_the_reason_and_leaves_nothing(tmp_path: Path) -> None:
    missing = netem_missing()
    if missing is None:
        pytest.skip("this kernel has netem: the latency tests above cover it")
    file = tmp_path / "topology.yaml"
    file.write_text(TOPOLOGY)
    lab = Lab(lab_name("ltn", "userspace"), file, tmp_path / "state")
    try:
        done = onm("lab", "up", str(file), *lab.flags, check=False)
        assert done.returncode != 0
        assert "no netem qdisc" in done.stdout + done.stderr, done.stdout + done.stderr
    finally:
        onm("lab", "down", *lab.flags, check=False)
    assert not lab.namespaces()


PLAIN = """
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: t, location: {locale: 2, area: 1, rack: 1, node: 1}}
tenants: [{name: z}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
nodes:
  - {name: j, network: znet, host: r, ip: 10.0.0.10}
  - {name: g, network: znet, host: t, ip: 10.0.0.7}
"""


def test_agent_traffic_leaves_sub0_toward_the_other_hosts_prefix(
    datapath: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """On ebpf too: what the program redirects to sub0 goes through its qdisc."""
    name = lab_name("ltc", datapath)
    with running_lab(tmp_path_factory, name, PLAIN, {"r": 1, "t": 1}, 30) as plain:
        prefix = ipaddress.IPv6Network(plain.hosts["t"].prefix)
        host_ns = plain.host_ns("r")
        with Kernel(host_ns) as kernel:
            assert kernel.ensure_delay_classes("sub0", [[prefix]]) == (0x10001,)
        wait_reachable(plain, "j", IPS["g"], 15)
        before = sent_packets(host_ns)
        median_rtt(plain, "j", IPS["g"], 5)
        caught = sent_packets(host_ns) - before
        assert 5 <= caught < 10, caught  # the echo requests (and little else)
        transit = subprocess.run(
            in_netns(host_ns, "ping", "-6", "-c", "3", "-i", "0.2", "fd00:ffff::2"),
            capture_output=True,
            timeout=30,
        )
        assert transit.returncode == 0
        assert sent_packets(host_ns) - before - caught < 3  # r's own pings to t: not caught


def sent_packets(namespace: str) -> int:
    """Packets class 1:1 of `sub0` in `namespace` has sent."""
    text = subprocess.run(
        in_netns(namespace, "tc", "-s", "class", "show", "dev", "sub0"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"^class htb 1:1 .*?\n\s*Sent \d+ bytes (\d+) pkt", text, re.M)
    assert found, text
    return int(found[1])
