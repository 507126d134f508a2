"""onm.agent.tables: a host's snapshot compiled into the tables its datapaths look up.

Issue #7 defect 8: a host held at most 63 nodes. Here one host runs 200, half of them in a
second tenant's network with the very same IPv4 addresses: the tables keep every one apart by
(network id, IPv4), and traffic from the substrate reaches the right one of two nodes that share
an IP on one host.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator

import pytest
from scapy.all import ARP, ICMP, IP, Ether, raw

from onm.agent.actions import Resolve, ToNode, ToSubstrate
from onm.agent.core import AgentCore
from onm.agent.tables import Tables, compile_tables
from onm.manager import hosts, networks, nodes, reads, resolution, tenants
from onm.manager.store import Store
from onm.model import Node, Principal, PrincipalKind
from onm.model.principal import ADMIN
from onm.packet.ethernet import parse_mac

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
MTU = 1520
PER_NETWORK = 100


def ip_of(i: int) -> str:
    return f"10.0.{i // 200}.{i % 200 + 10}"


@pytest.fixture
def store() -> Iterator[Store]:
    """Host r: z1..z100 in znet and y1..y100 in ynet on the same IPs; host s: peer g in znet."""
    store = Store("sqlite://")
    store.migrate()
    with store.write(ADMIN, NOW) as tx:
        tenants.create(tx, "z")
        tenants.create(tx, "y")
        hosts.create(tx, "r", "fd00:0:101:101::/64")
        hosts.create(tx, "s", "fd00:0:101:201::/64")
        networks.create(tx, "z", "znet", ["10.0.0.0/16"])
        networks.create(tx, "y", "ynet", ["10.0.0.0/16"])
        for i in range(PER_NETWORK):
            nodes.create(tx, f"z{i + 1}", "z/znet", "r", ip_of(i))
            nodes.create(tx, f"y{i + 1}", "y/ynet", "r", ip_of(i))
        nodes.create(tx, "g", "z/znet", "s", "10.0.255.2")
    try:
        yield store
    finally:
        store.dispose()


def node(store: Store, name: str, network: str) -> Node:
    with store.read(ADMIN, NOW) as tx:
        return nodes.get(tx, name, network)


def tables_of(store: Store, host: str) -> Tables:
    with store.read(ADMIN, NOW) as tx:
        return compile_tables(reads.snapshot(tx, host), MTU)


def core_of(store: Store, host: str) -> AgentCore:
    core = AgentCore(MTU)
    with store.read(ADMIN, NOW) as tx:
        core.apply_snapshot(reads.snapshot(tx, host), NOW)
    return core


def test_two_hundred_nodes_on_one_host_compile_apart(store: Store) -> None:
    tables = tables_of(store, "r")
    assert len(tables.ports) == len(tables.by_node) == 2 * PER_NETWORK
    assert len(tables.by_substrate) == 2 * PER_NETWORK
    prefix = ipaddress.IPv6Network("fd00:0:101:101::/64")
    assert all(ipaddress.IPv6Address(a) in prefix for a in tables.by_substrate)
    keys = {(p.network.vni, p.ip) for p in tables.ports.values()}
    assert len(keys) == 2 * PER_NETWORK  # unique per (network id, IPv4), not per IPv4
    assert len({p.ip for p in tables.ports.values()}) == PER_NETWORK
    for port in tables.ports.values():
        assert tables.by_substrate[port.substrate] is port
        assert tables.residents[port.network.vni, port.ip].substrate == port.substrate


def resolve(store: Store, core: AgentCore, host: str, requester: Node, target: str) -> bytes:
    """ARP from `requester` for `target`, answered by the manager; the MAC the node learns."""
    arp = raw(
        Ether(src=requester.mac, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=requester.mac, psrc=str(requester.ip), pdst=target)
    )
    [ask] = core.node_frame(requester.interface, arp, NOW)
    assert isinstance(ask, Resolve)
    with store.read(ADMIN, NOW) as tx:
        host_id = hosts.get(tx, host).id
    principal = Principal(PrincipalKind.HOST, host_id=host_id, name=f"host:{host}")
    with store.write(principal, NOW) as tx:
        answer = resolution.resolve(tx, ask.network_id, ask.requester_id, target)
    [reply] = core.resolved(ask, answer, NOW)
    assert isinstance(reply, ToNode)
    return parse_mac(Ether(reply.frame).src)


def test_the_last_of_two_hundred_talks_and_its_ip_twin_gets_nothing(store: Store) -> None:
    r, s = core_of(store, "r"), core_of(store, "s")
    last = node(store, f"z{PER_NETWORK}", "z/znet")  # the 200th node made on r
    twin = node(store, f"y{PER_NETWORK}", "y/ynet")  # same IP, same host, other tenant
    g = node(store, "g", "z/znet")
    assert last.ip == twin.ip
    g_mac = resolve(store, r, "r", last, "10.0.255.2")
    ping = Ether(src=last.mac, dst=g_mac.hex(":")) / IP(src=str(last.ip), dst=str(g.ip)) / ICMP()
    [out] = r.node_frame(last.interface, raw(ping), NOW)
    assert isinstance(out, ToSubstrate)
    [delivered] = s.substrate_packet(out.packet, NOW)
    assert isinstance(delivered, ToNode) and delivered.interface == g.interface

    last_mac = resolve(store, s, "s", g, str(last.ip))
    assert last_mac == parse_mac(last.mac)
    echo = Ether(src=g.mac, dst=last.mac) / IP(src=str(g.ip), dst=str(last.ip)) / ICMP(type=0)
    [back] = s.node_frame(g.interface, raw(echo), NOW)
    assert isinstance(back, ToSubstrate)
    [home] = r.substrate_packet(back.packet, NOW)
    assert isinstance(home, ToNode)
    assert home.interface == last.interface != twin.interface
    assert Ether(home.frame)[ICMP].type == 0
