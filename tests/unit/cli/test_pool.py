"""`onm pool` against a real manager process (issue #9): create with every option, members,
show, set, delete, and the errors a careless operator meets, each one line naming the field."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onm.addressing import HostPrefix, Location
from onm.cli.pool import parse_check
from onm.errors import InvalidInputError
from support.cli import Onm, failed, unique
from support.manager import ManagerProcess, running_manager


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagerProcess]:
    with running_manager(tmp_path_factory.mktemp("pools") / "m") as process:
        yield process


@pytest.fixture
def onm(manager: ManagerProcess) -> Onm:
    return Onm(manager)


HOSTS = iter(range(1, 250))


@pytest.fixture
def znet(onm: Onm) -> dict[str, Any]:
    """Seed 0 FIG. 2B: J on one host, G and H (the pool's members) on two others; H is in J's
    area, G in another locale."""
    tenant, network = unique("t"), unique("z")
    onm.ok("tenant", "create", tenant)
    onm.ok("network", "create", network, "--tenant", tenant, "--cidr", "10.0.0.0/24")
    n = next(HOSTS)
    where = {"j": Location(1, 1, 1, n), "h": Location(1, 1, 2, n), "g": Location(2, 1, 1, n)}
    hosts, tokens = {}, {}
    for name, location in where.items():
        host = unique(f"host{name}")
        made = onm.json("host", "create", host, "--prefix", str(HostPrefix(location)))
        hosts[name], tokens[name] = host, made["token"]
    ref = f"{tenant}/{network}"
    for name, ip in (("j", "10.0.0.9"), ("g", "10.0.0.7"), ("h", "10.0.0.8")):
        onm.ok("node", "create", name, "--network", ref, "--host", hosts[name], "--ip", ip)
    return {"network": ref, "hosts": hosts, "tokens": tokens}


def test_a_pool_is_created_shown_changed_and_deleted(onm: Onm, znet: dict[str, Any]) -> None:
    net = znet["network"]
    pool = onm.json(
        "pool", "create", "web", "--network", net, "--ip", "10.0.0.3", "--policy", "nearest",
        "--check", "http:8080/healthz", "--interval", "0.5", "--timeout", "0.5",
        "--rise", "2", "--fall", "2", "--all-down", "fail-closed",
    )  # fmt: skip
    assert (pool["ip"], pool["policy"], pool["state"], pool["members"]) == (
        "10.0.0.3",
        "nearest",
        "live",
        [],
    )
    assert pool["check"] == {
        "kind": "http", "port": 8080, "path": "/healthz", "interval": 0.5, "timeout": 0.5,
        "rise": 2, "fall": 2,
    }  # fmt: skip
    onm.ok("pool", "member", "add", f"{net}/web", "g")
    shown = onm.json("pool", "member", "add", f"{net}/web", "h")
    assert [(m["node"], m["rank"], m["health"]) for m in shown["members"]] == [
        ("g", 0, "initial"),
        ("h", 1, "initial"),
    ]
    text = onm.ok("pool", "show", f"{net}/web")
    assert "http:8080/healthz (every 0.5s, timeout 0.5s, rise 2, fall 2)" in text
    assert "initial" in text
    changed = onm.json("pool", "set", f"{net}/web", "--policy", "hash", "--check", "tcp:8080")
    assert changed["policy"] == "hash"
    assert (changed["check"]["kind"], changed["check"]["port"]) == ("tcp", 8080)
    assert changed["check"]["interval"] == 0.5  # kept
    listed = onm.ok("pool", "list", "--network", net)
    assert "web" in listed and "0/2" in listed
    onm.ok("pool", "member", "remove", f"{net}/web", "g")
    assert [m["node"] for m in onm.json("pool", "show", f"{net}/web")["members"]] == ["h"]
    onm.ok("pool", "delete", f"{net}/web")
    assert "no pool" in failed(onm("pool", "show", f"{net}/web"))


def test_a_pool_ip_resolves_to_the_nearest_healthy_member(
    onm: Onm, znet: dict[str, Any], manager: ManagerProcess
) -> None:
    """FIG. 2B: J resolves 10.0.0.3 and gets H (its own area), G as the alternative; check
    `none` members are up from the start (passive only)."""
    net = znet["network"]
    onm.ok(
        "pool", "create", "web", "--network", net, "--ip", "10.0.0.3", "--check", "none",
        "--member", "g", "--member", "h",
    )  # fmt: skip
    answer = onm.json("resolve", "--network", net, "--from", "j", "10.0.0.3")
    pool = onm.json("pool", "show", f"{net}/web")
    assert answer["pool_id"] == pool["id"] and answer["mac"] == pool["mac"]
    nodes = {n["name"]: n["id"] for n in onm.json("node", "list", "--network", net)}
    assert answer["target_id"] == nodes["h"]
    assert [a["node_id"] for a in answer["alternatives"]] == [nodes["h"], nodes["g"]]
    assert answer["substrate_address"] == answer["alternatives"][0]["substrate_address"]


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (["--policy", "fastest"], "policy", "'fastest' is not one of: nearest"),
        (
            ["--check", "http:80/x", "--interval", "0.5", "--timeout", "2"],
            "check.timeout",
            "longer",
        ),
        (["--check", "tcp"], "check", "write tcp:PORT"),
        (["--check", "tcp:70000"], "check.port", "outside 1..65535"),
        (["--check", "icmp", "--rise", "0"], "check.rise", "outside 1..100"),
        (["--check", "icmp", "--interval", "0.01"], "check.interval", "outside"),
        (["--rotate-packets", "100"], "rotate_packets", "ranked policy only"),
        (["--all-down", "maybe"], "all_down", "not one of"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(
    onm: Onm, znet: dict[str, Any], args: list[str], field: str, words: str
) -> None:
    line = failed(
        onm("pool", "create", "p", "--network", znet["network"], "--ip", "10.0.0.4", *args)
    )
    assert field in line and words in line, line
    assert onm.json("pool", "list", "--network", znet["network"]) == []  # nothing half-written


@pytest.mark.parametrize(
    ("ip", "words"),
    [
        ("10.9.0.3", "not inside network"),
        ("10.0.0.1", "gateway"),
        ("10.0.0.255", "broadcast"),
        ("10.0.0.7", "node 'g'"),
    ],
)
def test_a_pool_ip_must_be_free_and_inside(
    onm: Onm, znet: dict[str, Any], ip: str, words: str
) -> None:
    line = failed(onm("pool", "create", "p", "--network", znet["network"], "--ip", ip))
    assert words in line, line


def test_members_must_be_nodes_of_the_network_and_ips_stay_apart(
    onm: Onm, znet: dict[str, Any]
) -> None:
    net = znet["network"]
    onm.ok("pool", "create", "web", "--network", net, "--ip", "10.0.0.3", "--member", "g")
    other = unique("o")
    tenant = net.split("/")[0]
    onm.ok("network", "create", other, "--tenant", tenant, "--cidr", "10.1.0.0/24")
    onm.ok("node", "create", "x", "--network", f"{tenant}/{other}", "--host", znet["hosts"]["g"],
           "--ip", "10.1.0.5")  # fmt: skip
    assert "no node 'x' in network" in failed(onm("pool", "member", "add", f"{net}/web", "x"))
    assert "already a member" in failed(onm("pool", "member", "add", f"{net}/web", "g"))
    taken = onm(
        "node", "create", "k", "--network", net, "--host", znet["hosts"]["j"], "--ip", "10.0.0.3"
    )
    assert "pool 'web'" in failed(taken)
    partial = onm("pool", "create", "two", "--network", net, "--ip", "10.0.0.5", "--member", "g",
                  "--member", "nobody")  # fmt: skip
    assert "no node 'nobody'" in failed(partial)
    assert [p["name"] for p in onm.json("pool", "list", "--network", net)] == ["web"]


def test_parse_check() -> None:
    assert parse_check("icmp") == {"kind": "icmp"}
    assert parse_check("tcp:5432") == {"kind": "tcp", "port": 5432}
    assert parse_check("http:8080/healthz") == {"kind": "http", "port": 8080, "path": "/healthz"}
    assert parse_check("http:80") == {"kind": "http", "port": 80, "path": "/"}
    for bad in ("udp:53", "icmp:1", "tcp:80/x", "http:/x"):
        with pytest.raises(InvalidInputError):
            parse_check(bad)


# --- actions on criteria ----------------------------------------------------------------------


class Receiver:
    """A webhook endpoint on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.received = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def report_down(manager: ManagerProcess, znet: dict[str, Any], pool_id: str, node_id: str) -> None:
    host = znet["hosts"]["g"]
    response = httpx.post(
        f"{manager.url}/v1/hosts/{host}/health",
        json={"members": [{"pool": pool_id, "node": node_id, "health": "down"}]},
        headers={"Authorization": f"Bearer {znet['tokens']['g']}"},
    )
    assert response.status_code == 204, response.text


def test_actions_fire_when_healthy_members_drop_below_two(
    onm: Onm, znet: dict[str, Any], manager: ManagerProcess, tmp_path: Path
) -> None:
    receiver = Receiver()
    ran = tmp_path / "ran.json"
    net = znet["network"]
    pool = onm.json(
        "pool", "create", "web", "--network", net, "--ip", "10.0.0.3", "--check", "none",
        "--member", "g", "--member", "h",
        "--on", "healthy<2", "--webhook", receiver.url, "--secret", "s3cret",
    )  # fmt: skip
    changed = onm.json(
        "pool", "set", f"{net}/web", "--on", "healthy<2", "--run", f"sh -c 'cat > {ran}'"
    )
    assert [(a["on"], a["kind"], a["signed"]) for a in changed["actions"]] == [
        ("healthy<2", "webhook", True),
        ("healthy<2", "run", False),
    ]
    assert "s3cret" not in json.dumps(changed)
    nodes = {n["name"]: n["id"] for n in onm.json("node", "list", "--network", net)}
    report_down(manager, znet, pool["id"], nodes["g"])
    deadline = time.monotonic() + 15

    def written() -> bool:  # the command's `cat >` makes the file before it has written it
        try:
            json.loads(ran.read_text())
        except (OSError, ValueError):
            return False
        return True

    while (not receiver.received or not written()) and time.monotonic() < deadline:
        time.sleep(0.1)
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Onm-Signature"] == expected
    sent = json.loads(body)
    assert (sent["pool"], sent["criterion"], sent["healthy"]) == ("web", "healthy<2", 1)
    assert {m["node"]: m["health"] for m in sent["members"]} == {"g": "down", "h": "up"}
    assert json.loads(ran.read_text()) == sent
    report_down(manager, znet, pool["id"], nodes["g"])  # still 1 healthy: no new action
    time.sleep(1.5)
    assert len(receiver.received) == 1
    kinds = [e["kind"] for e in onm.json("events", "-n", "50")]
    assert kinds.count("pool.action_delivered") == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--on", "healthy<<2", "--webhook", "http://x"], "not a criterion"),
        (["--on", "healthy<2", "--webhook", "ftp://x"], "not an http(s) URL"),
        (["--on", "healthy<2"], "one of webhook or run"),
        (["--on", "healthy<2", "--run", "true", "--secret", "x"], "only a webhook is signed"),
        (["--webhook", "http://x"], "--on"),
    ],
)
def test_bad_actions_are_refused(
    onm: Onm, znet: dict[str, Any], args: list[str], words: str
) -> None:
    line = failed(
        onm("pool", "create", "p", "--network", znet["network"], "--ip", "10.0.0.4", *args)
    )
    assert words in line, line
