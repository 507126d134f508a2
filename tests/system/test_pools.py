"""Pools end to end in the lab (issue #9; seed 0 FIG. 2B): J's requests to the pool IP 10.0.0.3
are answered by the nearest member H; when H's service dies they are answered by G, with no new
ARP from J; H back, J goes back to it (nearest); with every member down J fails fast (ICMP host
unreachable, fail-closed); a member whose agent goes silent becomes `unknown`. J's pings to the
pool IP count as H's deliveries (its reported load); on ebpf the kernel carries them and H's
answers from the pool IP: no slow-path hand-over on any host.

Real HTTP from the node J's namespace; health checks are the agents' own (HTTP GET /healthz
from the network's gateway), reported to the manager and pushed to J's agent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from support.datapaths import lab_name
from support.netns_tools import in_netns
from support.overlay_lab import Lab, eventually, onm, running_lab
from support.pool_lab import POOL_IP, PORT, TOPOLOGY
from support.pool_testbed import Services

PORTS = {"r": 1, "s": 1, "t": 1}


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory, lab_name("pl", datapath), TOPOLOGY, PORTS, 20) as built:
        yield built


@pytest.fixture(scope="module")
def members(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    found = Services(lab, tmp_path_factory.mktemp("www"), ("g", "h"))
    try:
        found.start("g")
        found.start("h")
        yield found
    finally:
        found.background.stop_all()


def fetch(lab: Lab, timeout: float = 2.0) -> tuple[str | None, float]:
    """J asks the pool: who answered (None: nobody), and how long it took."""
    url = f"http://{POOL_IP}:{PORT}/whoami.txt"
    started = time.monotonic()
    done = subprocess.run(
        in_netns(lab.ns("j"), "curl", "-s", "-m", str(timeout), url),
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout if done.returncode == 0 else None), time.monotonic() - started


def health(lab: Lab) -> dict[str, str]:
    shown = json.loads(onm("pool", "show", "znet/web", "--json", *_manager(lab)).stdout)
    return {m["node"]: m["health"] for m in shown["members"]}


def _manager(lab: Lab) -> list[str]:
    record = lab.record()
    return ["--url", record.manager_url, "--token", f"@{record.admin_token_file}"]


def neighbour_mac(lab: Lab) -> str:
    out = subprocess.run(
        in_netns(lab.ns("j"), "ip", "-j", "neigh", "show", POOL_IP),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = json.loads(out or "[]")
    return str(entries[0].get("lladdr", "")) if entries else ""


def _pool_handovers(lab: Lab) -> float:
    return sum(lab.metrics(h)['onm_agent_ebpf_slowpath_total{reason="pool"}'] for h in PORTS)


def _from_substrate(lab: Lab, host: str) -> float:
    return lab.metrics(host)['onm_agent_packets_total{direction="from_substrate"}']


def _load(lab: Lab, member: str) -> float:
    shown = json.loads(onm("pool", "show", "znet/web", "--json", *_manager(lab)).stdout)
    return float(next(m["load"] for m in shown["members"] if m["node"] == member))


def test_the_pool_traffic_counts_as_the_members_load(
    lab: Lab, datapath: str, members: Services
) -> None:
    """J pings the pool IP: H (nearest) answers from it, and its deliveries are its load. On
    ebpf nothing of it reaches a core: no `pool` hand-over anywhere, s's core reads next to
    nothing from the substrate (the health checks are local), the kernel's counts go up."""
    eventually(lambda: health(lab) == {"g": "up", "h": "up"} or None, "both members up", 15)
    # show says both up before J's agent has heard it (pushed after): h answers from then on
    eventually(lambda: fetch(lab)[0] == "h" or None, "an answer from h (nearest)", 10)
    kernel = datapath == "ebpf"
    handed, read = (_pool_handovers(lab), _from_substrate(lab, "s")) if kernel else (0.0, 0.0)
    pings = subprocess.Popen(
        in_netns(lab.ns("j"), "ping", "-q", "-c", "400", "-i", "0.01", "-W", "1", POOL_IP),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        loaded = eventually(lambda: _load(lab, "h") or None, "h's load reported", 10)
        assert loaded > 10, loaded  # ~100 a second delivered to h as the pool
    finally:
        out, _ = pings.communicate(timeout=30)
    assert " 0% packet loss" in out, out
    if kernel:
        assert _pool_handovers(lab) == handed
        assert _from_substrate(lab, "s") - read < 40, "the kernel delivered J's pings to h"


def test_nearest_member_answers_then_failover_without_arp_then_back(
    lab: Lab, members: Services
) -> None:
    eventually(lambda: health(lab) == {"g": "up", "h": "up"} or None, "both members up", 15)
    assert eventually(lambda: fetch(lab)[0], "an answer from the pool", 10) == "h"  # nearest
    mac = neighbour_mac(lab)
    pool_mac = json.loads(onm("pool", "show", "znet/web", "--json", *_manager(lab)).stdout)["mac"]
    assert mac == pool_mac

    members.stop("h")
    died = time.monotonic()
    who = eventually(lambda: fetch(lab, 0.5)[0] == "g" or None, "g answering", 10)
    moved_after = time.monotonic() - died
    assert who and moved_after < 5, moved_after
    assert neighbour_mac(lab) == pool_mac  # J did not need another ARP answer
    assert health(lab)["h"] == "down"
    events = onm("events", "--json", *_manager(lab)).stdout
    assert "pool.member_health" in events

    members.start("h")
    eventually(lambda: fetch(lab, 0.5)[0] == "h" or None, "h answering again", 10)


def test_all_members_down_fails_fast(lab: Lab, members: Services) -> None:
    eventually(lambda: health(lab) == {"g": "up", "h": "up"} or None, "both members up", 15)
    members.stop("g")
    members.stop("h")
    try:
        eventually(lambda: health(lab) == {"g": "down", "h": "down"} or None, "both down", 10)
        answer, took = fetch(lab, 5.0)
        assert answer is None and took < 1.5, took  # host unreachable at once, no 5 s wait
    finally:
        members.start("g")
        members.start("h")
    eventually(lambda: fetch(lab, 0.5)[0] == "h" or None, "h answering again", 15)


def test_a_member_whose_agent_is_silent_becomes_unknown(lab: Lab, members: Services) -> None:
    eventually(lambda: health(lab) == {"g": "up", "h": "up"} or None, "both members up", 15)
    agent = lab.process("agent", "t")
    os.kill(agent.pid, signal.SIGSTOP)  # frozen: no reports (not dead: the lab would restart it)
    try:
        eventually(lambda: health(lab)["g"] == "unknown" or None, "g unknown", 15)
        assert fetch(lab, 1.0)[0] == "h"
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    eventually(lambda: health(lab)["g"] == "up" or None, "g up again", 15)
