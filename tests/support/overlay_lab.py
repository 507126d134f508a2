"""The lab, driven from the outside as an operator would: `onm lab` as a real process, metrics
over HTTP, and frames written or read inside a namespace through a packet socket that a
short-lived child opens there (`run_in_netns`, as the agent does): the test process never
changes namespace. Shared by the system tests that build a lab of their own: `running_lab`
brings one up and takes it down again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scapy.packet import Packet

from onm.agent.datapath.choice import FALLBACK
from onm.agent.datapath.ebpf.pins import DEFAULT_BASE as DEFAULT_PINS
from onm.agent.io.netns import run_in_netns
from onm.agent.io.packet_socket import open_packet_socket, recv_batch, send
from onm.api.client import Client, read_token_file
from onm.api.schemas import HostOut, NetworkOut, NodeOut
from onm.lab import netns
from onm.lab import state as lab_state
from onm.lab.plan import Role
from support import datapaths
from support.netns_tools import pings_once

T = TypeVar("T")

ETH_P_TEST = 0x88B5
"""IEEE 802 local experimental ethertype: what our sending sockets listen to (nothing)."""
PUBLISH = 1.0
"""The agent publishes its counters to the metrics endpoint once a second."""


def onm(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`onm ARGS` as a real process (`python -m onm.cli`); `check`: it must exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "onm.cli", *args], capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def eventually(check: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """Call `check` until it returns something other than None (or False); that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not so after {timeout:g} s")
        time.sleep(0.2)


def ip_json(namespace: str, *args: str) -> Any:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout or "[]")


def metrics_port(agent: lab_state.ProcessRecord) -> int:
    """The agent's metrics port, from its command line (`--metrics 127.0.0.1:PORT`)."""
    return int(agent.argv[agent.argv.index("--metrics") + 1].rpartition(":")[2])


def agent_metrics(agent: lab_state.ProcessRecord) -> dict[str, float]:
    """The lab agent's samples, keyed as exposed: `name{label="value"}`."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port(agent)}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def running_datapath(agent: lab_state.ProcessRecord) -> str:
    """The datapath the lab agent says it runs (`onm_agent_datapath{datapath}`)."""
    samples = agent_metrics(agent)
    [name] = [k.split('"')[1] for k, v in samples.items() if k.startswith("onm_agent_datapath{")]
    return name


def drop_key(reason: str) -> str:
    return f'onm_agent_drops_total{{reason="{reason}"}}'


@dataclass
class Lab:
    name: str
    file: Path
    state_dir: Path
    nodes: dict[str, NodeOut] = field(default_factory=dict)
    hosts: dict[str, HostOut] = field(default_factory=dict)
    networks: dict[str, NetworkOut] = field(default_factory=dict)

    @property
    def flags(self) -> tuple[str, ...]:
        return ("--name", self.name, "--state-dir", str(self.state_dir))

    def up(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return onm("lab", "up", str(self.file), *self.flags, timeout=timeout)

    def record(self) -> lab_state.LabState:
        found = lab_state.load(self.state_dir)
        assert found is not None, f"lab {self.name} has no record in {self.state_dir}"
        return found

    def process(self, role: str, owner: str = "") -> lab_state.ProcessRecord:
        found = self.record().process(lab_state.process_key(role, owner))
        assert found is not None, f"lab {self.name} records no {role} {owner}"
        return found

    def ns(self, node: str) -> str:
        found = self.record().namespace_of(Role.NODE, node)
        assert found is not None
        return found

    def host_ns(self, host: str) -> str:
        found = self.record().namespace_of(Role.HOST, host)
        assert found is not None
        return found

    def namespaces(self) -> set[str]:
        """Every namespace named like the lab's, whoever made it (the lab or a test)."""
        return {n for n in netns.namespaces() if n.startswith(f"onm-{self.name}-")}

    def pins(self) -> set[str]:
        """The pin directories of the lab's hosts' agents (`pins.pin_dir`: one per namespace)."""
        if not DEFAULT_PINS.is_dir():
            return set()
        return {p.name for p in DEFAULT_PINS.iterdir() if p.name.startswith(f"onm-{self.name}-")}

    def client(self) -> Client:
        record = self.record()
        return Client(record.manager_url, read_token_file(Path(record.admin_token_file)))

    def exec_in(
        self, node: str, *command: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`onm lab exec NODE -- COMMAND` (its exit status is the command's)."""
        return onm("lab", "exec", *self.flags, node, "--", *command, check=False, timeout=timeout)

    def metrics(self, host: str) -> dict[str, float]:
        """The agent of `host`'s samples, keyed as exposed: `name{label="value"}`."""
        return agent_metrics(self.process("agent", host))

    def logs(self) -> str:
        """The last lines of the manager's and the agents' logs, for a failure's message."""
        tails = []
        for process in self.record().processes:
            lines = Path(process.log).read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {process.key} ({process.log})\n" + "\n".join(lines))
        return "\n".join(tails)


def agent_ready(lab: Lab, host: str, ports: int) -> bool:
    """Is `host`'s agent serving metrics, connected, with `ports` ports (one a node)?"""
    try:
        samples = lab.metrics(host)
    except httpx.HTTPError:
        return False
    return samples["onm_agent_manager_connected"] == 1 and samples["onm_agent_ports"] == ports


@contextlib.contextmanager
def running_lab(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    topology: str,
    ports: Mapping[str, int],
    ready_within: float,
    timeout: float = 120,
) -> Iterator[Lab]:
    """Lab `name` up from `topology` (`onm lab up`, each `onm` given `timeout` s), its nodes,
    hosts and networks read back, and each agent in `ports` ready within `ready_within` s.
    `onm lab down` however the block ends; none of the lab's namespaces, nor any eBPF pins of
    its hosts, may be left."""
    datapath = datapaths.chosen()
    base = tmp_path_factory.mktemp(name)
    file = base / "topology.yaml"
    file.write_text(topology)
    built = Lab(name, file, base / "state")
    try:
        built.up(timeout)
        with built.client() as client:
            built.nodes = {n.name: n for n in client.list_nodes()}
            built.hosts = {h.name: h for h in client.list_hosts()}
            built.networks = {n.name: n for n in client.list_networks()}
        for host, count in ports.items():
            ready = functools.partial(agent_ready, built, host, count)
            eventually(ready, f"agent {host} ready", ready_within)
            agent = built.process("agent", host)
            running = running_datapath(agent)
            if datapath == "auto":  # ebpf, or userspace with the one line saying why
                fell_back = FALLBACK in Path(agent.log).read_text(errors="replace")
                assert running == "ebpf" or (running == "userspace" and fell_back), running
            else:
                assert running == datapath, f"agent {host} runs {running}, not {datapath}"
        yield built
    finally:
        onm("lab", "down", *built.flags, check=False, timeout=timeout)
        leftovers = built.namespaces()
        assert not leftovers, f"lab {name} left namespaces behind: {leftovers}"
        pins = built.pins()
        assert not pins, f"lab {name} left eBPF pins behind: {pins}"


def answers(lab: Lab, node: str, target: str) -> bool:
    """One echo answered? (`ip netns exec` straight: polls need no `onm` start-up each time)"""
    return pings_once(lab.ns(node), target)


def wait_reachable(lab: Lab, node: str, target: str, timeout: float = 10.0) -> float:
    """Seconds until one ping from `node` to `target` is answered."""
    started = time.monotonic()
    eventually(lambda: answers(lab, node, target), f"{node} reaching {target}", timeout)
    return time.monotonic() - started


def wait_for_counts(lab: Lab, host: str, before: dict[str, float], grown: dict[str, int]) -> None:
    """Wait until `host`'s samples have grown by `grown`; then they must have grown by exactly
    that (the forged frames are the only ones of their kind)."""

    def deltas() -> dict[str, int] | None:
        now = lab.metrics(host)
        seen = {key: int(now[key] - before[key]) for key in grown}
        return seen if all(seen[key] >= n for key, n in grown.items()) else None

    assert eventually(deltas, f"{host}'s agent counting {grown}", 5 * PUBLISH) == grown


def marker() -> bytes:
    return b"onm-test-" + os.urandom(8).hex().encode()


def send_frames(namespace: str, ifname: str, frames: Sequence[Packet]) -> None:
    [sock] = run_in_netns(namespace, lambda: [open_packet_socket(ifname, ETH_P_TEST)])
    with sock:
        for frame in frames:
            assert send(sock, bytes(frame))


@contextlib.contextmanager
def sniffing(namespace: str, ifname: str = "eth0") -> Iterator[Callable[[], list[bytes]]]:
    """Every frame `ifname` in `namespace` receives from now on (call to read them so far)."""
    [sock] = run_in_netns(namespace, lambda: [open_packet_socket(ifname)])
    frames: list[bytes] = []

    def received() -> list[bytes]:
        while batch := recv_batch(sock):
            frames.extend(batch)
        return frames

    with sock:
        yield received


def carrying(frames: list[bytes], needle: bytes) -> int:
    return sum(needle in frame for frame in frames)
