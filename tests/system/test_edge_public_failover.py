"""A public IP follows its gateway's health, end to end in the lab (issue #10; seed 1: incoming
external traffic; DESIGN.md section 5): while the gateway holding node a's public IP is judged
down, a survivor holds it (the manager's rule) and announces it by ARP, so the external server
reaches a again within seconds and a's own connections leave from its public IP through the
survivor; when the holder is back it holds the address again, and announces it.

The holder's agent is stopped (SIGSTOP), not killed: the lab's supervisor would start a
killed one again at once, and a stopped agent is the harder case (its kernel still holds the
address and its NAT state, and it learns nothing until it runs again).

    h1: a 10.0.0.2 (runs the EXTERNAL server: `/` answers the peer's address)
    gw1, gw2: edge hosts on `internet` 30.0.0.0/16; web 30.0.2.2 (the same server)
    egress (znet): e1 30.0.100.1 (gw1), e2 30.0.100.2 (gw2), probed every 0.2 s
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onm.lab.plan import Role
from support.edge_lab import EdgeTopology, Pool, admin, edge_lab, get
from support.overlay_lab import PUBLISH, Lab, eventually

WEB = "30.0.2.2"
PUBLIC = "30.0.100.50"
HOSTS = {"e1": "gw1", "e2": "gw2"}
TOPOLOGY = EdgeTopology(pools=(Pool(hash=None),))
POOL = "znet/egress"


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "ef", TOPOLOGY, servers_in=["a"]) as built:
        yield built


def holder(lab: Lab) -> str | None:
    """The gateway `onm edge-pool show` says holds the public IP."""
    shown = json.loads(admin(lab, "edge-pool", "show", POOL, "--json"))
    found = [p["gateway"] for p in shown["public_ips"] if p["ip"] == PUBLIC]
    return found[0] if found else None


def _from_nodes(lab: Lab) -> float:
    """Frames h1's core took from its nodes."""
    return lab.metrics("h1")['onm_agent_packets_total{direction="from_nodes"}']


def test_a_public_ip_holders_flows_stay_in_the_kernel_on_ebpf(lab: Lab, datapath: str) -> None:
    """a's own connections leave from its public IP through the holder; on ebpf node_ingress
    sends them there itself (`onm_holders`), so h1's core sees almost none of their frames."""
    web = lab.record().namespace_of(Role.SERVER, "web")
    assert web is not None
    admin(lab, "node", "public-ip", "add", "znet/a", "--edge-pool", "egress", "--ip", PUBLIC)
    try:
        assert eventually(lambda: get(web, f"http://{PUBLIC}/"), "web reaches a", 20) == WEB
        assert get(lab.ns("a"), f"http://{WEB}/") == PUBLIC  # ARP and resolution warmed up
        time.sleep(2 * PUBLISH)  # the metrics are published every PUBLISH
        before = _from_nodes(lab)
        for _ in range(5):
            assert get(lab.ns("a"), f"http://{WEB}/") == PUBLIC, lab.logs()
        time.sleep(2 * PUBLISH)
        taken = _from_nodes(lab) - before
        assert taken < 10 if datapath == "ebpf" else taken >= 25, taken  # ~6 frames each
    finally:
        admin(lab, "node", "public-ip", "remove", "znet/a", "--ip", PUBLIC)


def test_a_public_ip_moves_to_a_survivor_while_its_gateway_is_down(lab: Lab) -> None:
    web = lab.record().namespace_of(Role.SERVER, "web")
    assert web is not None
    added = json.loads(
        admin(lab, "node", "public-ip", "add", "znet/a", "--edge-pool", "egress", "--ip", PUBLIC,
            "--json")
    )  # fmt: skip
    first = added["gateway"]
    survivor = {"e1": "e2", "e2": "e1"}[first]
    assert eventually(lambda: get(web, f"http://{PUBLIC}/"), "web reaches a", 20) == WEB
    agent = lab.process("agent", HOSTS[first]).pid
    os.kill(agent, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        eventually(lambda: holder(lab) == survivor, f"{survivor} holds {PUBLIC}", 20)
        moved = time.monotonic() - stopped
        seen = eventually(lambda: get(web, f"http://{PUBLIC}/", 1), "web reaches a again", 20)
        reached = time.monotonic() - stopped
        assert seen == WEB, lab.logs()
        log = Path(lab.process("agent", HOSTS[survivor]).log).read_text(errors="replace")
        assert any("announced" in line and PUBLIC in line for line in log.splitlines()), log
        # a's own connections leave from its public IP, now through the survivor.
        assert get(lab.ns("a"), f"http://{WEB}/") == PUBLIC, lab.logs()
        print(f"{first} stopped: {survivor} holds {PUBLIC} after {moved:.1f} s, "
              f"web reaches a after {reached:.1f} s")  # fmt: skip
        assert reached < 15, f"{reached:.1f} s to reach a through the survivor"
    finally:
        os.kill(agent, signal.SIGCONT)
    eventually(lambda: holder(lab) == first, f"{first} holds {PUBLIC} again", 30)
    assert eventually(lambda: get(web, f"http://{PUBLIC}/", 1), "web reaches a", 20) == WEB
    assert get(lab.ns("a"), f"http://{WEB}/") == PUBLIC
    admin(lab, "node", "public-ip", "remove", "znet/a", "--ip", PUBLIC)
