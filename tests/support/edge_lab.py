"""What the edge system tests share (issue #10; seed 1 FIG. 2C): the external web server of a
lab, flows from a node to it (many at once, or one long download), and the gateway every
sending agent computes for a flow from its pool's Maglev table, computed here the same way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from onm.lab.plan import Role
from onm.model.edge_pool import HashField
from onm.selection import maglev
from onm.selection.flow import Flow, flow_hash
from support.netns_tools import in_netns
from support.overlay_lab import Lab, agent_ready, eventually
from support.servers import EXTERNAL, Background

WEB = "30.0.2.2"
Popen = subprocess.Popen[str]

CONNECTIONS = r"""
import socket, sys, threading
# One connection from each source port at once: what the server saw for each
target, path, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
seen = {}
def one(port):
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.settimeout(10)
            s.connect((target, 80))
            s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            seen[port] = data.split(b"\r\n\r\n", 1)[1].decode()
    except (OSError, IndexError) as error:
        seen[port] = f"failed:{error!r}".replace(" ", "_")
threads = [threading.Thread(target=one, args=(p,)) for p in ports]
for t in threads: t.start()
for t in threads: t.join()
for port in sorted(seen): print(port, seen[port])
"""
"""Run in a node: `CONNECTIONS TARGET PATH PORT...`; prints `PORT BODY` for each (the body of
`/` is the address the server saw: the flow's SNAT address)."""


@contextlib.contextmanager
def external_server(lab: Lab, name: str = "web") -> Iterator[None]:
    """`support.servers.EXTERNAL` running on the lab's server `name` for the block."""
    background = Background()
    server = lab.record().namespace_of(Role.SERVER, name)
    assert server is not None
    started = background.start(server, sys.executable, "-c", EXTERNAL, stdout=subprocess.PIPE)
    try:
        assert started.stdout is not None and started.stdout.readline().strip() == "ready"
        yield
    finally:
        background.stop_all()


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


def all_agents_ready(lab: Lab, ports: dict[str, int], within: float = 30) -> None:
    for host, count in ports.items():
        eventually(lambda h=host, n=count: agent_ready(lab, h, n), f"agent {host} ready", within)
