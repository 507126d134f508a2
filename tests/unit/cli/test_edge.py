"""`onm external`, `onm host create --role edge`, `onm edge-pool` and `onm route` against a
real manager process (issue #10): the issue's own commands, and the errors a careless operator
meets, each one line naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from onm.addressing import HostPrefix
from onm.api.client import Client
from onm.errors import InvalidInputError
from support.cli import Onm, failed, new_location, unique
from support.manager import ManagerProcess, running_manager


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagerProcess]:
    with running_manager(tmp_path_factory.mktemp("edge") / "m") as process:
        yield process


@pytest.fixture
def onm(manager: ManagerProcess) -> Onm:
    return Onm(manager)


@pytest.fixture
def world(onm: Onm) -> dict[str, Any]:
    tenant, network, internet = unique("t"), unique("z"), unique("internet")
    onm.ok("tenant", "create", tenant)
    onm.ok("network", "create", network, "--tenant", tenant, "--cidr", "10.0.0.0/24")
    onm.ok("external", "create", internet, "--cidr", "30.0.0.0/16")
    gateways = {}
    for name in ("gw1", "gw2"):
        host = unique(name)
        prefix = str(HostPrefix(new_location()))
        onm.ok("host", "create", host, "--prefix", prefix, "--role", "edge", "--external", internet)
        gateways[name] = host
    return {"network": f"{tenant}/{network}", "internet": internet, "hosts": gateways}


def test_the_issues_commands(onm: Onm, world: dict[str, Any]) -> None:
    net, gw = world["network"], world["hosts"]
    made = onm.json("edge-pool", "create", "egress", "--network", net, "--nat", "snat",
                    "--hash", "src,dst")  # fmt: skip
    assert (made["nat"], made["hash_fields"], made["gateways"]) == ("snat", ["src", "dst"], [])
    onm.ok("edge-pool", "gateway", "add", f"{net}/egress", "e1", "--host", gw["gw1"],
           "--external-ip", "30.0.100.1")  # fmt: skip
    onm.ok("edge-pool", "gateway", "add", f"{net}/egress", "e2", "--host", gw["gw2"],
           "--external-ip", "30.0.100.2")  # fmt: skip
    route = onm.json("route", "add", "0.0.0.0/0", "--network", net, "--edge-pool", "egress")
    assert route["prefix"] == "0.0.0.0/0"
    shown = onm.json("edge-pool", "show", f"{net}/egress")
    assert [(g["name"], g["external_ip"], g["state"]) for g in shown["gateways"]] == [
        ("e1", "30.0.100.1", "active"),
        ("e2", "30.0.100.2", "active"),
    ]
    text = onm.ok("edge-pool", "show", f"{net}/egress")
    assert "30.0.100.2" in text and "src,dst" in text
    drained = onm.json("edge-pool", "gateway", "set", f"{net}/egress", "e2", "--state", "draining")
    assert drained["gateways"][1]["state"] == "draining"
    onm.ok("edge-pool", "set", f"{net}/egress", "--hash", "src,dst,proto,sport,dport")
    assert "0.0.0.0/0" in onm.ok("route", "list", "--network", net)
    line = failed(onm("edge-pool", "delete", f"{net}/egress"))
    assert "route 0.0.0.0/0" in line and "delete the route first" in line
    onm.ok("route", "delete", "0.0.0.0/0", "--network", net)
    onm.ok("edge-pool", "gateway", "remove", f"{net}/egress", "e1")
    onm.ok("edge-pool", "delete", f"{net}/egress")
    assert "no edge pools" in onm.ok("edge-pool", "list", "--network", net)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--hash", "src,port"], "hash: 'port' is not a field"),
        (["--nat", "masq"], "nat: 'masq' is not one of snat, none"),
        (["--split-above", "1e9"], "split_above: only a pool without NAT splits"),
    ],
)
def test_bad_edge_pools_are_one_line_naming_the_field(
    onm: Onm, world: dict[str, Any], args: list[str], words: str
) -> None:
    line = failed(onm("edge-pool", "create", "p", "--network", world["network"], *args))
    assert words in line, line


def test_bad_gateways_and_routes_are_one_line_naming_the_field(
    onm: Onm, world: dict[str, Any]
) -> None:
    net = world["network"]
    onm.ok("edge-pool", "create", "egress", "--network", net)
    node_host = unique("plain")
    onm.ok("host", "create", node_host, "--prefix", str(HostPrefix(new_location())))
    cases = [
        (["edge-pool", "gateway", "add", f"{net}/egress", "e1", "--host", node_host,
          "--external-ip", "30.0.100.1"], "host: host"),
        (["edge-pool", "gateway", "add", f"{net}/egress", "e1", "--host", world["hosts"]["gw1"],
          "--external-ip", "31.0.0.1"], "external_ip: 31.0.0.1 is not a host address"),
        (["route", "add", "10.0.0.0/25", "--network", net, "--edge-pool", "egress"],
         "prefix: 10.0.0.0/25 is inside network"),
        (["route", "add", "not-a-cidr", "--network", net, "--edge-pool", "egress"],
         "prefix: 'not-a-cidr' is not an IPv4 CIDR"),
        (["host", "create", unique("gw"), "--prefix", str(HostPrefix(new_location())),
          "--role", "edge"], "external: an edge host names its external network"),
    ]  # fmt: skip
    for args, words in cases:
        line = failed(onm(*args))
        assert words in line, (args, line)


def test_firewall_rules_and_public_ips(onm: Onm, world: dict[str, Any]) -> None:
    """The issue's `onm rule` and `onm node public-ip` commands, and `edge-pool show`."""
    net, gw = world["network"], world["hosts"]
    pool = f"{net}/egress"
    onm.ok("edge-pool", "create", "egress", "--network", net)
    onm.ok("edge-pool", "gateway", "add", pool, "e1", "--host", gw["gw1"],
           "--external-ip", "30.0.100.1")  # fmt: skip
    node_host = unique("plain")
    onm.ok("host", "create", node_host, "--prefix", str(HostPrefix(new_location())))
    onm.ok("node", "create", "a", "--network", net, "--host", node_host, "--ip", "10.0.0.2")
    deny = onm.json("rule", "add", "--edge-pool", pool, "--direction", "egress", "--proto", "tcp",
                    "--port", "25", "--action", "deny")  # fmt: skip
    assert (deny["position"], deny["ports"], deny["action"]) == (1, [25, 25], "deny")
    first = onm.json("rule", "add", "--edge-pool", pool, "--direction", "ingress", "--proto",
                     "udp", "--port", "1000-2000", "--remote", "192.0.2.0/24", "--action",
                     "allow", "--position", "1")  # fmt: skip
    listed = onm.json("rule", "list", "--edge-pool", pool)
    assert [r["id"] for r in listed] == [first["id"], deny["id"]]
    assert "1000-2000" in onm.ok("rule", "list", "--edge-pool", pool)
    text = onm.ok("node", "public-ip", "add", f"{net}/a", "--edge-pool", "egress",
                  "--ip", "30.0.100.50")  # fmt: skip
    assert "30.0.100.50" in text and "held by gateway e1" in text
    [public] = onm.json("node", "public-ip", "list", f"{net}/a")
    assert (public["ip"], public["node"], public["gateway"]) == ("30.0.100.50", "a", "e1")
    shown = onm.json("edge-pool", "show", pool)
    assert [r["position"] for r in shown["rules"]] == [1, 2]
    assert [p["ip"] for p in shown["public_ips"]] == ["30.0.100.50"]
    human = onm.ok("edge-pool", "show", pool)
    assert deny["id"] in human and "30.0.100.50" in human
    onm.ok("rule", "delete", "--edge-pool", pool, first["id"])
    assert [r["position"] for r in onm.json("rule", "list", "--edge-pool", pool)] == [1]
    onm.ok("node", "public-ip", "remove", f"{net}/a", "--ip", "30.0.100.50")
    assert "no public IPs" in onm.ok("node", "public-ip", "list", f"{net}/a")
    cases = [
        (["rule", "add", "--edge-pool", pool, "--direction", "egress", "--proto", "tcp",
          "--port", "2000-1000", "--action", "deny"], "ports: '2000-1000' is reversed"),
        (["rule", "add", "--edge-pool", pool, "--direction", "egress", "--proto", "icmp",
          "--port", "25", "--action", "deny"], "ports: ports need proto tcp or udp"),
        (["rule", "add", "--edge-pool", pool, "--direction", "egress", "--remote", "300.0.0.0/8",
          "--action", "deny"], "remote: '300.0.0.0/8' is not an IPv4 CIDR"),
        (["rule", "add", "--edge-pool", pool, "--direction", "up", "--action", "deny"],
         "direction: 'up' is not one of egress, ingress"),
        (["node", "public-ip", "add", f"{net}/a", "--edge-pool", "egress", "--ip", "40.0.0.1"],
         "ip: 40.0.0.1 is not a host address"),
        (["node", "public-ip", "add", f"{net}/a", "--edge-pool", "egress", "--ip", "30.0.100.1"],
         "ip: 30.0.100.1 is gateway 'e1'"),
    ]  # fmt: skip
    for args, words in cases:
        line = failed(onm(*args))
        assert words in line, (args, line)


def test_show_gives_each_gateways_health_and_traffic_and_rebalance_moves_flows(
    onm: Onm, manager: ManagerProcess
) -> None:
    tenant, network, internet = unique("t"), unique("z"), unique("internet")
    onm.ok("tenant", "create", tenant)
    onm.ok("network", "create", network, "--tenant", tenant, "--cidr", "10.0.0.0/24")
    onm.ok("external", "create", internet, "--cidr", "30.0.0.0/16")
    net, tokens = f"{tenant}/{network}", {}
    onm.ok("edge-pool", "create", "egress", "--network", net)
    for i, name in enumerate(("gw1", "gw2"), start=1):
        host = unique(name)
        made = onm.json("host", "create", host, "--prefix", str(HostPrefix(new_location())),
                        "--role", "edge", "--external", internet)  # fmt: skip
        tokens[name] = made["token"]
        onm.ok("edge-pool", "gateway", "add", f"{net}/egress", f"e{i}", "--host", host,
               "--external-ip", f"30.0.100.{i}")  # fmt: skip
    shown = onm.json("edge-pool", "show", f"{net}/egress")
    [e1, e2] = shown["gateway_health"]
    assert (e1["name"], e1["health"], e1["state"], e1["heard"]) == ("e1", "unknown", "active", [])
    with Client(manager.url, tokens["gw1"]) as client:  # gw1's agent serves e1
        [host] = client.list_hosts()
        client.report_gateways(
            host.name,
            [
                {
                    "gateway": e1["id"],
                    "alive": True,
                    "pinned": 3,
                    "flows": 7,
                    "packets": 70,
                    "bytes": 7000,
                }
            ],
        )
    shown = onm.json("edge-pool", "show", f"{net}/egress")
    [e1, e2] = shown["gateway_health"]
    assert (e1["health"], e1["why"], e1["pinned"], e1["flows"]) == ("up", "serving", 3, 7)
    assert (e1["packets"], e1["bytes"], [h["host"] for h in e1["heard"]]) == (70, 7000, [host.name])
    assert e2["health"] == "unknown"
    text = onm.ok("edge-pool", "show", f"{net}/egress")
    assert "HEALTH" in text and "serving" in text and "7000" in text
    kinds = [e["kind"] for e in onm.json("events", "--limit", "20")]
    assert "gateway.up" in kinds

    assert onm.json("edge-pool", "rebalance", f"{net}/egress")["rebalance"] == 1
    assert "rebalance 2" in onm.ok("edge-pool", "rebalance", f"{net}/egress")
    assert onm.json("edge-pool", "set", f"{net}/egress", "--rebalance")["rebalance"] == 3
    kinds = [e["kind"] for e in onm.json("events", "--limit", "20")]
    assert kinds.count("edge_pool.rebalanced") == 3


def test_show_and_rule_list_give_the_packets_each_rule_and_default_took(
    onm: Onm, manager: ManagerProcess, world: dict[str, Any]
) -> None:
    """What the gateway's own agent counted (its gateway report) is what the operator sees."""
    net, host = world["network"], unique("gw")
    pool = f"{net}/counted"
    onm.ok("edge-pool", "create", "counted", "--network", net)
    made = onm.json("host", "create", host, "--prefix", str(HostPrefix(new_location())),
                    "--role", "edge", "--external", world["internet"])  # fmt: skip
    shown = onm.json("edge-pool", "gateway", "add", pool, "e1", "--host", host,
                     "--external-ip", "30.0.100.9")  # fmt: skip
    gateway = shown["gateways"][0]["id"]
    deny = onm.json("rule", "add", "--edge-pool", pool, "--direction", "egress", "--proto", "tcp",
                    "--port", "25", "--action", "deny")  # fmt: skip
    assert onm.json("rule", "list", "--edge-pool", pool)[0]["packets"] == 0
    counts = {
        "gateway": gateway,
        "alive": True,
        "rules": [{"rule": deny["id"], "packets": 41}, {"rule": "rul-deleted", "packets": 1}],
        "defaults": [{"verdict": "egress-allowed", "packets": 17}],
    }
    with Client(manager.url, made["token"]) as client:
        client.report_gateways(host, [counts])
        too_many = [{"rule": f"rul-{i}", "packets": 1} for i in range(257)]
        with pytest.raises(InvalidInputError, match="at most 256") as caught:
            client.report_gateways(host, [counts | {"rules": too_many}])
        assert caught.value.field == "gateways.0.rules"
    [listed] = onm.json("rule", "list", "--edge-pool", pool)
    assert (listed["id"], listed["packets"]) == (deny["id"], 41)
    table = onm.ok("rule", "list", "--edge-pool", pool)
    assert "PACKETS" in table and "41" in table
    shown = onm.json("edge-pool", "show", pool)
    assert [(r["action"], r["packets"]) for r in shown["rules"]] == [("deny", 41)]
    assert shown["defaults"] == [{"verdict": "egress-allowed", "packets": 17}]
    human = onm.ok("edge-pool", "show", pool)
    assert "PACKETS" in human and "egress-allowed" in human and "17" in human
