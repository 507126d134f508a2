"""What the edge system tests share (issue #10; seed 1 FIG. 2C): their lab (`EdgeTopology`:
node hosts, edge hosts on the external network `internet` with its web server, edge pools, a
default route to each) brought up with the external server running (`edge_lab`), flows from a
node to that server (many at once, or one long download), and the gateway every sending agent
computes for a flow from its pool's Maglev table, computed here the same way.

Lab names are `TAG<pid>`, after the `ONM_TEST_LAB_PREFIX` environment variable when it is set
(so that engineers sharing a machine can each keep to their own prefix), with `b` after the tag
when the lab's agents run the eBPF datapath (`support.datapaths`: each module's lab fixture takes
the `datapath` fixture, so its tests run on both, each datapath's lab named apart).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest
import yaml

from onm.lab.plan import Role
from onm.model.edge_pool import HashField
from onm.selection import maglev
from onm.selection.flow import Flow, flow_hash
from support import datapaths
from support.netns_tools import in_netns
from support.overlay_lab import Lab, agent_ready, eventually, onm, running_lab
from support.servers import CONNECTIONS, EXTERNAL, Background

WEB = "30.0.2.2"
FIVE_TUPLE = ("src", "dst", "proto", "sport", "dport")
Popen = subprocess.Popen[str]


# --- the lab -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    name: str
    host: str
    """A node host, `h1`, `h2`, ..."""
    ip: str
    network: str = "znet"


@dataclass(frozen=True)
class Network:
    name: str = "znet"
    tenant: str = "t"
    cidr: str = "10.0.0.0/24"


@dataclass(frozen=True)
class Pool:
    """An edge pool with `gateways` gateways: `LETTER1` on gw1 at `SUBNET.1`, `LETTER2` on gw2
    at `SUBNET.2`, ...; its network routes 0.0.0.0/0 to it. A setting that is None is left
    out of the file (the manager's default)."""

    gateways: int = 2
    name: str = "egress"
    network: str = "znet"
    nat: str | None = "snat"
    mode: str | None = None
    choice: str | None = None
    hash: tuple[str, ...] | None = FIVE_TUPLE
    split_above: int | None = None
    probe_interval: float | None = 0.2
    letter: str = "e"
    subnet: str = "30.0.100"

    def addresses(self) -> dict[str, str]:
        """Gateway name -> its external (SNAT) address."""
        return {f"{self.letter}{i}": f"{self.subnet}.{i}" for i in range(1, self.gateways + 1)}

    def entry(self) -> dict[str, object]:
        settings = {
            "nat": self.nat,
            "mode": self.mode,
            "choice": self.choice,
            "hash": list(self.hash) if self.hash is not None else None,
            "split_above": self.split_above,
            "probe_interval": self.probe_interval,
        }
        gateways = [
            {"name": name, "host": f"gw{i}", "external_ip": address}
            for i, (name, address) in enumerate(self.addresses().items(), start=1)
        ]
        return {
            "name": self.name,
            "network": self.network,
            **{key: value for key, value in settings.items() if value is not None},
            "gateways": gateways,
        }


@dataclass(frozen=True)
class EdgeTopology:
    """An edge lab's topology: `node_hosts` node hosts h1.. (rack 1..), `edge_hosts` edge hosts
    gw1.. (rack 9) on `internet` 30.0.0.0/16, where server web is `WEB`; its networks, nodes
    and pools."""

    pools: tuple[Pool, ...] = (Pool(),)
    edge_hosts: int = 2
    node_hosts: int = 1
    nodes: tuple[Node, ...] = (Node("a", "h1", "10.0.0.2"),)
    networks: tuple[Network, ...] = (Network(),)
    mtu: int | None = 1520
    """The substrate's MTU (None: the lab's default)."""
    tenants: tuple[str, ...] = field(default=())
    """Tenant names in the file's order (default: those of the networks)."""

    def yaml(self) -> str:
        """The topology file `onm lab up` reads."""
        tenants = self.tenants or tuple(dict.fromkeys(n.tenant for n in self.networks))
        location = {"locale": 1, "area": 1}
        top: dict[str, object] = {}
        if self.mtu is not None:
            top["substrate"] = {"mtu": self.mtu}
        top["externals"] = [
            {"name": "internet", "cidr": "30.0.0.0/16", "servers": [{"name": "web", "ip": WEB}]}
        ]
        top["hosts"] = [
            {"name": f"h{i}", "location": {**location, "rack": i, "node": 1}}
            for i in range(1, self.node_hosts + 1)
        ] + [
            {
                "name": f"gw{i}",
                "role": "edge",
                "external": "internet",
                "location": {**location, "rack": 9, "node": i},
            }
            for i in range(1, self.edge_hosts + 1)
        ]
        top["tenants"] = [{"name": name} for name in tenants]
        top["networks"] = [
            {"name": n.name, "tenant": n.tenant, "cidr": n.cidr} for n in self.networks
        ]
        top["nodes"] = [
            {"name": n.name, "network": n.network, "host": n.host, "ip": n.ip} for n in self.nodes
        ]
        top["edge_pools"] = [pool.entry() for pool in self.pools]
        top["routes"] = [
            {"network": pool.network, "prefix": "0.0.0.0/0", "edge_pool": pool.name}
            for pool in self.pools
        ]
        return yaml.safe_dump(top, sort_keys=False)

    def ports(self) -> dict[str, int]:
        """Host -> the ports its agent serves when ready (one a node; edge hosts none)."""
        hosts = [f"h{i}" for i in range(1, self.node_hosts + 1)]
        counts = {host: sum(n.host == host for n in self.nodes) for host in hosts}
        return counts | {f"gw{i}": 0 for i in range(1, self.edge_hosts + 1)}


def lab_name(tag: str) -> str:
    """`TAG<pid>` (`TAGb<pid>` on ebpf), after `ONM_TEST_LAB_PREFIX` (see the module's
    docstring)."""
    kind = "b" if datapaths.chosen() == "ebpf" else ""
    return f"{os.environ.get('ONM_TEST_LAB_PREFIX', '')}{tag}{kind}{os.getpid()}"


@contextlib.contextmanager
def edge_lab(
    tmp_path_factory: pytest.TempPathFactory,
    tag: str,
    topology: EdgeTopology,
    servers_in: Iterable[str] = (),
    ready_within: float = 30,
) -> Iterator[Lab]:
    """Lab `lab_name(tag)` up from `topology`, every agent ready, `EXTERNAL` running on web
    (and in the nodes `servers_in`) for the block; taken down however it ends."""
    with (
        running_lab(
            tmp_path_factory, lab_name(tag), topology.yaml(), topology.ports(), ready_within
        ) as built,
        external_server(built, servers_in),
    ):
        yield built


@contextlib.contextmanager
def external_server(lab: Lab, nodes: Iterable[str] = ()) -> Iterator[None]:
    """`support.servers.EXTERNAL` running on the lab's server web, and in each of `nodes`, for
    the block."""
    background = Background()
    web = lab.record().namespace_of(Role.SERVER, "web")
    assert web is not None
    try:
        for namespace in (web, *(lab.ns(node) for node in nodes)):
            started = background.start(
                namespace, sys.executable, "-c", EXTERNAL, stdout=subprocess.PIPE
            )
            assert started.stdout is not None and started.stdout.readline().strip() == "ready"
        yield
    finally:
        background.stop_all()


def get(namespace: str, url: str, timeout: float = 3) -> str | None:
    """curl's body, or None when the connection failed or timed out."""
    done = subprocess.run(
        in_netns(namespace, "curl", "-s", "-m", str(timeout), url),
        capture_output=True,
        text=True,
        timeout=timeout + 5,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def admin(lab: Lab, *args: str) -> str:
    """`onm ARGS` against the lab's manager with its admin token, as an operator types it;
    what it printed."""
    record = lab.record()
    return onm(*args, "--url", record.manager_url, "--token", f"@{record.admin_token_file}").stdout


# --- flows -------------------------------------------------------------------------------------
def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def tcp(source: str, port: int, target: str = WEB, dport: int = 80) -> Flow:
    return Flow(ip4(source), ip4(target), 6, port, dport)


@dataclass(frozen=True)
class PoolTable:
    """An edge pool as its senders see it: the Maglev table over its active gateways (in id
    order, as agents build it), and each gateway's SNAT address, name and host."""

    table: tuple[str, ...]
    fields: frozenset[HashField]
    address: dict[str, str]
    name: dict[str, str]
    host: dict[str, str]

    @classmethod
    def of(cls, lab: Lab, pool_ref: str, without: Iterable[str] = ()) -> PoolTable:
        """As the manager holds the pool now; `without`: gateway names taken as dead."""
        with lab.client() as client:
            pool = client.get_edge_pool(pool_ref)
            hosts = {h.id: h.name for h in client.list_hosts()}
        gone = set(without)
        active = sorted(g.id for g in pool.gateways if g.state == "active" and g.name not in gone)
        return cls(
            tuple(maglev.build(active)),
            frozenset(HashField(f) for f in pool.hash_fields),
            {g.id: g.external_ip for g in pool.gateways},
            {g.id: g.name for g in pool.gateways},
            {g.id: hosts[g.host_id] for g in pool.gateways},
        )

    def gateway(self, flow: Flow) -> str:
        """The id of the gateway a new `flow` takes."""
        chosen = maglev.lookup(list(self.table), flow_hash(flow, self.fields))
        assert chosen is not None, "the pool has no active gateway"
        return chosen

    def seen_as(self, flow: Flow) -> str:
        """The address the external server sees a new `flow` from."""
        return self.address[self.gateway(flow)]

    def by_name(self, name: str) -> str:
        return next(i for i, n in self.name.items() if n == name)


def start_connections(lab: Lab, node: str, ports: Iterable[int], path: str = "/") -> Popen:
    """`CONNECTIONS` in `node`, started (read it with `connections_seen`)."""
    command = [sys.executable, "-c", CONNECTIONS, WEB, path, *map(str, ports)]
    return subprocess.Popen(
        in_netns(lab.ns(node), *command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def connections_seen(started: Popen, timeout: float = 60) -> dict[int, str]:
    out, err = started.communicate(timeout=timeout)
    seen = {int(port): body for port, body in (line.split(" ", 1) for line in out.splitlines())}
    assert seen, out + err
    return seen


def connections(lab: Lab, node: str, ports: Iterable[int], path: str = "/") -> dict[int, str]:
    """Source port -> what the server saw, one connection from each port at once."""
    return connections_seen(start_connections(lab, node, ports, path))


def fetch(lab: Lab, node: str, path: str = "/", *curl: str, timeout: float = 5) -> str:
    done = subprocess.run(
        in_netns(lab.ns(node), "curl", "-s", "-m", str(timeout), *curl, f"http://{WEB}{path}"),
        capture_output=True,
        text=True,
        timeout=timeout + 5,
    )
    return done.stdout.strip()


def start_download(lab: Lab, node: str, port: int, size: int, seconds: float) -> Popen:
    """A long download from source port `port`; `download_result` reads it."""
    return subprocess.Popen(
        in_netns(
            lab.ns(node),
            *("curl", "-s", "-m", str(seconds + 25), "--local-port", str(port), "-o", "/dev/null"),
            *("-w", "%{size_download} %header{x-peer}", f"http://{WEB}/big?n={size}&t={seconds}"),
        ),
        stdout=subprocess.PIPE,
        text=True,
    )


def download_result(started: Popen, timeout: float = 40) -> tuple[int, str]:
    """(bytes received, the address the server saw it from)."""
    out, _ = started.communicate(timeout=timeout)
    words = out.split()
    assert started.returncode == 0 and len(words) == 2, (started.returncode, out)
    return int(words[0]), words[1]


def core_packets(lab: Lab, host: str, direction: str) -> float:
    """The packets `host`'s core counted one way (`to_substrate`, `from_substrate`, ...)."""
    return lab.metrics(host)[f'onm_agent_packets_total{{direction="{direction}"}}']


def all_agents_ready(lab: Lab, ports: dict[str, int], within: float = 30) -> None:
    for host, count in ports.items():
        eventually(lambda h=host, n=count: agent_ready(lab, h, n), f"agent {host} ready", within)
