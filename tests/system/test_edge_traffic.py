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
import sys
import time
from collections.abc import Iterator

import pytest

from onm.lab.plan import Role
from onm.model.edge_pool import HashField
from onm.selection import maglev
from onm.selection.flow import Flow, flow_hash
from support.netns_tools import in_netns
from support.overlay_lab import Lab, agent_ready, eventually, running_lab
from support.servers import EXTERNAL, Background

WEB = "30.0.2.2"
GATEWAYS = {"30.0.100.1": "gw1", "30.0.100.2": "gw2", "30.0.100.3": "gw3"}
TOPOLOGY = """
substrate: {mtu: 1520}
externals:
  - name: internet
    cidr: 30.0.0.0/16
    servers: [{name: web, ip: 30.0.2.2}]
hosts:
  - {name: h1, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: h2, location: {locale: 1, area: 1, rack: 2, node: 1}}
  - {name: gw1, role: edge, external: internet, location: {locale: 1, area: 1, rack: 9, node: 1}}
  - {name: gw2, role: edge, external: internet, location: {locale: 1, area: 1, rack: 9, node: 2}}
  - {name: gw3, role: edge, external: internet, location: {locale: 1, area: 1, rack: 9, node: 3}}
tenants: [{name: t}]
networks:
  - {name: znet, tenant: t, cidr: 10.0.0.0/24}
nodes:
  - {name: a, network: znet, host: h1, ip: 10.0.0.2}
  - {name: c, network: znet, host: h1, ip: 10.0.0.4}
  - {name: b, network: znet, host: h2, ip: 10.0.0.3}
edge_pools:
  - name: egress
    network: znet
    nat: snat
    hash: [src, dst, proto, sport, dport]
    probe_interval: 0.2
    gateways:
      - {name: e1, host: gw1, external_ip: 30.0.100.1}
      - {name: e2, host: gw2, external_ip: 30.0.100.2}
      - {name: e3, host: gw3, external_ip: 30.0.100.3}
routes:
  - {network: znet, prefix: 0.0.0.0/0, edge_pool: egress}
"""
PORTS = {"h1": 2, "h2": 1, "gw1": 0, "gw2": 0, "gw3": 0}
FIELDS = frozenset(HashField)

CONNECTIONS = r"""
import socket, sys, threading
# N connections at once from consecutive source ports: what the server saw for each
target, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = {}
def one(port):
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.settimeout(5)
            s.connect((target, 80))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            seen[port] = data.split(b"\r\n\r\n", 1)[1].decode()
    except OSError as error:
        seen[port] = f"failed:{error}"
threads = [threading.Thread(target=one, args=(first + i,)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join()
for port in sorted(seen): print(port, seen[port])
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory, f"eg{os.getpid()}", TOPOLOGY, PORTS, 30) as built:
        background = Background()
        server = built.record().namespace_of(Role.SERVER, "web")
        assert server is not None
        started = background.start(server, sys.executable, "-c", EXTERNAL, stdout=subprocess.PIPE)
        try:
            assert started.stdout is not None and started.stdout.readline().strip() == "ready"
            yield built
        finally:
            background.stop_all()


def gateway_table(lab: Lab) -> tuple[list[str], dict[str, str]]:
    """The pool's Maglev table as every agent builds it, and gateway id -> its SNAT address."""
    with lab.client() as client:
        pool = client.get_edge_pool("znet/egress")
    ids = sorted(g.id for g in pool.gateways)
    return list(maglev.build(ids)), {g.id: g.external_ip for g in pool.gateways}


def computed(lab: Lab, flow: Flow) -> str:
    """The SNAT address of the gateway `flow` hashes to (all gateways alive)."""
    table, addresses = gateway_table(lab)
    chosen = maglev.lookup(table, flow_hash(flow, FIELDS))
    assert chosen is not None
    return addresses[chosen]


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def fetch(lab: Lab, node: str, path: str = "/", *curl: str, timeout: float = 5) -> str:
    done = subprocess.run(
        in_netns(lab.ns(node), "curl", "-s", "-m", str(timeout), *curl, f"http://{WEB}{path}"),
        capture_output=True,
        text=True,
        timeout=timeout + 5,
    )
    return done.stdout.strip()


def all_agents_ready(lab: Lab) -> None:
    for host, count in PORTS.items():
        eventually(lambda h=host, n=count: agent_ready(lab, h, n), f"agent {host} ready", 30)


def test_nodes_reach_the_server_through_a_gateway_address(lab: Lab) -> None:
    for node in ("a", "b", "c"):
        seen = eventually(lambda n=node: fetch(lab, n) or None, f"{node} reaches web", 15)
        assert seen in GATEWAYS, f"{node}: the server saw {seen!r}\n{lab.logs()}"
    ping = lab.exec_in("a", "ping", "-c", "2", "-W", "2", WEB)
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_concurrent_flows_take_the_gateway_every_agent_computes(lab: Lab) -> None:
    first, count = 42000, 60
    done = subprocess.run(
        in_netns(lab.ns("a"), sys.executable, "-c", CONNECTIONS, WEB, str(first), str(count)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    seen = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert len(seen) == count, done.stdout + done.stderr
    wrong = {
        port: (address, computed(lab, Flow(ip4("10.0.0.2"), ip4(WEB), 6, int(port), 80)))
        for port, address in seen.items()
        if address != computed(lab, Flow(ip4("10.0.0.2"), ip4(WEB), 6, int(port), 80))
    }
    assert not wrong, f"port: (seen, computed) {wrong}"
    assert set(seen.values()) == set(GATEWAYS)  # 60 flows of one pair spread over all three


def test_a_killed_gateway_moves_only_its_flows(lab: Lab) -> None:
    all_agents_ready(lab)
    a, web = ip4("10.0.0.2"), ip4(WEB)
    victim_address = computed(lab, Flow(a, web, 1))  # a's pings: ICMP has no ports
    victim = GATEWAYS[victim_address]
    port = next(
        p for p in range(43000, 44000) if computed(lab, Flow(a, web, 6, p, 80)) != victim_address
    )
    size = 3_000_000
    download = subprocess.Popen(
        in_netns(
            lab.ns("a"),
            *("curl", "-s", "-m", "30", "--local-port", str(port), "-o", "/dev/null"),
            *("-w", "%{size_download} %{remote_ip}", f"http://{WEB}/big?n={size}&t=5"),
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    pings = subprocess.Popen(
        in_netns(lab.ns("a"), "ping", "-n", "-i", "0.1", "-c", "70", "-W", "1", WEB),
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    os.kill(lab.process("agent", victim).pid, signal.SIGKILL)
    out, _ = download.communicate(timeout=40)
    assert download.returncode == 0 and out.split()[0] == str(size), (out, lab.logs())
    ping_out, _ = pings.communicate(timeout=30)
    replies = [int(m) for m in re.findall(r"icmp_seq=(\d+)", ping_out)]
    assert replies and max(replies) >= 65, ping_out  # the pings go on through a survivor
    lost = 70 - len(replies)
    assert lost <= 20, f"{lost} pings lost (recovery should take well under 2 s)\n{ping_out}"
    all_agents_ready(lab)  # the lab's supervisor starts the killed agent again
