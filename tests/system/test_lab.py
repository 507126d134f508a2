"""`onm lab` against the real kernel: the issue's two-host example, built from namespaces.

Each lab gets a unique name (`t<pid><n>`) and a state directory under pytest's tmp dir, and is
taken down by a finalizer registered before it is brought up. Agents are not started
(`--no-agents`): these tests check what the lab itself builds, from inside the namespaces.
`onm` runs as a real process (`python -m onm.cli`), so exit codes and stderr are its own.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from onm.api.client import Client, read_token_file
from onm.errors import UnavailableError
from onm.lab import state as lab_state
from support.netns_tools import pings_once
from support.overlay_lab import onm, running_datapath

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TWO_HOSTS = EXAMPLES / "two-hosts.yaml"
SEQ = itertools.count(1)


def ip_json(namespace: str | None, *args: str) -> Any:
    prefix = ["ip", "-n", namespace] if namespace else ["ip"]
    out = subprocess.run([*prefix, "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def netns_names() -> set[str]:
    return {entry["name"] for entry in ip_json(None, "netns", "list")}


def root_links() -> set[str]:
    return {link["ifname"] for link in ip_json(None, "link", "show")}


def in_netns(namespace: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command], capture_output=True, text=True, timeout=30
    )


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (nobody may reap the lab's orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@dataclass
class Lab:
    name: str
    state_dir: Path

    @property
    def flags(self) -> tuple[str, ...]:
        return ("--name", self.name, "--state-dir", str(self.state_dir))

    def up(self, file: Path = TWO_HOSTS, check: bool = True) -> subprocess.CompletedProcess[str]:
        return onm("lab", "up", str(file), "--no-agents", *self.flags, check=check)

    def down(self) -> subprocess.CompletedProcess[str]:
        return onm("lab", "down", *self.flags)

    def ns(self, role: str, owner: str = "") -> str:
        return f"onm-{self.name}-{role}" + (f"-{owner}" if owner else "")

    def namespaces(self) -> set[str]:
        return {n for n in netns_names() if n.startswith(f"onm-{self.name}-")}

    def record(self) -> lab_state.LabState:
        found = lab_state.load(self.state_dir)
        assert found is not None
        return found

    def client(self) -> Client:
        record = self.record()
        return Client(record.manager_url, read_token_file(Path(record.admin_token_file)))


@pytest.fixture
def new_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Lab]]:
    """Labs that are taken down (by their own name) however the test ends."""
    made: list[Lab] = []

    def make() -> Lab:
        name = f"t{os.getpid()}{next(SEQ)}"
        lab = Lab(name, tmp_path_factory.mktemp("lab") / name)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        onm("lab", "down", *lab.flags, check=False)
        assert not lab.namespaces()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One two-host lab, shared by the tests that only look at it."""
    name = f"t{os.getpid()}{next(SEQ)}"
    built = Lab(name, tmp_path_factory.mktemp("lab") / name)
    try:
        built.up()
        yield built
    finally:
        onm("lab", "down", *built.flags, check=False)


# --- what up builds --------------------------------------------------------------------------
def test_nodes_get_eth0_as_the_manager_allocated(lab: Lab) -> None:
    with lab.client() as client:
        nodes = {n.name: n for n in client.list_nodes()}
    for name, ip in (("a", "10.0.0.2"), ("g", "10.0.0.3")):
        ns = lab.ns("n", name)
        (eth0,) = ip_json(ns, "addr", "show", "dev", "eth0")
        assert eth0["address"] == nodes[name].mac
        assert eth0["mtu"] == 1500  # 1520 - 20 (SIIT)
        assert "UP" in eth0["flags"]
        assert [(a["family"], a["local"], a["prefixlen"]) for a in eth0["addr_info"]] == [
            ("inet", ip, 24)
        ]  # and no IPv6 at all: nodes are IPv4 only
        routes = ip_json(ns, "-4", "route", "show", "default")
        assert [(r["gateway"], r["dev"]) for r in routes] == [("10.0.0.1", "eth0")]
        (lo,) = ip_json(ns, "link", "show", "dev", "lo")
        assert "UP" in lo["flags"]


def test_hosts_hold_the_node_interfaces_and_route_to_each_other(lab: Lab) -> None:
    with lab.client() as client:
        hosts = {h.name: h for h in client.list_hosts()}
        nodes = {n.name: n for n in client.list_nodes()}
    for k, (host, other, node) in enumerate((("r", "s", "a"), ("s", "r", "g")), start=1):
        ns = lab.ns("h", host)
        (sub0,) = ip_json(ns, "addr", "show", "dev", "sub0")
        assert sub0["mtu"] == 1520
        globals_ = [a for a in sub0["addr_info"] if a.get("scope") == "global"]
        assert [(a["local"], a["prefixlen"]) for a in globals_] == [(f"fd00:ffff::{k}", 64)]
        assert "nodad" in globals_[0] or globals_[0].get("nodad") is True
        routes = ip_json(ns, "-6", "route", "show", hosts[other].prefix)
        assert [(r["gateway"], r["dev"]) for r in routes] == [(f"fd00:ffff::{3 - k}", "sub0")]
        # The host's own /64 is on no interface: its agent owns it.
        own = hosts[host].prefix.split("::")[0]
        all_addresses = ip_json(ns, "-6", "addr", "show")
        assert not any(
            a["local"].startswith(own) for link in all_addresses for a in link["addr_info"]
        )
        (outside,) = ip_json(ns, "addr", "show", "dev", nodes[node].interface)
        assert outside["mtu"] == 1520 and "UP" in outside["flags"]
        assert not [a for a in outside["addr_info"] if a["family"] == "inet"]
        forwarding = in_netns(ns, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").stdout
        assert forwarding.strip() == "0"


def test_the_substrate_carries_ipv6_between_hosts(lab: Lab) -> None:
    result = in_netns(lab.ns("h", "r"), "ping", "-6", "-c1", "-W5", "fd00:ffff::2")
    assert result.returncode == 0, result.stdout + result.stderr
    bridge = ip_json(lab.ns("sub"), "link", "show", "dev", "br0")
    assert bridge[0]["mtu"] == 1520


def test_exec_runs_in_the_node_and_passes_the_exit_code(lab: Lab) -> None:
    flags = ("--name", lab.name)
    result = onm("lab", "exec", *flags, "a", "--", "ip", "-4", "addr")
    assert "10.0.0.2/24" in result.stdout
    assert onm("lab", "exec", *flags, "g", "--", "sh", "-c", "exit 3", check=False).returncode == 3
    host = onm("lab", "exec", *flags, "--host", "r", "--", "ip", "-6", "addr", "show", "sub0")
    assert "fd00:ffff::1/64" in host.stdout
    missing = onm("lab", "exec", *flags, "zz", "--", "true", check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: lab ") and "no node 'zz'" in missing.stderr


def test_status_lists_everything(lab: Lab) -> None:
    data = json.loads(onm("lab", "status", "--name", lab.name, "--json").stdout)
    assert data["lab"] == lab.name and data["complete"] is True
    assert {(n["name"], n["up"]) for n in data["namespaces"]} == {
        (lab.ns("sub"), True),
        (lab.ns("h", "r"), True),
        (lab.ns("h", "s"), True),
        (lab.ns("n", "a"), True),
        (lab.ns("n", "g"), True),
    }
    assert [(p["role"], p["running"]) for p in data["processes"]] == [("manager", True)]
    table = onm("lab", "status", "--state-dir", str(lab.state_dir)).stdout
    for word in (lab.ns("n", "g"), "running", data["manager_url"], "export ONM_URL="):
        assert word in table


def snapshot(lab: Lab) -> dict[str, Any]:
    views = {}
    for ns in sorted(lab.namespaces()):
        views[ns] = [
            ip_json(ns, "link", "show"),
            ip_json(ns, "addr", "show"),
            ip_json(ns, "-4", "route", "show"),
            ip_json(ns, "-6", "route", "show"),
        ]
    return views


def test_up_twice_changes_nothing(lab: Lab) -> None:
    before, record = snapshot(lab), lab.record()
    again = lab.up()
    assert "(running, pid" in again.stdout
    assert snapshot(lab) == before
    assert lab.record() == record


def test_up_from_a_changed_file_is_refused(lab: Lab, tmp_path: Path) -> None:
    changed = tmp_path / "two-hosts.yaml"
    changed.write_text(TWO_HOSTS.read_text().replace("10.0.0.3", "10.0.0.4"))
    before = lab.record()
    result = lab.up(changed, check=False)
    assert result.returncode == 1
    assert f"lab {lab.name} is up from another topology" in result.stderr
    assert lab.record() == before


# --- down, crashes, bad files ----------------------------------------------------------------
def test_down_removes_everything_it_made(new_lab: Callable[[], Lab]) -> None:
    lab = new_lab()
    links_before = root_links()
    lab.up()
    record = lab.record()
    pids = [p.pid for p in record.processes]
    assert len(lab.namespaces()) == 5 and all(pid_alive(pid) for pid in pids)
    result = lab.down()
    assert f"lab {lab.name} is down" in result.stdout
    assert lab.namespaces() == set()
    assert root_links() <= links_before  # no veth was ever left in the root namespace
    assert not any(pid_alive(pid) for pid in pids)
    assert not lab.state_dir.exists() or not any(lab.state_dir.iterdir())
    assert not (lab_state.RUN_DIR / lab.name).is_symlink()
    assert "is not up" in lab.down().stdout  # down again: nothing to do, still fine


def test_a_crash_is_repaired_by_up_and_cleaned_by_down(new_lab: Callable[[], Lab]) -> None:
    lab = new_lab()
    lab.up()
    first = lab.record()
    manager = first.process("manager")
    assert manager is not None
    with lab.client() as client:
        ids = sorted(n.id for n in client.list_nodes())

    # Crash: the manager dies, a namespace disappears. `up` puts both back, same objects.
    os.kill(manager.pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", lab.ns("n", "g")], check=True)
    lab.up()
    second = lab.record()
    restarted = second.process("manager")
    assert restarted is not None and restarted.pid != manager.pid
    assert second.manager_url == first.manager_url
    with lab.client() as client:
        assert sorted(n.id for n in client.list_nodes()) == ids
    assert len(lab.namespaces()) == 5
    (eth0,) = ip_json(lab.ns("n", "g"), "addr", "show", "dev", "eth0")
    assert eth0["addr_info"][0]["local"] == "10.0.0.3"

    # Crash again; `down` needs nothing but the record.
    os.kill(restarted.pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", lab.ns("h", "s")], check=True)
    lab.down()
    assert lab.namespaces() == set()
    assert not pid_alive(restarted.pid)


def test_a_namespace_the_lab_did_not_make_is_left_alone(new_lab: Callable[[], Lab]) -> None:
    lab = new_lab()
    foreign = lab.ns("n", "a")
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        result = lab.up(check=False)
        assert result.returncode == 1
        assert f"namespace {foreign} exists but lab {lab.name} did not make it" in result.stderr
        lab.down()
        assert lab.namespaces() == {foreign}
    finally:
        subprocess.run(["ip", "netns", "delete", foreign], check=False)


def test_an_invalid_file_builds_nothing(new_lab: Callable[[], Lab], tmp_path: Path) -> None:
    lab = new_lab()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        TWO_HOSTS.read_text().replace("network: znet, host: s", "network: zznet, host: s")
    )
    result = lab.up(bad, check=False)
    assert result.returncode == 1
    assert result.stderr == (f"error: {bad}:13: nodes[1].network: network 'zznet' is not defined\n")
    assert lab.namespaces() == set()
    assert not lab.state_dir.exists()
    assert not (lab_state.RUN_DIR / lab.name).exists()


# --- supervision -----------------------------------------------------------------------------
def pings(lab: Lab, node: str, target: str) -> bool:
    return pings_once(lab.ns("n", node), target)


def wait_for(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until `check()` holds (fails the test after `timeout`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not so after {timeout:g} s")
        time.sleep(0.05)
    return time.monotonic() - started


def runs(lab: Lab, key: str, datapath: str) -> bool:
    """Does the lab's agent `key` say it runs `datapath`? (No while it does not answer.)"""
    agent = lab.record().process(key)
    try:
        return agent is not None and running_datapath(agent) == datapath
    except httpx.HTTPError:
        return False


def node_count(client: Client) -> int | None:
    try:
        return len(client.list_nodes())
    except UnavailableError:
        return None


def restarted(lab: Lab, old: lab_state.ProcessRecord) -> bool:
    now = lab.record().process(old.key)
    return now is not None and now.pid != old.pid and pid_alive(now.pid)


def test_a_killed_agent_or_manager_is_restarted_and_traffic_comes_back(
    datapath: str, new_lab: Callable[[], Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = new_lab()
    onm("lab", "up", str(TWO_HOSTS), *lab.flags)  # with agents, and the lab's supervisor
    record = lab.record()
    supervisor = record.supervisor
    assert supervisor is not None and pid_alive(supervisor.pid)
    wait_for(lambda: pings(lab, "a", "10.0.0.3"), "a reaching g", 30)
    for key in ("agent:r", "agent:s"):
        wait_for(functools.partial(runs, lab, key, datapath), f"{key} running {datapath}", 30)

    agent = record.process("agent:s")
    assert agent is not None
    os.kill(agent.pid, signal.SIGKILL)
    took = wait_for(lambda: restarted(lab, agent), "agent s restarted", 2.0 + 8.0)
    back = wait_for(lambda: pings(lab, "a", "10.0.0.3"), "a reaching g again", 30)
    # The supervisor's new agent runs it too (its metrics come up once it is ready: on ebpf the
    # programs a killed agent left attached may carry a->g before that).
    wait_for(functools.partial(runs, lab, "agent:s", datapath), "the new agent's datapath", 30)
    manager = record.process("manager")
    assert manager is not None
    os.kill(manager.pid, signal.SIGKILL)
    took_manager = wait_for(lambda: restarted(lab, manager), "manager restarted", 2.0 + 8.0)
    with lab.client() as client:  # the same URL answers again
        wait_for(lambda: node_count(client) == 2, "the manager answering", 30)
    with capsys.disabled():
        print(
            f"\n    agent s restarted {took:.2f} s after kill -9, a->g {back:.1f} s later; "
            f"manager restarted {took_manager:.2f} s after kill -9",
            end="",
        )
    assert took < 2.0 + 3.0  # "within a second or two", with a margin for a busy machine

    data = json.loads(onm("lab", "status", *lab.flags, "--json").stdout)
    restarts = {(p["role"], p["owner"]): (p["restarts"], p["running"]) for p in data["processes"]}
    assert restarts == {
        ("agent", "r"): (0, True),
        ("agent", "s"): (1, True),
        ("manager", ""): (1, True),
    }
    assert data["supervisor"]["pid"] == supervisor.pid and data["supervisor"]["running"]
    table = onm("lab", "status", *lab.flags).stdout
    assert "running (1 restart)" in table and "supervisor" in table

    # `up` again keeps everything, the supervisor included; `down` stops it first, then the rest.
    onm("lab", "up", str(TWO_HOSTS), *lab.flags)
    assert lab.record().supervisor == supervisor
    pids = [p.pid for p in lab.record().processes]
    assert f"stopped supervisor (pid {supervisor.pid})" in lab.down().stdout
    assert not pid_alive(supervisor.pid) and not any(pid_alive(pid) for pid in pids)
