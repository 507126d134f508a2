"""Firewall rules and public IPs on an edge pool, end to end in the lab (issue #10; seed 1):
a rule denying a port stops node a's connections to it at every gateway while other ports
pass, and the gateways' metrics count the denials per rule, as does `onm edge-pool show` (the
gateways' agents report their counts to the manager); a public IP makes an HTTP server
inside node a reachable from the external network (1:1 NAT at the gateway holding it), the
server sees the client's real address, replies leave where they came in, and an ingress rule
applies to it; unsolicited traffic to a gateway's SNAT address is dropped and counted (in the
metrics and in the pool's `defaults`).

    h1: a 10.0.0.2 (runs the EXTERNAL server too: `/` answers the peer's address, 25 a banner)
    gw1, gw2: edge hosts on `internet` 30.0.0.0/16; web 30.0.2.2 (the same server)
    egress (znet): e1 30.0.100.1 (gw1), e2 30.0.100.2 (gw2), probed every 0.2 s;
    route 0.0.0.0/0 -> egress.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from onm.lab.plan import Role
from support.edge_lab import WEB, EdgeTopology, Pool, edge_lab, get
from support.netns_tools import in_netns
from support.overlay_lab import Lab, eventually, onm

PUBLIC = "30.0.100.50"
SNAT = {"gw1": "30.0.100.1", "gw2": "30.0.100.2"}
TOPOLOGY = EdgeTopology(pools=(Pool(hash=None),))
POOL = "znet/egress"
RULES = "onm_agent_gateway_rule_packets_total"
DEFAULTS = "onm_agent_gateway_default_packets_total"


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with edge_lab(tmp_path_factory, "er", TOPOLOGY, servers_in=["a"]) as built:
        yield built


def cli(lab: Lab, *args: str) -> str:
    """`onm ARGS --json` as a user runs it against the lab's manager; its output."""
    record = lab.record()
    done = onm(*args, "--url", record.manager_url, "--token", f"@{record.admin_token_file}")
    return done.stdout


def banner(namespace: str, host: str, timeout: float = 3) -> str | None:
    """What the port-25 listener at `host` greets with (None: no connection)."""
    script = (
        "import socket, sys\n"
        "try:\n"
        f"    s = socket.create_connection(({host!r}, 25), timeout={timeout})\n"
        "    print(s.recv(100).decode().strip())\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    done = subprocess.run(
        in_netns(namespace, sys.executable, "-c", script),
        capture_output=True,
        text=True,
        timeout=timeout + 5,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def counters(lab: Lab, family: str, label: str, value: str) -> dict[str, float]:
    """gateway host -> its agent's sample of `family` with `label` = `value` (absent: none)."""
    found = {}
    for host in SNAT:
        for key, sample in lab.metrics(host).items():
            if key.startswith(family + "{") and f'{label}="{value}"' in key:
                found[host] = sample
    return found


def in_show(lab: Lab, least: float, rule_id: str | None = None, verdict: str = "") -> int | None:
    """The packets `onm edge-pool show --json` gives the rule (or default verdict), once at
    least `least` (what the gateways' metrics said before: their agents report every 2 s)."""
    pool = json.loads(cli(lab, "edge-pool", "show", POOL, "--json"))
    if rule_id is not None:
        packets = sum(r["packets"] for r in pool["rules"] if r["id"] == rule_id)
    else:
        packets = sum(d["packets"] for d in pool["defaults"] if d["verdict"] == verdict)
    return packets if packets >= least else None


def applied(lab: Lab, rule_id: str) -> bool:
    """Do both gateways' rulesets hold `rule_id` (its counter is exported)?"""
    return len(counters(lab, RULES, "rule", rule_id)) == len(SNAT)


def test_a_denied_port_is_stopped_and_counted_while_others_pass(lab: Lab) -> None:
    node = lab.ns("a")
    seen = eventually(lambda: get(node, f"http://{WEB}/"), "a reaches web", 20)
    assert seen in SNAT.values()
    assert banner(node, WEB) in {f"220 {ip}" for ip in SNAT.values()}  # port 25 open before
    rule = json.loads(
        cli(lab, "rule", "add", "--edge-pool", POOL, "--direction", "egress", "--proto", "tcp",
            "--port", "25", "--action", "deny", "--json")
    )  # fmt: skip
    eventually(lambda: applied(lab, rule["id"]), "both gateways hold the rule", 20)
    assert banner(node, WEB) is None  # dropped at the gateway: the connection times out
    assert get(node, f"http://{WEB}/") in SNAT.values()  # port 80 still passes
    denied = counters(lab, RULES, "rule", rule["id"])
    assert sum(denied.values()) > 0, denied  # a's SYNs (and retries) to port 25
    # The gateways' agents report their counts: the manager sums them per rule.
    total = sum(denied.values())
    eventually(lambda: in_show(lab, total, rule["id"]), "the denials in edge-pool show", 10)
    [listed] = json.loads(cli(lab, "rule", "list", "--edge-pool", POOL, "--json"))
    assert listed["packets"] >= total
    shown = json.loads(cli(lab, "edge-pool", "show", POOL, "--json"))
    assert [(r["id"], r["position"], r["ports"]) for r in shown["rules"]] == [
        (rule["id"], 1, [25, 25])
    ]
    cli(lab, "rule", "delete", "--edge-pool", POOL, rule["id"])
    eventually(lambda: banner(node, WEB), "port 25 open again", 20)


def test_a_public_ip_reaches_a_server_in_the_node(lab: Lab) -> None:
    web = lab.record().namespace_of(Role.SERVER, "web")
    assert web is not None
    added = json.loads(
        cli(lab, "node", "public-ip", "add", "znet/a", "--edge-pool", "egress", "--ip", PUBLIC,
            "--json")
    )  # fmt: skip
    holder = added["gateway"]
    assert holder in {"e1", "e2"}
    # The node's HTTP server answers with the peer address it sees: the client's own.
    seen = eventually(lambda: get(web, f"http://{PUBLIC}/"), "web reaches a's public IP", 20)
    assert seen == WEB, lab.logs()
    exec_seen = onm("lab", "exec", *lab.flags, "web", "--", "curl", "-s", "-m", "3",
                    f"http://{PUBLIC}/")  # fmt: skip
    assert exec_seen.stdout.strip() == WEB
    # a's own connections now leave from its public IP (through the holder).
    assert get(lab.ns("a"), f"http://{WEB}/") == PUBLIC
    shown = json.loads(cli(lab, "edge-pool", "show", POOL, "--json"))
    assert [(p["ip"], p["node"], p["gateway"]) for p in shown["public_ips"]] == [
        (PUBLIC, "a", holder)
    ]
    # Unsolicited connections to a gateway's SNAT address are dropped and counted.
    for host, address in SNAT.items():
        assert get(web, f"http://{address}/", timeout=2) is None, host
        dropped = counters(lab, DEFAULTS, "verdict", "ingress-dropped")
        assert dropped.get(host, 0) > 0, (host, dropped)
    total = sum(counters(lab, DEFAULTS, "verdict", "ingress-dropped").values())
    eventually(lambda: in_show(lab, total, verdict="ingress-dropped"), "the drops in show", 10)
    # An ingress rule applies to the public IP: port 25 closed, 80 open.
    assert banner(web, PUBLIC) == f"220 {WEB}"
    rule = json.loads(
        cli(lab, "rule", "add", "--edge-pool", POOL, "--direction", "ingress", "--proto", "tcp",
            "--port", "25", "--action", "deny", "--json")
    )  # fmt: skip
    eventually(lambda: applied(lab, rule["id"]), "both gateways hold the ingress rule", 20)
    assert banner(web, PUBLIC) is None
    assert get(web, f"http://{PUBLIC}/") == WEB
    assert sum(counters(lab, RULES, "rule", rule["id"]).values()) > 0
    cli(lab, "rule", "delete", "--edge-pool", POOL, rule["id"])
    cli(lab, "node", "public-ip", "remove", "znet/a", "--ip", PUBLIC)
    eventually(
        lambda: get(lab.ns("a"), f"http://{WEB}/") in SNAT.values() or None,
        "a leaves from the SNAT addresses again",
        20,
    )
