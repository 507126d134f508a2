"""Resolutions in use are refreshed before they expire, on both datapaths, seen from outside.

One lab per datapath (`ttr[e]<pid>`): hosts r and s, tenant z's `znet` with a on r and g on s,
and a manager started with a short resolution lifetime (`manager.resolution_ttl`, i.e. `onm
manager serve --resolution-ttl 6`). Node a pings g every 0.2 s for more than three lifetimes;
each agent must ask again in the last quarter of each answer's life (the core on a packet, on
ebpf the timer from the kernel's stamps): no echo is lost, each agent counts refreshes
(`onm_agent_events_total{event="refreshes"}`) and answers, none of their resolutions expired
in use (`cache_expired`), and no frame of the flow missed its mapping (`no_mapping`: on ebpf
the kernel's slow path, on userspace the core's drop).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.datapaths import lab_name
from support.netns_tools import ping_counts
from support.overlay_lab import PUBLISH, Lab, running_datapath, running_lab, wait_reachable

TTL = 6
"""Seconds the lab's manager gives an answer: due for refresh in its last 1.5 s."""
TOPOLOGY = f"""\
manager: {{resolution_ttl: {TTL}}}
substrate: {{mtu: 1520}}
hosts:
  - {{name: r, location: {{locale: 1, area: 1, rack: 1, node: 1}}}}
  - {{name: s, location: {{locale: 1, area: 1, rack: 2, node: 1}}}}
tenants: [{{name: z}}]
networks:
  - {{name: znet, tenant: z, cidr: 10.0.0.0/24}}
nodes:
  - {{name: a, network: znet, host: r, ip: 10.0.0.2}}
  - {{name: g, network: znet, host: s, ip: 10.0.0.3}}
"""
PORTS = {"r": 1, "s": 1}
G = "10.0.0.3"
INTERVAL = 0.2
LIFETIMES = 3.5
COUNT = int(LIFETIMES * TTL / INTERVAL)
"""Echoes sent: more than three lifetimes of them (each answer renewed at least twice)."""

REFRESHES = 'onm_agent_events_total{event="refreshes"}'
ANSWERED = 'onm_agent_resolutions_total{result="answered"}'
EXPIRED = 'onm_agent_events_total{event="cache_expired"}'
SLOW_NO_MAPPING = 'onm_agent_ebpf_slowpath_total{reason="no_mapping"}'
DROP_NO_MAPPING = 'onm_agent_drops_total{reason="no_mapping"}'


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory, lab_name("ttr", datapath), TOPOLOGY, PORTS, 15) as built:
        yield built


def test_the_manager_gives_the_labs_short_lifetime(lab: Lab) -> None:
    manager = lab.process("manager")
    assert list(manager.argv)[-2:] == ["--resolution-ttl", str(TTL)]


def test_a_continuous_ping_loses_nothing_while_its_resolutions_are_refreshed(lab: Lab) -> None:
    wait_reachable(lab, "a", G)  # both agents resolved (a asks for g, g for a to answer)
    time.sleep(2 * PUBLISH)
    before = {host: lab.metrics(host) for host in PORTS}
    command = ("ping", "-c", str(COUNT), "-i", str(INTERVAL), "-W", "1", G)
    result = lab.exec_in("a", *command, timeout=COUNT * INTERVAL + 30)
    output = result.stdout + result.stderr
    time.sleep(2 * PUBLISH)
    after = {host: lab.metrics(host) for host in PORTS}

    def grown(host: str, key: str) -> float:
        return after[host][key] - before[host][key]

    seen = {
        host: {key: grown(host, key) for key in (REFRESHES, ANSWERED, EXPIRED, DROP_NO_MAPPING)}
        for host in PORTS
    }
    ebpf = running_datapath(lab.process("agent", "r")) == "ebpf"
    if ebpf:
        for host in PORTS:
            seen[host][SLOW_NO_MAPPING] = grown(host, SLOW_NO_MAPPING)
    why = f"{output}\ncounters grown: {seen}\n{lab.logs()}"
    assert ping_counts(output) == (COUNT, COUNT), why
    for host in PORTS:  # a's agent refreshes a -> g, g's agent g -> a (the echo replies)
        assert seen[host][REFRESHES] >= 2, why
        assert seen[host][ANSWERED] >= 2, why
        assert seen[host][EXPIRED] == 0, why
        assert seen[host][DROP_NO_MAPPING] == 0, why
        if ebpf:  # the kernel never lost the mapping: nothing of the flow reached the core
            assert seen[host][SLOW_NO_MAPPING] == 0, why
