"""The in-memory world the agent core's tests run in: two agents and a manager, no sockets.

Tenant z, network znet 10.0.0.0/24 (SIIT) with a (10.0.0.2) and b (10.0.0.4) on host r and g
(10.0.0.3) on host s; network zenc 10.1.0.0/24 (encapsulation) with e1 on r and e2 on s;
tenant y, network ynet on the same CIDR as znet with y1 on s at a's IP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

import pytest
from scapy.all import ARP, ICMP, IP, Ether, Raw, raw

from onm.agent.actions import Action, Resolve, ToNode
from onm.agent.core import AgentCore
from onm.manager import hosts, networks, nodes, reads, resolution, tenants
from onm.manager.store import Store
from onm.model import Node, Principal, PrincipalKind, Resolution
from onm.model.principal import ADMIN

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
MTU = 1520


@dataclass
class Lab:
    store: Store
    nodes: dict[str, Node]
    host_ids: dict[str, str]
    r: AgentCore
    s: AgentCore
    ttl: dt.timedelta = resolution.RESOLUTION_TTL
    """How long the manager's answers live (its `--resolution-ttl`)."""

    def core(self, host: str) -> AgentCore:
        return self.r if host == "r" else self.s

    def snapshot(self, host: str, now: dt.datetime = NOW) -> list[Action]:
        with self.store.read(ADMIN, now) as tx:
            snap = reads.snapshot(tx, host)
        return self.core(host).apply_snapshot(snap, now)

    def answer(self, host: str, request: Resolve, now: dt.datetime = NOW) -> Resolution | None:
        principal = Principal(PrincipalKind.HOST, host_id=self.host_ids[host], name=f"host:{host}")
        try:
            with self.store.write(principal, now) as tx:
                return resolution.resolve(
                    tx,
                    request.network_id,
                    request.requester_id,
                    str(ipaddress.IPv4Address(request.ip)),
                    self.ttl,
                )
        except Exception:
            return None


@pytest.fixture
def lab() -> Lab:
    store = Store("sqlite://")
    store.migrate()
    made: dict[str, Node] = {}
    with store.write(ADMIN, NOW) as tx:
        tenants.create(tx, "z")
        tenants.create(tx, "y")
        r, _ = hosts.create(tx, "r", "fd00:0:101:101::/64")
        s, _ = hosts.create(tx, "s", "fd00:0:101:201::/64")
        networks.create(tx, "z", "znet", ["10.0.0.0/24"])
        networks.create(tx, "z", "zenc", ["10.1.0.0/24"], "encap")
        networks.create(tx, "y", "ynet", ["10.0.0.0/24"])
        for name, net, host, ip in (
            ("a", "z/znet", "r", "10.0.0.2"),
            ("b", "z/znet", "r", "10.0.0.4"),
            ("g", "z/znet", "s", "10.0.0.3"),
            ("e1", "z/zenc", "r", "10.1.0.2"),
            ("e2", "z/zenc", "s", "10.1.0.3"),
            ("y1", "y/ynet", "s", "10.0.0.2"),
        ):
            made[name] = nodes.create(tx, name, net, host, ip)
    result = Lab(store, made, {"r": r.id, "s": s.id}, AgentCore(MTU), AgentCore(MTU))
    result.snapshot("r")
    result.snapshot("s")
    return result


def mac(lab: Lab, name: str) -> str:
    return lab.nodes[name].mac


def arp_request(lab: Lab, name: str, target: str, sender_ip: str | None = None) -> bytes:
    node = lab.nodes[name]
    return raw(
        Ether(src=node.mac, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=node.mac, psrc=sender_ip or str(node.ip), pdst=target)
    )


def resolve_via_arp(lab: Lab, host: str, name: str, target: str) -> str:
    """ARP as the node would, let the manager answer, and return the MAC the node learns."""
    core = lab.core(host)
    node = lab.nodes[name]
    actions = core.node_frame(node.interface, arp_request(lab, name, target), NOW)
    if actions and isinstance(actions[0], Resolve):
        answer = lab.answer(host, actions[0])
        actions = core.resolved(actions[0], answer, NOW)
    [reply] = actions
    assert isinstance(reply, ToNode) and reply.interface == node.interface
    frame = Ether(reply.frame)
    assert frame[ARP].op == 2 and frame[ARP].psrc == target and frame[ARP].pdst == str(node.ip)
    assert frame.dst == node.mac and frame[ARP].hwdst == node.mac
    return str(frame[ARP].hwsrc)


def ping_frame(lab: Lab, src: str, dst_mac: str, dst_ip: str, **ip: object) -> bytes:
    node = lab.nodes[src]
    return raw(
        Ether(src=node.mac, dst=dst_mac)
        / IP(src=str(node.ip), dst=dst_ip, **ip)
        / ICMP(id=7, seq=1)
        / Raw(b"onm-ping")
    )


def only(actions: list[Action], kind: type) -> list:  # type: ignore[type-arg]
    assert all(isinstance(a, kind) for a in actions), actions
    return actions
