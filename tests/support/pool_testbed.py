"""A lab for driving pools as a user would (issue #9): four requesters and three members of
one network, an HTTP server on each member, and pools made, changed and deleted with `onm pool`
against the lab's manager. Shared by the pool policy and pool check system tests.

Requesters J, K, L run on host r, M on host t; members A and B on host s, C on host t beside M.
Every member serves `/whoami.txt` (its name) and `/healthz` on `PORT`. A pool made here gets an
IP of its own (never reused, so no requester holds a stale ARP entry for it), which its members
take as a second address, as an operator would configure it on a VM.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.netns_tools import in_netns, ip
from support.overlay_lab import Lab, eventually, onm
from support.servers import SERVE, Background

PORT = 8080
NETWORK = "znet"
REQUESTERS = ("j", "k", "l", "m")
MEMBERS = ("a", "b", "c")
TOPOLOGY = """
hosts:
  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}
  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}
  - {name: t, location: {locale: 2, area: 1, rack: 1, node: 1}}
tenants: [{name: z}]
networks:
  - {name: znet, tenant: z, cidr: 10.0.0.0/24}
nodes:
  - {name: j, network: znet, host: r, ip: 10.0.0.10}
  - {name: k, network: znet, host: r, ip: 10.0.0.11}
  - {name: l, network: znet, host: r, ip: 10.0.0.12}
  - {name: m, network: znet, host: t, ip: 10.0.0.13}
  - {name: a, network: znet, host: s, ip: 10.0.0.20}
  - {name: b, network: znet, host: s, ip: 10.0.0.21}
  - {name: c, network: znet, host: t, ip: 10.0.0.22}
"""
PORTS = {"r": 3, "s": 2, "t": 2}
"""Ports (nodes) each host's agent must have before the lab is ready."""
FAST_CHECK = ("--interval", "0.2", "--timeout", "0.2", "--rise", "1", "--fall", "2")
"""A check every 0.2 s: up on the first pass, down after two failures."""
HTTP_CHECK = ("--check", f"http:{PORT}/healthz", *FAST_CHECK)
FIRST_POOL_IP = ipaddress.IPv4Address("10.0.0.100")


def manager(lab: Lab) -> list[str]:
    """The `--url` and `--token` options that point `onm` at the lab's manager."""
    record = lab.record()
    return ["--url", record.manager_url, "--token", f"@{record.admin_token_file}"]


def fetch(lab: Lab, requester: str, pool_ip: str, timeout: float = 1.0) -> tuple[str | None, float]:
    """`requester` GETs /whoami.txt from the pool: who answered (None: nobody), how long."""
    url = f"http://{pool_ip}:{PORT}/whoami.txt"
    started = time.monotonic()
    done = subprocess.run(
        in_netns(lab.ns(requester), "curl", "-s", "-m", str(timeout), url),
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout if done.returncode == 0 else None), time.monotonic() - started


def answer(lab: Lab, requester: str, pool_ip: str, within: float = 10) -> str:
    """The member that answers `requester` (the first answer in `within` s)."""
    found = eventually(lambda: fetch(lab, requester, pool_ip)[0], f"{requester} answered", within)
    return found


def moved_off(lab: Lab, requester: str, pool_ip: str, member: str, within: float = 10) -> str:
    """The first member other than `member` to answer `requester` (within `within` s)."""

    def other() -> str | None:
        who = fetch(lab, requester, pool_ip, 0.5)[0]
        return None if who == member else who

    return eventually(other, f"{requester} answered by another member than {member}", within)


def settled(lab: Lab, within: float = 30) -> None:
    """Until every host's agent has applied all the manager meant for it (what `onm status`
    shows), so requesters' agents steer by the health the manager holds."""

    def caught_up() -> bool:
        with lab.client() as client:
            return all(h.applied_revision >= h.desired_revision for h in client.status().hosts)

    eventually(caught_up, "every host caught up", within)


def events(lab: Lab, object_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """The latest events about `object_id` (`onm events --json`), oldest first."""
    found = json.loads(onm("events", "--json", "-n", str(limit), *manager(lab)).stdout)
    return [e for e in found if e["object_id"] == object_id]


class Services:
    """An HTTP server on each member, serving /healthz and /whoami.txt (its name)."""

    def __init__(self, lab: Lab, root: Path, members: Iterable[str] = MEMBERS) -> None:
        self.lab, self.root, self.members = lab, root, tuple(members)
        self.background = Background()
        self.running: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str) -> None:
        where = self.root / name
        where.mkdir(exist_ok=True)
        (where / "whoami.txt").write_text(name)
        (where / "healthz").write_text("ok")
        self.running[name] = self.background.start(
            self.lab.ns(name),
            *(sys.executable, "-c", SERVE, "0.0.0.0", str(PORT), str(where)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        process.terminate()
        process.wait(5)

    def restore(self) -> None:
        """Every member serving again (what a test that stopped some leaves behind)."""
        for name in self.members:
            if name not in self.running:
                self.start(name)


class Pools:
    """Pools made with `onm pool create` in the lab, each on an IP of its own; `delete_all`
    removes them and their members' addresses again."""

    next_ip = FIRST_POOL_IP

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.made: dict[str, tuple[str, set[str]]] = {}
        """Pool name -> (its IP, the nodes given that IP as an address)."""

    def _claim_ip(self) -> str:
        found = Pools.next_ip
        Pools.next_ip += 1
        return str(found)

    def _address(self, node: str, pool_ip: str, op: str) -> None:
        ip("-n", self.lab.ns(node), "addr", op, f"{pool_ip}/32", "dev", "eth0")

    def create(self, name: str, members: Iterable[str], *options: str) -> dict[str, Any]:
        """`onm pool create NAME --member ... OPTIONS --json` on a fresh IP: the pool."""
        address = self._claim_ip()
        given = list(members)
        created = onm(
            *("pool", "create", name, "--network", NETWORK, "--ip", address),
            *(f"--member={node}" for node in given),
            *options,
            "--json",
            *manager(self.lab),
        )
        self.made[name] = (address, set())
        for node in given:
            self.give_address(name, node)
        pool: dict[str, Any] = json.loads(created.stdout)
        return pool

    def give_address(self, name: str, node: str) -> None:
        address, holders = self.made[name]
        if node not in holders:
            self._address(node, address, "add")
            holders.add(node)

    def add_member(self, name: str, node: str, *options: str) -> dict[str, Any]:
        """`onm pool member add NAME NODE OPTIONS --json` (the node takes the pool IP first)."""
        self.give_address(name, node)
        added = onm("pool", "member", "add", name, node, *options, "--json", *manager(self.lab))
        pool: dict[str, Any] = json.loads(added.stdout)
        return pool

    def set(self, name: str, *options: str) -> dict[str, Any]:
        changed = onm("pool", "set", f"{NETWORK}/{name}", *options, "--json", *manager(self.lab))
        pool: dict[str, Any] = json.loads(changed.stdout)
        return pool

    def ip(self, name: str) -> str:
        return self.made[name][0]

    def show(self, name: str) -> dict[str, Any]:
        shown = onm("pool", "show", f"{NETWORK}/{name}", "--json", *manager(self.lab))
        pool: dict[str, Any] = json.loads(shown.stdout)
        return pool

    def health(self, name: str) -> dict[str, str]:
        return {m["node"]: m["health"] for m in self.show(name)["members"]}

    def wait_health(self, name: str, expected: dict[str, str], within: float = 15) -> None:
        """Until `onm pool show` gives the members of `expected` that health, and every
        agent has heard so."""

        def reached() -> bool:
            now = self.health(name)
            return all(now.get(node) == h for node, h in expected.items())

        eventually(reached, f"pool {name}: {expected}", within)
        settled(self.lab)

    def delete(self, name: str) -> None:
        address, holders = self.made.pop(name)
        onm("pool", "delete", f"{NETWORK}/{name}", *manager(self.lab))
        for node in holders:
            self._address(node, address, "del")

    def delete_all(self) -> None:
        for name in list(self.made):
            self.delete(name)


# The fixtures of a module that defines `lab` on this topology (import them by name).


@pytest.fixture(scope="module")
def services(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    found = Services(lab, tmp_path_factory.mktemp("www"))
    try:
        for name in MEMBERS:
            found.start(name)
        yield found
    finally:
        found.background.stop_all()


@pytest.fixture
def pools(lab: Lab, services: Services) -> Iterator[Pools]:
    """The test's pools, deleted after it (and every member's service running again)."""
    made = Pools(lab)
    try:
        yield made
    finally:
        services.restore()
        made.delete_all()
