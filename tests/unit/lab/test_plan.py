"""Tests for onm.lab.plan: the plan of the issue's two-host lab, as data, with no I/O.

The manager's allocations are made up here (MACs, interface names) except the host /64s, which
come from the address layout as the manager derives them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

from onm.lab.plan import (
    BRIDGE,
    EXTERNAL_IF,
    EXTERNAL_MTU,
    MULTIPATH_HASH_POLICY,
    NODE_IF,
    SUBSTRATE_IF,
    Allocations,
    AnycastAllocation,
    DelayBand,
    Delays,
    End,
    MultipathRoute,
    NodeAllocation,
    Plan,
    Role,
    Route,
    build,
    namespace_name,
    transit_address,
)
from onm.lab.topology import Topology, load, loads

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
IFNAMSIZ = 16
"""Linux interface names are at most IFNAMSIZ - 1 = 15 bytes."""


def allocations(topology: Topology) -> Allocations:
    nodes = {}
    for i, node in enumerate(topology.nodes):
        gateway = topology.network(node.network).gateway_for(node.ip)
        assert gateway is not None
        nodes[node.name] = NodeAllocation(f"02:00:00:00:00:{i + 1:02x}", f"onm{i:010x}", gateway)
    prefixes = {h.name: h.prefix.network for h in topology.hosts}
    return Allocations(prefixes, nodes)


def plan_of(example: str, lab: str = "t1") -> tuple[Topology, Plan]:
    topology = load(EXAMPLES / example)
    return topology, build(topology, lab, allocations(topology))


def ends(plan: Plan) -> dict[tuple[str, str], End]:
    return {(e.namespace, e.name): e for v in plan.veths for e in (v.a, v.b)}


def test_namespaces() -> None:
    _, plan = plan_of("two-hosts.yaml")
    assert [(n.name, n.role, n.owner) for n in plan.namespaces] == [
        ("onm-t1-sub", Role.SUBSTRATE, ""),
        ("onm-t1-h-r", Role.HOST, "r"),
        ("onm-t1-h-s", Role.HOST, "s"),
        ("onm-t1-n-a", Role.NODE, "a"),
        ("onm-t1-n-g", Role.NODE, "g"),
    ]
    assert namespace_name("x", Role.NODE, "a") == "onm-x-n-a"


def test_sysctls_keep_hosts_from_routing_and_nodes_ipv4_only() -> None:
    _, plan = plan_of("two-hosts.yaml")
    by_role = {n.role: dict(n.sysctls) for n in plan.namespaces}
    host = by_role[Role.HOST]
    for scope in ("all", "default"):
        assert host[f"net.ipv6.conf.{scope}.forwarding"] == 0
        assert host[f"net.ipv6.conf.{scope}.accept_ra"] == 0
        assert host[f"net.ipv6.conf.{scope}.accept_dad"] == 0
        assert by_role[Role.NODE][f"net.ipv6.conf.{scope}.disable_ipv6"] == 1
        assert by_role[Role.SUBSTRATE][f"net.ipv6.conf.{scope}.disable_ipv6"] == 1


def test_substrate_bridge_and_host_links() -> None:
    _, plan = plan_of("two-hosts.yaml")
    assert [(b.namespace, b.name, b.mtu) for b in plan.bridges] == [("onm-t1-sub", BRIDGE, 1520)]
    found = ends(plan)
    for k, host in enumerate("rs", start=1):
        sub0 = found[f"onm-t1-h-{host}", SUBSTRATE_IF]
        port = found["onm-t1-sub", f"h{k}"]
        assert (sub0.mtu, sub0.mac, sub0.master) == (1520, None, None)
        assert (port.mtu, port.master) == (1520, BRIDGE)
        pair = next(v for v in plan.veths if sub0 in (v.a, v.b))
        assert port in (pair.a, pair.b)


def test_transit_addresses_and_routes_between_hosts() -> None:
    topology, plan = plan_of("two-hosts.yaml")
    addresses = {(a.namespace, a.device): str(a.address) for a in plan.addresses}
    assert addresses["onm-t1-h-r", SUBSTRATE_IF] == "fd00:ffff::1/64"
    assert addresses["onm-t1-h-s", SUBSTRATE_IF] == "fd00:ffff::2/64"
    assert transit_address(0) == ipaddress.IPv6Interface("fd00:ffff::1/64")
    host_routes = [
        (r.namespace, str(r.destination), str(r.via), r.device)
        for r in plan.routes
        if r.namespace.startswith("onm-t1-h-")
    ]
    assert host_routes == [
        ("onm-t1-h-r", "fd00:0:101:201::/64", "fd00:ffff::2", SUBSTRATE_IF),
        ("onm-t1-h-s", "fd00:0:101:101::/64", "fd00:ffff::1", SUBSTRATE_IF),
    ]
    # A host's own /64 is on none of its interfaces: its agent owns it.
    for host in topology.hosts:
        mine = str(host.prefix.network)
        ns = f"onm-t1-h-{host.name}"
        assert not any(
            a.namespace == ns and a.address in host.prefix.network
            for a in plan.addresses
            if a.address.version == 6
        ), mine


def test_nodes() -> None:
    topology, plan = plan_of("two-hosts.yaml")
    alloc = allocations(topology)
    found = ends(plan)
    addresses = {(a.namespace, a.device): str(a.address) for a in plan.addresses}
    routes = {(r.namespace, str(r.destination)): (str(r.via), r.device) for r in plan.routes}
    for node, ip, host in (("a", "10.0.0.2", "r"), ("g", "10.0.0.3", "s")):
        ns = f"onm-t1-n-{node}"
        eth0 = found[ns, NODE_IF]
        assert (eth0.mtu, eth0.mac, eth0.master) == (1500, alloc.nodes[node].mac, None)
        outside = found[f"onm-t1-h-{host}", alloc.nodes[node].interface]
        assert (outside.mtu, outside.mac, outside.master) == (1520, None, None)
        pair = next(v for v in plan.veths if eth0 in (v.a, v.b))
        assert outside in (pair.a, pair.b)
        assert addresses[ns, NODE_IF] == f"{ip}/24"
        assert routes[ns, "0.0.0.0/0"] == ("10.0.0.1", NODE_IF)
        # The host side carries no address.
        assert (f"onm-t1-h-{host}", alloc.nodes[node].interface) not in addresses


def test_encapsulation_leaves_nodes_40_bytes_less() -> None:
    _, plan = plan_of("two-tenants.yaml")
    found = ends(plan)
    assert found["onm-t1-n-za", NODE_IF].mtu == 1500  # siit: 1520 - 20
    assert found["onm-t1-n-ya", NODE_IF].mtu == 1480  # encap: 1520 - 40


def test_interface_names_fit_and_do_not_clash() -> None:
    for example in ("two-hosts.yaml", "two-tenants.yaml", "fig2a.yaml", "edge.yaml"):
        _, plan = plan_of(example, lab="a-rather-long-lab-name-of-forty-chars-xx")
        names = [(e.namespace, e.name) for v in plan.veths for e in (v.a, v.b)]
        names += [(b.namespace, b.name) for b in plan.bridges]
        assert all(0 < len(name.encode()) < IFNAMSIZ for _, name in names), names
        assert len(set(names)) == len(names)
        assert len({n.name for n in plan.namespaces}) == len(plan.namespaces)


def test_multi_cidr_network_uses_the_nodes_cidr() -> None:
    topology, plan = plan_of("fig2a.yaml")
    addresses = {(a.namespace, a.device): str(a.address) for a in plan.addresses}
    assert addresses["onm-t1-n-b", NODE_IF] == "10.0.5.1/16"
    routes = {(r.namespace, str(r.destination)): str(r.via) for r in plan.routes}
    assert routes["onm-t1-n-b", "0.0.0.0/0"] == "10.0.0.1"
    # Four hosts and FIG. 2C's three edge hosts: each routes to the six others.
    assert sum(1 for r in plan.routes if r.namespace == "onm-t1-h-r") == 6
    assert len(topology.hosts) == 7


LATENCY = """\
substrate: {latency: {between_locales: 20ms, between_racks: 0.5ms}}
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
  - {name: q, location: {locale: 1, area: 1, rack: 2, node: 2}}
  - {name: t, location: {locale: 2, area: 1, rack: 1, node: 1}}
  - {name: u, location: {locale: 1, area: 2, rack: 1, node: 1}}
"""


def test_delays_per_host_one_band_per_distinct_delay() -> None:
    topology = loads(LATENCY)
    plan = build(topology, "t1", allocations(topology))
    prefix = {h.name: h.prefix.network for h in topology.hosts}
    by_ns = {d.namespace: d for d in plan.delays}
    assert all(d.device == SUBSTRATE_IF for d in plan.delays)
    # r: s and q are in another rack (0.5 ms); t in another locale (20 ms); u in another area,
    # and between_areas is not given, so no delay toward u.
    assert by_ns["onm-t1-h-r"] == Delays(
        "onm-t1-h-r",
        SUBSTRATE_IF,
        (DelayBand(500, (prefix["s"], prefix["q"])), DelayBand(20_000, (prefix["t"],))),
    )
    # s and q share a rack: nothing between them.
    assert by_ns["onm-t1-h-q"].bands == (
        DelayBand(500, (prefix["r"],)),
        DelayBand(20_000, (prefix["t"],)),
    )
    # t is in another locale than everyone else.
    assert by_ns["onm-t1-h-t"].bands == (DelayBand(20_000, tuple(prefix[h] for h in "rsqu")),)
    assert by_ns["onm-t1-h-u"].bands == (DelayBand(20_000, (prefix["t"],)),)


def test_delays_are_symmetric_and_toward_the_routed_prefixes() -> None:
    topology = loads(LATENCY)
    plan = build(topology, "t1", allocations(topology))
    delayed = {
        (d.namespace, destination): band.delay_us
        for d in plan.delays
        for band in d.bands
        for destination in band.destinations
    }
    owner = {h.prefix.network: f"onm-t1-h-{h.name}" for h in topology.hosts}
    for (ns, destination), delay in delayed.items():
        mine = next(n for n, o in owner.items() if o == ns)
        assert delayed[owner[destination], mine] == delay  # both ways: a round trip is 2x
    routed = {(r.namespace, r.destination) for r in plan.routes}
    assert set(delayed) <= routed


def test_no_latency_no_delays() -> None:
    _, plan = plan_of("two-hosts.yaml")
    assert plan.delays == ()


# --- externals, servers, edge hosts (issue #10) ------------------------------------------------
def test_externals_and_servers_get_namespaces_after_the_rest() -> None:
    _, plan = plan_of("edge.yaml")
    assert [(n.name, n.role, n.owner) for n in plan.namespaces][-3:] == [
        ("onm-t1-x-internet", Role.EXTERNAL, "internet"),
        ("onm-t1-s-web", Role.SERVER, "web"),
        ("onm-t1-s-dl", Role.SERVER, "dl"),
    ]
    assert namespace_name("t1", Role.EXTERNAL, "internet") == "onm-t1-x-internet"
    assert namespace_name("t1", Role.SERVER, "web") == "onm-t1-s-web"
    by_name = {n.name: dict(n.sysctls) for n in plan.namespaces}
    for ns in ("onm-t1-x-internet", "onm-t1-s-web"):
        assert by_name[ns]["net.ipv6.conf.all.disable_ipv6"] == 1
        assert by_name[ns]["net.ipv6.conf.default.disable_ipv6"] == 1
    assert [(b.namespace, b.name, b.mtu) for b in plan.bridges] == [
        ("onm-t1-sub", BRIDGE, 1520),
        ("onm-t1-x-internet", BRIDGE, EXTERNAL_MTU),
    ]


def test_servers_hang_off_the_external_bridge_with_their_address() -> None:
    _, plan = plan_of("edge.yaml")
    found = ends(plan)
    addresses = {(a.namespace, a.device): str(a.address) for a in plan.addresses}
    for k, (server, ip) in enumerate((("web", "30.0.2.2"), ("dl", "30.0.2.3")), start=1):
        ns = f"onm-t1-s-{server}"
        eth0 = found[ns, NODE_IF]
        port = found["onm-t1-x-internet", f"s{k}"]
        assert (eth0.mtu, eth0.mac, eth0.master) == (EXTERNAL_MTU, None, None)
        assert (port.mtu, port.master) == (EXTERNAL_MTU, BRIDGE)
        pair = next(v for v in plan.veths if eth0 in (v.a, v.b))
        assert port in (pair.a, pair.b)
        assert addresses[ns, NODE_IF] == f"{ip}/16"
        assert not [r for r in plan.routes if r.namespace == ns]  # the external CIDR only


def test_edge_hosts_get_ext0_on_the_external_with_only_a_link_route() -> None:
    topology, plan = plan_of("edge.yaml")
    found = ends(plan)
    addresses = {(a.namespace, a.device) for a in plan.addresses}
    external = ipaddress.IPv4Network("30.0.0.0/16")
    for index, host in enumerate(topology.hosts):
        ns = f"onm-t1-h-{host.name}"
        routes = [r for r in plan.routes if r.namespace == ns and r.device == EXTERNAL_IF]
        if host.external is None:
            assert (ns, EXTERNAL_IF) not in found and routes == []
            continue
        ext0 = found[ns, EXTERNAL_IF]
        port = found["onm-t1-x-internet", f"h{index + 1}"]
        assert (ext0.mtu, ext0.master) == (EXTERNAL_MTU, None)
        assert port.master == BRIDGE
        pair = next(v for v in plan.veths if ext0 in (v.a, v.b))
        assert port in (pair.a, pair.b)
        assert (ns, EXTERNAL_IF) not in addresses  # the agent adds the gateways' /32s
        assert routes == [Route(ns, external, None, EXTERNAL_IF)]
        # An edge host is a host like the others on the substrate.
        assert (ns, SUBSTRATE_IF) in found
        assert sum(1 for r in plan.routes if r.namespace == ns and r.device == SUBSTRATE_IF) == 4
    assert {h.name for h in topology.hosts if h.external} == {"gw1", "gw2", "gw3"}


def test_a_lab_without_externals_plans_as_before() -> None:
    _, plan = plan_of("two-hosts.yaml")
    assert all(r.via is not None for r in plan.routes)
    assert not [n for n in plan.namespaces if n.role in (Role.EXTERNAL, Role.SERVER)]
    assert len(plan.bridges) == 1


def test_servers_route_back_to_a_routed_pools_network_through_its_first_gateway() -> None:
    text = (EXAMPLES / "edge.yaml").read_text().replace("nat: snat", "nat: none")
    assert "nat: none" in text
    topology = loads(text)
    plan = build(topology, "t1", allocations(topology))
    for server in ("web", "dl"):
        ns = f"onm-t1-s-{server}"
        assert [r for r in plan.routes if r.namespace == ns] == [
            Route(
                ns,
                ipaddress.IPv4Network("10.0.0.0/24"),
                ipaddress.IPv4Address("30.0.100.1"),
                NODE_IF,
            )
        ]


def test_an_anycast_pool_is_one_multipath_route_on_each_node_host() -> None:
    topology = load(EXAMPLES / "edge.yaml")
    prefix = ipaddress.IPv6Network("fd00:0:4000::/64")
    given = replace(
        allocations(topology),
        anycast=(AnycastAllocation(prefix, ("gw1", "gw2", "gw3")),),
    )
    plan = build(topology, "t1", given)
    index = {h.name: i for i, h in enumerate(topology.hosts)}
    hops = tuple(transit_address(index[g]).ip for g in ("gw1", "gw2", "gw3"))
    assert plan.multipath == (
        MultipathRoute("onm-t1-h-h1", prefix, hops, SUBSTRATE_IF),
        MultipathRoute("onm-t1-h-h2", prefix, hops, SUBSTRATE_IF),
    )  # edge hosts take the /64 as their own: no route there
    assert not [r for r in plan.routes if r.destination == prefix]
    sysctls = {n.name: dict(n.sysctls) for n in plan.namespaces if n.role is Role.HOST}
    assert all(
        s["net.ipv6.fib_multipath_hash_policy"] == MULTIPATH_HASH_POLICY == 0
        for s in sysctls.values()
    )
    assert build(topology, "t1", allocations(topology)).multipath == ()
