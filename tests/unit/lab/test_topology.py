"""Tests for onm.lab.topology: the examples load; every bad file is refused with its line and key.

The table of bad files edits one line of the issue's example (`BASE`) at a time, so each case
shows the file line that is wrong and the message that must name it. `onm lab check` runs the
same loader offline: its exit status and one-line error are checked too.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onm.addressing import HostPrefix, Location
from onm.cli.main import app
from onm.lab.topology import (
    DEFAULT_MTU,
    Latency,
    ManagerSpec,
    Topology,
    TopologyError,
    load,
    loads,
)
from onm.model.network import AutoPools, Encoding

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

BASE = """\
substrate: {mtu: 1520}
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
tenants: [{name: z}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
nodes:
  - {name: a, network: znet, host: r, ip: 10.0.0.2}
  - {name: g, network: znet, host: s, ip: 10.0.0.3}
"""


def edit(line: int, text: str) -> str:
    """BASE with line `line` (from 1) replaced by `text` (which may hold several lines)."""
    lines = BASE.splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


def error_of(text: str) -> str:
    with pytest.raises(TopologyError) as caught:
        loads(text, "lab.yaml")
    return caught.value.message


def test_examples_load() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert names == ["edge.yaml", "fig2a.yaml", "two-hosts.yaml", "two-tenants.yaml"]
    for path in EXAMPLES.glob("*.yaml"):
        assert load(path).hosts


def test_the_issues_example() -> None:
    topology = load(EXAMPLES / "two-hosts.yaml")
    assert topology == loads(BASE)
    assert topology.substrate.mtu == 1520
    assert [h.name for h in topology.hosts] == ["r", "s"]
    assert topology.host("s").prefix == HostPrefix(Location(1, 1, 2, 1))
    assert [t.name for t in topology.tenants] == ["z"]
    znet = topology.network("znet")
    assert znet.cidrs == (ipaddress.IPv4Network("10.0.0.0/24"),)
    assert znet.encoding is Encoding.SIIT
    assert znet.gateway_for(ipaddress.IPv4Address("10.0.0.3")) == ipaddress.IPv4Address("10.0.0.1")
    assert [(n.name, n.network, n.host, str(n.ip)) for n in topology.nodes] == [
        ("a", "znet", "r", "10.0.0.2"),
        ("g", "znet", "s", "10.0.0.3"),
    ]


def test_fig2a_has_the_seeds_nodes() -> None:
    topology = load(EXAMPLES / "fig2a.yaml")
    nodes = {n.name: n for n in topology.nodes}
    assert {"a", "g", "h", "j"} <= set(nodes)
    assert str(nodes["a"].ip) == "10.0.0.2" and nodes["a"].host == "r"
    assert str(nodes["g"].ip) == "10.0.0.5"
    assert str(nodes["j"].ip) == "10.0.0.8"
    [web] = topology.pools  # FIG. 2B: 10.0.0.3 is the pool of G and H
    assert (str(web.ip), web.members) == ("10.0.0.3", ("g", "h"))
    assert len({nodes[n].host for n in "aghj"}) == 4  # each on its own host
    # Entity Y's node shares A's address in another tenant's network.
    same = [n for n in topology.nodes if n.ip == nodes["a"].ip and n.name != "a"]
    assert same and topology.network(same[0].network).tenant != "z"


def test_two_tenants_share_a_cidr() -> None:
    topology = load(EXAMPLES / "two-tenants.yaml")
    assert len({n.tenant for n in topology.networks}) == 2
    assert len({n.cidrs for n in topology.networks}) == 1
    assert topology.network("ynet").encoding is Encoding.ENCAP


def test_defaults_and_alternatives() -> None:
    text = """\
hosts:
  - name: r
    prefix: fd00:0:101:101::/64
  - name: s
    location: {locale: 1, area: 1, rack: 2, node: 1}
    prefix: fd00:0:101:201::/64
tenants:
  - name: "on"
networks:
  - name: n1
    tenant: "on"
    cidrs: [10.0.0.0/24, 10.1.0.0/16]
    encoding: encap
nodes:
  - {name: "123", network: n1, host: r, ip: 10.1.2.3}
"""
    topology = loads(text)
    assert topology.substrate.mtu == DEFAULT_MTU
    assert topology.host("r").prefix == HostPrefix(Location(1, 1, 1, 1))
    assert topology.network("n1").cidrs[1] == ipaddress.IPv4Network("10.1.0.0/16")
    assert topology.network("n1").gateway_for(ipaddress.IPv4Address("10.1.2.3")) == (
        ipaddress.IPv4Address("10.1.0.1")
    )
    assert topology.nodes[0].name == "123"


def test_plain_words_stay_words() -> None:
    """YAML 1.1 reads `on` as true: names are read as written."""
    topology = loads(edit(5, "tenants: [{name: on}]").replace("tenant: z", "tenant: on"))
    assert topology.tenants[0].name == "on"


def test_digest_follows_meaning_not_layout() -> None:
    reformatted = "# a comment\n" + BASE.replace("{mtu: 1520}", "\n  mtu: 1520")
    assert loads(reformatted).digest() == loads(BASE).digest()
    assert loads(edit(10, "  - {name: g, network: znet, host: s, ip: 10.0.0.4}")).digest() != (
        loads(BASE).digest()
    )


BAD = [
    # unknown keys, at each level
    (BASE + "extra: 1\n", "lab.yaml:11: extra: unknown key"),
    (edit(1, "substrate: {mtu: 1520, mut: 2}"), "lab.yaml:1: substrate.mut: unknown key"),
    (
        edit(4, "  - {name: s, locatoin: {locale: 1, area: 1, rack: 2, node: 1}}"),
        "lab.yaml:4: hosts[1].locatoin: unknown key",
    ),
    (
        edit(3, "  - {name: r, location: {locale: 1, area: 1, rak: 1, node: 1}}"),
        "lab.yaml:3: hosts[0].location.rak: unknown key",
    ),
    (edit(5, "tenants: [{name: z, colour: red}]"), "lab.yaml:5: tenants[0].colour: unknown key"),
    (
        edit(7, "  - {name: znet, tenant: z, cidr: 10.0.0.0/24, mode: l2}"),
        "lab.yaml:7: networks[0].mode: unknown key",
    ),
    (
        edit(10, "  - {name: g, network: znet, host: s, ipp: 10.0.0.3}"),
        "lab.yaml:10: nodes[1].ipp: unknown key",
    ),
    (
        edit(10, "  - name: g\n    network: znet\n    host: s\n    ipp: 10.0.0.3"),
        "lab.yaml:13: nodes[1].ipp: unknown key",
    ),
    # missing keys
    (edit(10, "  - {name: g, network: znet, host: s}"), "lab.yaml:10: nodes[1].ip: required key"),
    (edit(7, "  - {name: znet, tenant: z}"), "lab.yaml:7: networks[0].cidr: required key"),
    (edit(4, "  - {name: s}"), "lab.yaml:4: hosts[1]: give the host a `location` or a `prefix`"),
    (
        edit(3, "  - {name: r, location: {locale: 1, area: 1, rack: 1}}"),
        "lab.yaml:3: hosts[0].location.node: required key is missing",
    ),
    ("tenants: []\n", "lab.yaml:1: hosts: required key is missing"),
    # bad references
    (
        edit(10, "  - {name: g, network: zznet, host: s, ip: 10.0.0.3}"),
        "lab.yaml:10: nodes[1].network: network 'zznet' is not defined",
    ),
    (
        edit(10, "  - {name: g, network: znet, host: t, ip: 10.0.0.3}"),
        "lab.yaml:10: nodes[1].host: host 't' is not defined",
    ),
    (
        edit(7, "  - {name: znet, tenant: y, cidr: 10.0.0.0/24}"),
        "lab.yaml:7: networks[0].tenant: tenant 'y' is not defined",
    ),
    # duplicate names and addresses
    (
        edit(4, "  - {name: r, location: {locale: 1, area: 1, rack: 2, node: 1}}"),
        "lab.yaml:4: hosts[1].name: host 'r' is defined twice",
    ),
    (
        edit(4, "  - {name: s, location: {locale: 1, area: 1, rack: 1, node: 1}}"),
        "lab.yaml:4: hosts[1]: host s's /64 fd00:0:101:101::/64 is host r's too",
    ),
    (edit(5, "tenants: [{name: z}, {name: z}]"), "lab.yaml:5: tenants[1].name: tenant 'z'"),
    (
        edit(10, "  - {name: a, network: znet, host: s, ip: 10.0.0.3}"),
        "lab.yaml:10: nodes[1].name: node 'a' is defined twice",
    ),
    (
        edit(10, "  - {name: g, network: znet, host: s, ip: 10.0.0.2}"),
        "lab.yaml:10: nodes[1].ip: 10.0.0.2 is node a's address in network 'znet'",
    ),
    (
        edit(10, "  - {name: g, name: h, network: znet, host: s, ip: 10.0.0.3}"),
        "lab.yaml:10: nodes[1].name: key given twice",
    ),
    # addresses
    (
        edit(10, "  - {name: g, network: znet, host: s, ip: 10.0.1.3}"),
        "lab.yaml:10: nodes[1].ip: 10.0.1.3 is not inside network 'znet' (10.0.0.0/24)",
    ),
    (
        edit(10, "  - {name: g, network: znet, host: s, ip: 10.0.0.1}"),
        "lab.yaml:10: nodes[1].ip: 10.0.0.1 is the gateway address of network 'znet'",
    ),
    (
        edit(10, "  - {name: g, network: znet, host: s, ip: 10.0.0.255}"),
        "lab.yaml:10: nodes[1].ip: 10.0.0.255 is the network or broadcast address",
    ),
    (
        edit(10, "  - {name: g, network: znet, host: s, ip: 10.0.0.300}"),
        "lab.yaml:10: nodes[1].ip: '10.0.0.300' is not an IPv4 address",
    ),
    (
        edit(7, "  - {name: znet, tenant: z, cidr: 10.0.0.1/24}"),
        "lab.yaml:7: networks[0].cidr: '10.0.0.1/24' is not an IPv4 CIDR",
    ),
    (
        edit(7, "  - {name: znet, tenant: z, cidrs: [10.0.0.0/24, 10.0.0.0/16]}"),
        "lab.yaml:7: networks[0].cidrs: 10.0.0.0/16 overlaps 10.0.0.0/24",
    ),
    (  # the manager's CIDR rule (onm.model.cidr), with the file's line and key
        edit(7, "  - {name: znet, tenant: z, cidr: 224.0.0.0/24}"),
        "lab.yaml:7: networks[0].cidr: 224.0.0.0/24 is inside 224.0.0.0/4 (multicast, RFC 5771",
    ),
    (
        edit(7, "  - {name: znet, tenant: z, cidrs: [10.0.0.0/24, 127.0.0.0/8]}"),
        "lab.yaml:7: networks[0].cidrs: 127.0.0.0/8 is inside 127.0.0.0/8 (loopback",
    ),
    (
        edit(7, "  - {name: znet, tenant: z, cidr: 10.0.0.0/24, cidrs: [10.0.0.0/24]}"),
        "lab.yaml:7: networks[0].cidrs: give `cidr` or `cidrs`, not both",
    ),
    (
        edit(4, "  - {name: s, prefix: 'fd00:ffff::/64'}"),
        "lab.yaml:4: hosts[1]: fd00:ffff::/64 is the lab's transit network",
    ),
    (
        edit(4, "  - {name: s, prefix: 'fd00::/48'}"),
        "lab.yaml:4: hosts[1].prefix: must be a /64, got /48",
    ),
    (
        edit(
            4,
            "  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}, prefix: 'fd00::/64'}",
        ),
        "lab.yaml:4: hosts[1].prefix: fd00::/64 does not match the location's prefix",
    ),
    (
        edit(3, "  - {name: r, location: {locale: 64, area: 1, rack: 1, node: 1}}"),
        "lab.yaml:3: hosts[0].location.locale: must be 0..63, got 64",
    ),
    # values
    (edit(1, "substrate: {mtu: 1000}"), "lab.yaml:1: substrate.mtu: must be 1280..9000, got 1000"),
    (edit(1, "substrate: {mtu: big}"), "lab.yaml:1: substrate.mtu: must be a whole number"),
    (edit(1, "substrate: {mtu: true}"), "lab.yaml:1: substrate.mtu: must be a whole number"),
    (
        edit(7, "  - {name: znet, tenant: z, cidr: 10.0.0.0/24, encoding: vxlan}"),
        "lab.yaml:7: networks[0].encoding: 'vxlan' is not one of siit, encap",
    ),
    (edit(5, "tenants: [{name: Z}]"), "lab.yaml:5: tenants[0].name: 'Z' is not a valid name"),
    (edit(5, "tenants: [{name: }]"), "lab.yaml:5: tenants[0].name: must not be empty"),
    (edit(5, "tenants: [{name: [z]}]"), "lab.yaml:5: tenants[0].name: must be a single value"),
    # shapes
    (edit(5, "tenants: {name: z}"), "lab.yaml:5: tenants: must be a list"),
    ("hosts: []\n", "lab.yaml:1: hosts: a lab needs at least one host"),
    (edit(5, "tenants: [z]"), "lab.yaml:5: tenants[0]: must be a mapping"),
    ("- a\n- b\n", "lab.yaml:1: must be a mapping"),
    ("", "lab.yaml:1: the file is empty"),
    # not YAML at all
    (edit(10, "  - {name: g, network: znet"), "lab.yaml:11: invalid YAML"),
    (
        edit(9, "  - {name: a, network: znet, host: r, ip: 10.0.0.2}\n - x: y"),
        "lab.yaml:10: invalid YAML",
    ),
    ("a: 1\n---\nb: 2\n", "lab.yaml:2: invalid YAML: expected a single document"),
    (
        edit(1, "substrate: !!python/object:os.system {mtu: 1}"),
        "lab.yaml:1: substrate: the tag !!python/object:os.system is not allowed here",
    ),
    (edit(5, "tenants: [{name: !secret z}]"), "lab.yaml:5: tenants[0].name: the tag !secret is"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_files_name_line_and_key(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message


def test_the_error_is_one_of_the_tree() -> None:
    with pytest.raises(TopologyError) as caught:
        loads(edit(10, "  - {name: g, network: zznet, host: s, ip: 10.0.0.3}"), "lab.yaml")
    error = caught.value
    assert (error.source, error.line, error.path) == ("lab.yaml", 10, "nodes[1].network")
    assert error.http_status == 400
    assert str(error) == error.message


def test_a_host_takes_more_than_63_nodes() -> None:
    """Issue #7 defect 8: the 64th node of a host was refused ("has room for 63 nodes")."""
    nodes = "".join(
        f"  - {{name: n{i}, network: znet, host: r, ip: 10.0.{i // 200}.{i % 200 + 2}}}\n"
        for i in range(300)
    )
    text = edit(7, "  - {name: znet, tenant: z, cidr: 10.0.0.0/16}")
    text = text.split("nodes:")[0] + "nodes:\n" + nodes
    topology = loads(text, "lab.yaml")
    assert [n.host for n in topology.nodes] == ["r"] * 300


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read"):
        load(tmp_path / "missing.yaml")


def test_topology_equality_is_by_value() -> None:
    assert isinstance(loads(BASE), Topology)
    assert loads(BASE) == loads(BASE)


# --- onm lab check ---------------------------------------------------------------------------
RUNNER = CliRunner()


def test_check_command_accepts_an_example() -> None:
    result = RUNNER.invoke(app, ["lab", "check", str(EXAMPLES / "two-hosts.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok: 2 hosts, 1 tenant, 1 network, 2 nodes, substrate MTU 1520" in result.stdout


def test_check_command_names_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(edit(10, "  - {name: g, network: znet, host: s, ipp: 10.0.0.3}"))
    result = RUNNER.invoke(app, ["lab", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:10: nodes[1].ipp: unknown key")
    assert result.stderr.count("\n") == 1


# --- pools (issue #9) --------------------------------------------------------------------------

POOLS = (
    BASE
    + """\
  - {name: h, network: znet, host: r, ip: 10.0.0.4}
pools:
  - name: web
    network: znet
    ip: 10.0.0.9
    policy: nearest
    scope: requester
    all_down: fail-closed
    check: {kind: http, port: 8080, path: /healthz, interval: 0.5, timeout: 0.5, rise: 2, fall: 2}
    members: [g, h]
"""
)


def test_a_pool_loads_with_its_settings_as_the_api_takes_them() -> None:
    [pool] = loads(POOLS).pools
    assert (pool.name, pool.network, str(pool.ip), pool.members) == (
        "web",
        "znet",
        "10.0.0.9",
        ("g", "h"),
    )
    assert pool.settings["check"] == {
        "kind": "http", "port": 8080, "path": "/healthz", "interval": 0.5, "timeout": 0.5,
        "rise": 2, "fall": 2,
    }  # fmt: skip
    assert loads(POOLS).digest() != loads(BASE).digest()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("ip: 10.0.0.9", "ip: 10.0.0.3", "lab.yaml:15: pools[0].ip: 10.0.0.3 is node g's address"),
        ("ip: 10.0.0.9", "ip: 10.9.0.9", "pools[0].ip: 10.9.0.9 is not inside network 'znet'"),
        ("members: [g, h]", "members: [g, x]", "pools[0].members[1]: 'x' is no node of network"),
        ("members: [g, h]", "members: [g, g]", "pools[0].members[1]: 'g' is listed twice"),
        (
            "policy: nearest",
            "policy: fastest",
            "lab.yaml:16: pools[0].policy: 'fastest' is not one of",
        ),
        ("timeout: 0.5,", "timeout: 2,", "lab.yaml:19: pools[0].check.timeout: 2 s is longer than"),
        ("interval: 0.5,", "interval: '0.5',", "pools[0].check.interval: must be a number"),
        (
            "kind: http, port: 8080,",
            "kind: http,",
            "pools[0].check.port: a http check needs a port",
        ),
        (
            "    members: [g, h]",
            "    members: [g, h]\n    colour: red",
            "pools[0].colour: unknown key",
        ),
    ],
)
def test_bad_pools_name_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in POOLS
    assert expected in error_of(POOLS.replace(old, new))


# --- substrate.latency -----------------------------------------------------------------------
LATENCY = """\
substrate: {latency: {between_locales: 20ms, between_areas: 2ms, between_racks: 0.5ms}}
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: q, location: {locale: 1, area: 1, rack: 1, node: 2}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
  - {name: u, location: {locale: 1, area: 2, rack: 1, node: 1}}
  - {name: t, prefix: "fd00:0:201:101::/64"}
"""


def test_latency_is_one_way_microseconds_by_the_outermost_level_that_differs() -> None:
    topology = loads(LATENCY)
    latency = topology.substrate.latency
    assert latency == Latency(between_locales=20_000, between_areas=2_000, between_racks=500)
    assert topology.substrate.mtu == DEFAULT_MTU
    r = topology.host("r").prefix
    between = {h.name: latency.between(r, h.prefix) for h in topology.hosts}
    # t is given by its prefix: its location (locale 2) comes from the /64's bits.
    assert between == {"r": 0, "q": 0, "s": 500, "u": 2_000, "t": 20_000}
    assert latency.between(topology.host("t").prefix, r) == 20_000


def test_latency_units_and_default() -> None:
    for written, micro in (("20ms", 20_000), ("1s", 1_000_000), ("250us", 250), ("10s", 10**7)):
        topology = loads(edit(1, f"substrate: {{latency: {{between_locales: {written}}}}}"))
        assert topology.substrate.latency.between_locales == micro
    assert loads(BASE).substrate.latency == Latency()
    assert not loads(BASE).substrate.latency.adds_any()
    assert not loads(
        edit(1, "substrate: {latency: {between_racks: 0ms}}")
    ).substrate.latency.adds_any()


def test_latency_is_in_the_digest_and_no_latency_keeps_the_old_one() -> None:
    with_latency = edit(1, "substrate: {mtu: 1520, latency: {between_racks: 1ms}}")
    other = edit(1, "substrate: {mtu: 1520, latency: {between_racks: 2ms}}")
    assert loads(with_latency).digest() != loads(BASE).digest()
    assert loads(with_latency).digest() != loads(other).digest()
    zero = edit(1, "substrate: {mtu: 1520, latency: {between_racks: 0ms}}")
    assert loads(zero).digest() == loads(BASE).digest()


def _latency(value: str) -> str:
    return edit(1, f"substrate:\n  latency:\n    between_locales: {value}")


BAD_LATENCY = [
    (_latency("20"), "lab.yaml:3: substrate.latency.between_locales: write the unit: 20ms"),
    (_latency("0.5"), "lab.yaml:3: substrate.latency.between_locales: write the unit: 0.5ms"),
    (_latency("-5ms"), "lab.yaml:3: substrate.latency.between_locales: must not be negative"),
    (_latency("-5"), "lab.yaml:3: substrate.latency.between_locales: must not be negative"),
    (_latency("11s"), "lab.yaml:3: substrate.latency.between_locales: must be at most 10s"),
    (_latency("10.001s"), "lab.yaml:3: substrate.latency.between_locales: must be at most 10s"),
    (_latency("fast"), "lab.yaml:3: substrate.latency.between_locales: must be a duration"),
    (_latency("20 ms"), "lab.yaml:3: substrate.latency.between_locales: must be a duration"),
    (_latency("20min"), "lab.yaml:3: substrate.latency.between_locales: must be a duration"),
    (_latency("0.1us"), "lab.yaml:3: substrate.latency.between_locales: 0.1us is not a whole"),
    (_latency("[20ms]"), "lab.yaml:3: substrate.latency.between_locales: must be a single value"),
    (_latency(""), "lab.yaml:3: substrate.latency.between_locales: must not be empty"),
    (
        edit(1, "substrate: {latency: {between_nodes: 1ms}}"),
        "lab.yaml:1: substrate.latency.between_nodes: unknown key (expected one of: "
        "between_locales, between_areas, between_racks)",
    ),
    (edit(1, "substrate: {latency: 20ms}"), "lab.yaml:1: substrate.latency: must be a mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_LATENCY, ids=[e for _, e in BAD_LATENCY])
def test_bad_latency_names_line_and_key(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message


def test_check_command_shows_the_latency(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(LATENCY)
    result = RUNNER.invoke(app, ["lab", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(
        "substrate MTU 1520, one-way latency between_locales 20ms, between_areas 2ms, "
        "between_racks 0.5ms"
    ), result.stdout


def test_a_network_says_what_detected_pools_become() -> None:
    text = """\
hosts: [{name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}]
tenants: [{name: z}]
networks:
  - {name: n1, tenant: z, cidr: 10.0.0.0/24, auto_pools: accept}
  - {name: n2, tenant: z, cidr: 10.1.0.0/24}
"""
    topology = loads(text)
    assert topology.network("n1").auto_pools is AutoPools.ACCEPT
    assert topology.network("n2").auto_pools is AutoPools.PROPOSE  # the manager's default
    bad = text.replace("auto_pools: accept", "auto_pools: maybe")
    assert error_of(bad) == (
        "lab.yaml:4: networks[0].auto_pools: 'maybe' is not one of off, propose, accept"
    )


# --- the manager's settings -------------------------------------------------------------------


def test_the_managers_resolution_ttl_is_read_and_given_to_onm_manager_serve() -> None:
    topology = loads("manager: {resolution_ttl: 6}\n" + BASE)
    assert topology.manager == ManagerSpec(resolution_ttl=6.0)
    assert topology.manager.argv() == ("--resolution-ttl", "6")
    assert loads(BASE).manager == ManagerSpec()
    assert loads(BASE).manager.argv() == ()  # the manager's own default


def test_the_resolution_ttl_is_in_the_digest_and_none_keeps_the_old_one() -> None:
    short = loads("manager: {resolution_ttl: 6}\n" + BASE).digest()
    assert short != loads(BASE).digest()
    assert short != loads("manager: {resolution_ttl: 8}\n" + BASE).digest()
    assert loads("manager: {}\n" + BASE).digest() == loads(BASE).digest()


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("1", "must be between 5 and 86400 seconds, got 1"),
        ("90000", "must be between 5 and 86400 seconds, got 90000"),
        ("6s", "must be a number (seconds)"),
    ],
)
def test_a_resolution_ttl_the_manager_would_refuse_is_refused_here(
    written: str, message: str
) -> None:
    text = f"manager:\n  resolution_ttl: {written}\n" + BASE
    assert error_of(text) == f"lab.yaml:2: manager.resolution_ttl: {message}"


def test_an_unknown_manager_setting_is_refused() -> None:
    text = "manager: {resolution_tll: 6}\n" + BASE
    assert error_of(text) == (
        "lab.yaml:1: manager.resolution_tll: unknown key (expected one of: resolution_ttl)"
    )
