"""Pool health checks, all-down modes, new members and actions in the lab, driven as a user
would (issue #9; seed 0's monitored alternative destinations): pools made with `onm pool`
against the lab's manager, members made to fail the way they would fail in life (echo ignored,
service stopped), requesters' real ping and HTTP from their namespaces.

- `icmp` and `tcp:PORT` checks take a member down and back up, and the requester's traffic
  moves with them (`http` is `test_pools.py`'s);
- with every member's check failing, `fail-open` still carries traffic to them and
  `fail-closed` answers at once (ICMP host unreachable, so curl fails fast);
- a new member is `initial`, then `down` while its check fails, and takes no traffic until
  its first pass;
- a pool's actions: when too few members are healthy the manager runs a command (the JSON
  body on stdin) and POSTs a signed webhook, each an event.
(`none`'s passive liveness is not built yet.)
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.datapaths import lab_name
from support.netns_tools import in_netns
from support.overlay_lab import Lab, answers, eventually, running_lab
from support.pool_testbed import (
    FAST_CHECK,
    HTTP_CHECK,
    PORT,
    PORTS,
    TOPOLOGY,
    Pools,
    Services,
    answer,
    events,
    fetch,
    pools,
    services,
    settled,
)

__all__ = ["pools", "services"]  # the fixtures


@pytest.fixture(scope="module")
def lab(datapath: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory, lab_name("ppc", datapath), TOPOLOGY, PORTS, 20) as built:
        yield built


def ignore_echo(lab: Lab, node: str, ignore: bool) -> None:
    """The member's own stack stops (or starts again) answering pings."""
    setting = f"net.ipv4.icmp_echo_ignore_all={int(ignore)}"
    command = in_netns(lab.ns(node), "sysctl", "-q", "-w", setting)
    subprocess.run(command, check=True, capture_output=True, timeout=10)


def test_icmp_check_follows_a_member_that_stops_answering_pings(lab: Lab, pools: Pools) -> None:
    pools.create("pinged", ["a", "b"], "--policy", "ranked", "--check", "icmp", *FAST_CHECK)
    pools.wait_health("pinged", {"a": "up", "b": "up"})
    ip = pools.ip("pinged")
    assert answer(lab, "j", ip) == "a"  # rank 1
    assert answers(lab, "j", ip)

    ignore_echo(lab, "a", True)
    try:
        pools.wait_health("pinged", {"a": "down", "b": "up"})
        eventually(lambda: answers(lab, "j", ip), "j's ping answered (by b: a ignores echo)")
        assert answer(lab, "j", ip) == "b"
    finally:
        ignore_echo(lab, "a", False)
    pools.wait_health("pinged", {"a": "up"})
    eventually(lambda: fetch(lab, "j", ip, 0.5)[0] == "a", "j back on a")


def test_tcp_check_follows_a_member_whose_listener_stops(
    lab: Lab, pools: Pools, services: Services
) -> None:
    pools.create("syn", ["a", "b"], "--policy", "ranked", "--check", f"tcp:{PORT}", *FAST_CHECK)
    pools.wait_health("syn", {"a": "up", "b": "up"})
    ip = pools.ip("syn")
    assert answer(lab, "j", ip) == "a"

    services.stop("a")  # the port answers with a RST
    pools.wait_health("syn", {"a": "down", "b": "up"})
    eventually(lambda: fetch(lab, "j", ip, 0.5)[0] == "b", "j answered by b")
    services.start("a")
    pools.wait_health("syn", {"a": "up"})
    eventually(lambda: fetch(lab, "j", ip, 0.5)[0] == "a", "j back on a")


def test_all_down_fail_open_still_carries_traffic_fail_closed_fails_fast(
    lab: Lab, pools: Pools
) -> None:
    """Nothing listens on the checked port 9999, so every check fails; the data is HTTP on
    `PORT`, which every member still serves."""
    check = ("--check", "tcp:9999", *FAST_CHECK)
    pools.create("open", ["a", "b"], "--all-down", "fail-open", *check)
    pools.wait_health("open", {"a": "down", "b": "down"})
    ip = pools.ip("open")
    for requester in ("j", "m"):
        assert answer(lab, requester, ip) in {"a", "b"}

    pools.set("open", "--all-down", "fail-closed")

    def fails_fast(requester: str) -> bool:
        who, took = fetch(lab, requester, ip, 5.0)
        return who is None and took < 1.5  # host unreachable at once, no 5 s wait

    settled(lab)  # both requesters' agents have the change
    for requester in ("j", "m"):
        assert fails_fast(requester)
    assert set(pools.health("open").values()) == {"down"}


def test_a_new_member_takes_no_traffic_until_its_first_pass(
    lab: Lab, pools: Pools, services: Services
) -> None:
    pools.create("grow", [], "--policy", "ranked", *HTTP_CHECK)
    pools.add_member("grow", "a", "--rank", "10")
    pools.add_member("grow", "b", "--rank", "20")
    pools.wait_health("grow", {"a": "up", "b": "up"})
    ip = pools.ip("grow")
    assert answer(lab, "j", ip) == "a"

    services.stop("c")  # c ranks first, but nothing answers its check
    added = pools.add_member("grow", "c", "--rank", "1")
    assert {m["node"]: m["health"] for m in added["members"]}["c"] == "initial"
    pools.wait_health("grow", {"c": "down"})
    assert [answer(lab, r, ip) for r in ("j", "k")] == ["a", "a"]  # k asked only now

    services.start("c")
    pools.wait_health("grow", {"c": "up"})
    eventually(lambda: fetch(lab, "l", ip, 0.5)[0] == "c", "l (a new requester) answered by c")


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A receiver on 127.0.0.1 (loopback only): its URL, and what it has been POSTed."""
    received: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Recorder", (Hook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_actions_run_a_command_and_post_a_signed_webhook_when_too_few_are_healthy(
    lab: Lab,
    pools: Pools,
    services: Services,
    webhook: tuple[str, list[tuple[str, dict[str, str], bytes]]],
    tmp_path: Path,
) -> None:
    url, received = webhook
    body_file, env_file = tmp_path / "body.json", tmp_path / "env.txt"
    run = f"""sh -c 'cat > {body_file}; echo "$ONM_POOL $ONM_HEALTHY" > {env_file}'"""
    created = pools.create("acted", ["a", "b"], *HTTP_CHECK)
    pools.wait_health("acted", {"a": "up", "b": "up"})
    pools.set("acted", "--on", "healthy<2", "--run", run)
    shown = pools.set("acted", "--on", "healthy<2", "--webhook", url, "--secret", "s3cret")
    assert [a["kind"] for a in shown["actions"]] == ["run", "webhook"]
    assert "s3cret" not in json.dumps(shown)  # never shown back
    assert not received and not body_file.exists()  # two healthy: nothing yet

    services.stop("a")
    pools.wait_health("acted", {"a": "down"})
    eventually(lambda: env_file.exists() and env_file.read_text().strip() != "", "command ran")
    body = json.loads(body_file.read_text())
    assert (body["pool"], body["pool_id"]) == ("acted", created["id"])
    assert (body["criterion"], body["ip"]) == ("healthy<2", pools.ip("acted"))
    assert body["healthy"] == 1 and {"node": "a", "health": "down"} in body["members"]
    assert env_file.read_text().split() == ["acted", "1"]

    eventually(lambda: len(received) > 0, "the webhook POSTed")
    [(path, headers, raw)] = received
    assert path == "/hook"
    expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert headers["X-Onm-Signature"] == expected
    assert json.loads(raw) == body

    def delivered() -> list[str] | None:
        kinds = sorted(
            f"{e['kind']}:{e['data']['kind']}"
            for e in events(lab, created["id"])
            if e["kind"].startswith("pool.action_")
        )
        return kinds if len(kinds) == 4 else None

    assert eventually(delivered, "delivery events") == [
        "pool.action_delivered:run",
        "pool.action_delivered:webhook",
        "pool.action_queued:run",
        "pool.action_queued:webhook",
    ]
