"""Tests for onm.lab.topology_edge: externals, servers, edge hosts, edge pools and routes in a
topology file, through the one loader (`onm.lab.topology.loads`).

As in test_topology, each bad case edits one line of a good file (`EDGE`) and names the line
and key path the error must give.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onm.cli.main import app
from onm.lab.topology import (
    EdgePoolSpec,
    GatewaySpec,
    RouteSpec,
    ServerSpec,
    TopologyError,
    load,
    loads,
)
from onm.model.edge_pool import Choice, HashField, Mode, Nat
from onm.model.host import HostRole

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

EDGE = """\
externals:
  - name: internet
    cidr: 30.0.0.0/16
    servers: [{name: web, ip: 30.0.2.2}]
hosts:
  - {name: h1, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: gw1, role: edge, external: internet, location: {locale: 1, area: 1, rack: 9, node: 1}}
  - {name: gw2, role: edge, external: internet, location: {locale: 1, area: 1, rack: 9, node: 2}}
tenants: [{name: t}]
networks:
  - {name: znet, tenant: t, cidr: 10.0.0.0/24}
nodes:
  - {name: a, network: znet, host: h1, ip: 10.0.0.2}
edge_pools:
  - {name: egress, network: znet, nat: snat, hash: [src, dst],
     gateways: [{name: e1, host: gw1, external_ip: 30.0.100.1},
                {name: e2, host: gw2, external_ip: 30.0.100.2}]}
routes:
  - {network: znet, prefix: 0.0.0.0/0, edge_pool: egress}
"""
POOL_LINE = 15
"""The line of EDGE that opens the edge pool (its settings are on it)."""


def edit(line: int, text: str) -> str:
    """EDGE with line `line` (from 1) replaced by `text` (which may hold several lines)."""
    lines = EDGE.splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


def gw1(keys: str) -> str:
    """Host gw1's line with `keys` (role, external) before its location."""
    return f"  - {{name: gw1, {keys} location: {{locale: 1, area: 1, rack: 9, node: 1}}}}"


def pool_line(settings: str) -> str:
    """The edge pool's first line with `settings` after its name and network."""
    return f"  - {{name: egress, network: znet, {settings}"


def error_of(text: str) -> str:
    with pytest.raises(TopologyError) as caught:
        loads(text, "lab.yaml")
    return caught.value.message


def test_the_briefs_example_loads() -> None:
    topology = loads(EDGE)
    [internet] = topology.externals
    assert (internet.name, internet.cidr) == ("internet", ipaddress.IPv4Network("30.0.0.0/16"))
    assert internet.servers == (ServerSpec("web", ipaddress.IPv4Address("30.0.2.2")),)
    assert internet.interface(internet.servers[0].ip) == ipaddress.IPv4Interface("30.0.2.2/16")
    assert topology.host("h1").role is HostRole.NODE and topology.host("h1").external is None
    assert (topology.host("gw1").role, topology.host("gw1").external) == (
        HostRole.EDGE,
        "internet",
    )
    [egress] = topology.edge_pools
    assert egress == EdgePoolSpec(
        "egress",
        "znet",
        (
            GatewaySpec("e1", "gw1", ipaddress.IPv4Address("30.0.100.1")),
            GatewaySpec("e2", "gw2", ipaddress.IPv4Address("30.0.100.2")),
        ),
        nat=Nat.SNAT,
        hash_fields=(HashField.SRC, HashField.DST),
    )
    assert topology.routes == (RouteSpec("znet", ipaddress.IPv4Network("0.0.0.0/0"), "egress"),)


def test_the_shipped_example() -> None:
    topology = load(EXAMPLES / "edge.yaml")
    assert [n.name for n in topology.networks] == ["znet"]
    assert [(n.name, n.host) for n in topology.nodes] == [("a", "h1"), ("b", "h2")]
    [internet] = topology.externals
    assert [(s.name, str(s.ip)) for s in internet.servers] == [
        ("web", "30.0.2.2"),
        ("dl", "30.0.2.3"),
    ]
    edge = [h.name for h in topology.hosts if h.role is HostRole.EDGE]
    assert edge == ["gw1", "gw2", "gw3"]
    [egress] = topology.edge_pools
    assert [(g.name, g.host, str(g.external_ip)) for g in egress.gateways] == [
        ("e1", "gw1", "30.0.100.1"),
        ("e2", "gw2", "30.0.100.2"),
        ("e3", "gw3", "30.0.100.3"),
    ]
    assert [(r.network, str(r.prefix), r.edge_pool) for r in topology.routes] == [
        ("znet", "0.0.0.0/0", "egress")
    ]
    assert [(x.name, s.name) for x, s in topology.servers()] == [
        ("internet", "web"),
        ("internet", "dl"),
    ]


def test_only_what_the_file_sets_goes_to_the_manager() -> None:
    bare = edit(POOL_LINE, pool_line(""))
    [pool] = loads(bare).edge_pools
    assert pool.settings() == {}  # the manager's defaults, not a copy of them
    every = edit(
        POOL_LINE,
        pool_line(
            "nat: none, hash: [dport, src, proto], choice: least-loaded, mode: anycast, "
            "split_above: 1e9, probe_interval: 0.5,"
        ),
    )
    [pool] = loads(every).edge_pools
    assert (pool.nat, pool.choice, pool.mode) == (Nat.NONE, Choice.LEAST_LOADED, Mode.ANYCAST)
    assert pool.hash_fields == (HashField.SRC, HashField.PROTO, HashField.DPORT)  # model order
    assert pool.settings() == {
        "nat": "none",
        "hash": ["src", "proto", "dport"],
        "choice": "least-loaded",
        "mode": "anycast",
        "split_above": 1e9,
        "probe_interval": 0.5,
    }
    whole = edit(POOL_LINE, pool_line("nat: none, split_above: 2000000000,"))
    assert loads(whole).edge_pools[0].split_above == 2e9


def test_the_digest_covers_every_edge_key() -> None:
    base = loads(EDGE).digest()
    changed = [
        EDGE.replace("30.0.0.0/16", "30.0.0.0/17"),
        EDGE.replace("ip: 30.0.2.2", "ip: 30.0.2.9"),
        EDGE.replace("{name: web,", "{name: www,"),
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 30.0.100.7"),
        EDGE.replace("hash: [src, dst]", "hash: [src]"),
        EDGE.replace("nat: snat,", "nat: snat, probe_interval: 2,"),
        EDGE.replace("{name: e2, host: gw2", "{name: e2, host: gw1"),
        EDGE.replace("prefix: 0.0.0.0/0", "prefix: 40.0.0.0/8"),
    ]
    digests = set()
    for text in changed:
        assert text != EDGE
        digest = loads(text).digest()
        assert digest != base, text
        digests.add(digest)
    assert len(digests) == len(changed)
    # A host's role and external network are in it too.
    gw3 = "  - {name: gw3, location: {locale: 1, area: 1, rack: 9, node: 3}}\ntenants:"
    node_host = EDGE.replace("tenants:", gw3)
    edge_host = EDGE.replace(
        "tenants:", gw3.replace("gw3,", "gw3, role: edge, external: internet,")
    )
    assert loads(node_host).digest() != loads(edge_host).digest()
    # Meaning, not spelling: the hash fields in another order are the same pool.
    assert loads(EDGE.replace("hash: [src, dst]", "hash: [dst, src]")).digest() == base


BAD = [
    # externals
    (
        edit(2, "  - name: internet\n    colour: blue"),
        "lab.yaml:3: externals[0].colour: unknown key",
    ),
    (
        edit(3, "    cidr: 30.0.0.1/16"),
        "lab.yaml:3: externals[0].cidr: '30.0.0.1/16' is not an IPv4",
    ),
    (edit(3, "    cidr: 30.0.0.0/31"), "lab.yaml:3: externals[0].cidr: 30.0.0.0/31 is too small"),
    (edit(3, "    cidr: [30.0.0.0/16]"), "lab.yaml:3: externals[0].cidr: must be a single value"),
    (edit(2, "  - name: Internet"), "lab.yaml:2: externals[0].name: 'Internet' is not a valid"),
    (
        edit(4, "    servers: {name: web, ip: 30.0.2.2}"),
        "lab.yaml:4: externals[0].servers: must be a list",
    ),
    # servers
    (
        edit(4, "    servers: [{name: web, ip: 30.1.2.2}]"),
        "lab.yaml:4: externals[0].servers[0].ip: 30.1.2.2 is not inside external network "
        "'internet' (30.0.0.0/16)",
    ),
    (
        edit(4, "    servers: [{name: web, ip: 30.0.255.255}]"),
        "lab.yaml:4: externals[0].servers[0].ip: 30.0.255.255 is the network or broadcast",
    ),
    (
        edit(4, "    servers: [{name: web, ip: 30.0.2.2}, {name: dl, ip: 30.0.2.2}]"),
        "lab.yaml:4: externals[0].servers[1].ip: 30.0.2.2 is server web's address",
    ),
    (
        edit(4, "    servers: [{name: web, ip: 30.0.2.2}, {name: web, ip: 30.0.2.3}]"),
        "lab.yaml:4: externals[0].servers[1].name: server 'web' is defined twice",
    ),
    (
        edit(4, "    servers: [{name: a, ip: 30.0.2.2}]"),
        "lab.yaml:4: externals[0].servers[0].name: 'a' is a node's name too",
    ),
    (
        edit(4, "    servers: [{name: gw1, ip: 30.0.2.2}]"),
        "lab.yaml:4: externals[0].servers[0].name: 'gw1' is a host's name too",
    ),
    (
        edit(4, "    servers: [{name: web, ip: 30.0.2.2, mac: x}]"),
        "lab.yaml:4: externals[0].servers[0].mac: unknown key",
    ),
    (edit(4, "    servers: [{name: web}]"), "lab.yaml:4: externals[0].servers[0].ip: required"),
    # hosts
    (
        edit(7, gw1("role: edge,")),
        "lab.yaml:7: hosts[1].external: an edge host names the external network it is on",
    ),
    (
        edit(
            6,
            "  - {name: h1, external: internet, location: {locale: 1, area: 1, rack: 1, node: 1}}",
        ),
        "lab.yaml:6: hosts[0].external: only an edge host (`role: edge`) is on an external",
    ),
    (
        edit(
            7,
            gw1("role: edge, external: moon,"),
        ),
        "lab.yaml:7: hosts[1].external: external network 'moon' is not defined",
    ),
    (
        edit(
            7,
            gw1("role: gateway, external: internet,"),
        ),
        "lab.yaml:7: hosts[1].role: 'gateway' is not one of node, edge",
    ),
    (
        edit(13, "  - {name: a, network: znet, host: gw1, ip: 10.0.0.2}"),
        "lab.yaml:13: nodes[0].host: host 'gw1' is an edge host: it runs no nodes",
    ),
    # edge pools
    (
        edit(POOL_LINE, pool_line("nat: masquerade,")),
        "lab.yaml:15: edge_pools[0].nat: 'masquerade' is not one of snat, none",
    ),
    (
        edit(POOL_LINE, pool_line("choice: nearest,")),
        "lab.yaml:15: edge_pools[0].choice: 'nearest' is not one of hash, random, least-loaded",
    ),
    (
        edit(POOL_LINE, pool_line("mode: ecmp,")),
        "lab.yaml:15: edge_pools[0].mode: 'ecmp' is not one of direct, anycast",
    ),
    (
        edit(POOL_LINE, pool_line("hash: [src, port],")),
        "lab.yaml:15: edge_pools[0].hash[1]: 'port' is not one of src, dst, proto, sport, dport",
    ),
    (
        edit(POOL_LINE, pool_line("hash: [src, src],")),
        "lab.yaml:15: edge_pools[0].hash[1]: 'src' is listed twice",
    ),
    (edit(POOL_LINE, pool_line("hash: [],")), "lab.yaml:15: edge_pools[0].hash: give at least"),
    (edit(POOL_LINE, pool_line("hash: src,")), "lab.yaml:15: edge_pools[0].hash: must be a list"),
    (
        edit(POOL_LINE, pool_line("split_above: 1e9,")),
        "lab.yaml:15: edge_pools[0].split_above: only a pool without NAT splits flows",
    ),
    (
        edit(POOL_LINE, pool_line("nat: snat, split_above: 1e9,")),
        "lab.yaml:15: edge_pools[0].split_above: only a pool without NAT splits flows",
    ),
    (
        edit(POOL_LINE, pool_line("nat: none, split_above: fast,")),
        "lab.yaml:15: edge_pools[0].split_above: must be a number (bits per second)",
    ),
    (
        edit(POOL_LINE, pool_line("nat: none, split_above: 10,")),
        "lab.yaml:15: edge_pools[0].split_above: 10.0 is outside 1000..1e+12",
    ),
    (
        edit(POOL_LINE, pool_line("probe_interval: '1',")),
        "lab.yaml:15: edge_pools[0].probe_interval: must be a number (seconds)",
    ),
    (
        edit(POOL_LINE, pool_line("probe_interval: 600,")),
        "lab.yaml:15: edge_pools[0].probe_interval: 600.0 is outside 0.05..60",
    ),
    (
        edit(POOL_LINE, pool_line("sticky: yes,")),
        "lab.yaml:15: edge_pools[0].sticky: unknown key",
    ),
    (
        edit(POOL_LINE, "  - {name: egress, network: ynet,"),
        "lab.yaml:15: edge_pools[0].network: network 'ynet' is not defined",
    ),
    (
        EDGE.replace("routes:", "  - {name: egress, network: znet}\nroutes:"),
        "lab.yaml:18: edge_pools[1].name: edge pool 'egress' is defined twice in network 'znet'",
    ),
    # gateways
    (
        EDGE.replace("{name: e2, host: gw2,", "{name: e2, host: h1,"),
        "lab.yaml:17: edge_pools[0].gateways[1].host: host 'h1' is not an edge host",
    ),
    (
        EDGE.replace("{name: e2, host: gw2,", "{name: e2, host: gw9,"),
        "lab.yaml:17: edge_pools[0].gateways[1].host: host 'gw9' is not defined",
    ),
    (
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 31.0.100.2"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: 31.0.100.2 is not inside external "
        "network 'internet' (30.0.0.0/16)",
    ),
    (
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 30.0.0.0"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: 30.0.0.0 is the network or broadcast",
    ),
    (
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 30.0.255.255"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: 30.0.255.255 is the network or",
    ),
    (
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 30.0.100.1"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: 30.0.100.1 is gateway e1's external "
        "address (edge pool egress)",
    ),
    (
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 30.0.2.2"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: 30.0.2.2 is server web's address",
    ),
    (
        EDGE.replace("external_ip: 30.0.100.2", "external_ip: 30.0.100"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: '30.0.100' is not an IPv4 address",
    ),
    (
        EDGE.replace("{name: e2, host: gw2,", "{name: e1, host: gw2,"),
        "lab.yaml:17: edge_pools[0].gateways[1].name: gateway 'e1' is defined twice",
    ),
    (
        EDGE.replace("{name: e2, host: gw2, external_ip: 30.0.100.2}", "{name: e2, host: gw2}"),
        "lab.yaml:17: edge_pools[0].gateways[1].external_ip: required key is missing",
    ),
    (
        EDGE.replace("{name: e2, host: gw2,", "{name: e2, node: gw2,"),
        "lab.yaml:17: edge_pools[0].gateways[1].node: unknown key",
    ),
    (
        EDGE.replace("gateways: [", "gateways: {").replace("30.0.100.2}]}", "30.0.100.2}}}"),
        "lab.yaml:16: edge_pools[0].gateways: must be a list",
    ),
    # routes
    (
        EDGE.replace("prefix: 0.0.0.0/0", "prefix: 0.0.0.1/0"),
        "lab.yaml:19: routes[0].prefix: '0.0.0.1/0' is not an IPv4 CIDR",
    ),
    (
        EDGE.replace("prefix: 0.0.0.0/0", "prefix: 10.0.0.128/25"),
        "lab.yaml:19: routes[0].prefix: 10.0.0.128/25 is inside network 'znet''s own CIDR",
    ),
    (
        EDGE.replace("prefix: 0.0.0.0/0", "prefix: '2001:db8::/32'"),
        "lab.yaml:19: routes[0].prefix: '2001:db8::/32' is not an IPv4 CIDR",
    ),
    (
        EDGE + "  - {network: znet, prefix: 40.0.0.0/8, edge_pool: egress}\n",
        "lab.yaml:20: routes[1].prefix: 40.0.0.0/8 overlaps network 'znet''s route 0.0.0.0/0",
    ),
    (
        EDGE.replace("edge_pool: egress}", "edge_pool: out}"),
        "lab.yaml:19: routes[0].edge_pool: 'out' is no edge pool of network 'znet'",
    ),
    (
        EDGE.replace("network: znet, prefix", "network: ynet, prefix"),
        "lab.yaml:19: routes[0].network: network 'ynet' is not defined",
    ),
    (
        EDGE.replace("edge_pool: egress}", "pool: egress}"),
        "lab.yaml:19: routes[0].pool: unknown key",
    ),
    (
        EDGE.replace("{network: znet, prefix: 0.0.0.0/0, edge_pool: egress}", "{network: znet}"),
        "lab.yaml:19: routes[0].prefix: required key is missing",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_edge_keys_name_line_and_key(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message


def test_a_route_to_a_pool_of_another_network_is_refused() -> None:
    text = EDGE.replace("nodes:", "  - {name: ynet, tenant: t, cidr: 10.1.0.0/24}\nnodes:").replace(
        "network: znet, prefix", "network: ynet, prefix"
    )
    assert error_of(text).startswith(
        "lab.yaml:20: routes[0].edge_pool: 'egress' is no edge pool of network 'ynet'"
    )


def test_an_edge_pool_without_gateways_or_settings_loads() -> None:
    lines = EDGE.splitlines()
    text = "\n".join([*lines[: POOL_LINE - 1], "  - {name: egress, network: znet}", *lines[17:]])
    [pool] = loads(text + "\n").edge_pools
    assert (pool.gateways, pool.settings()) == ((), {})


def test_check_command_counts_the_edge_objects() -> None:
    result = CliRunner().invoke(app, ["lab", "check", str(EXAMPLES / "edge.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "ok: 5 hosts, 1 tenant, 1 network, 2 nodes, 1 external network, 2 servers, 1 edge pool, "
        "1 route, substrate MTU 1520"
    ) in result.stdout
