"""Issue #7 defect 8: a host holds more than 63 nodes, and the ones past 63 carry traffic.

Until then the manager refused a host's 64th node ("no free slot", the 6-bit slot of the
substrate address) and so did the lab's topology loader. One lab (`sl<pid>`) with real agents:
host r runs 70 nodes, 66 of tenant z's `znet` and 4 of tenant y's `ynet` on the same CIDR at
the very addresses of z's last four; host s runs one peer per network, both on 10.0.0.3. The
nodes made after the 63rd ping their network's peer across the substrate, and each learns its
own network's peer (by the virtual MAC its agent answered the ARP with), never the other
tenant's. Built by `onm lab up` run as a real process, removed by `onm lab down` (by the lab's
own name) however the module ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from onm.cli.client import Client, read_token_file
from onm.lab import netns
from onm.lab import state as lab_state
from onm.lab.plan import Role

Z_NODES = 66
Y_NODES = 4  # the twins of z63..z66: same IPs, same host, another tenant
ON_R = Z_NODES + Y_NODES


def z_ip(i: int) -> str:
    return f"10.0.0.{9 + i}"  # z1 = 10.0.0.10 ... z66 = 10.0.0.75


def topology() -> str:
    nodes = [f"  - {{name: z{i}, network: znet, host: r, ip: {z_ip(i)}}}" for i in range(1, 67)]
    nodes += [
        f"  - {{name: y{i}, network: ynet, host: r, ip: {z_ip(Z_NODES - Y_NODES + i)}}}"
        for i in range(1, Y_NODES + 1)
    ]
    nodes += [
        "  - {name: gz, network: znet, host: s, ip: 10.0.0.3}",
        "  - {name: gy, network: ynet, host: s, ip: 10.0.0.3}",
    ]
    return "\n".join(
        [
            "substrate: {mtu: 1520}",
            "hosts:",
            "  - {name: r, location: {locale: 1, area: 1, rack: 1, node: 1}}",
            "  - {name: s, location: {locale: 1, area: 1, rack: 2, node: 1}}",
            "tenants: [{name: z}, {name: y}]",
            "networks:",
            "  - {name: znet, tenant: z, cidr: 10.0.0.0/24}",
            "  - {name: ynet, tenant: y, cidr: 10.0.0.0/24}",
            "nodes:",
            *nodes,
            "",
        ]
    )


def onm(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "onm.cli", *args], capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


@dataclass
class Lab:
    name: str
    state_dir: Path

    @property
    def flags(self) -> tuple[str, ...]:
        return ("--name", self.name, "--state-dir", str(self.state_dir))

    def record(self) -> lab_state.LabState:
        found = lab_state.load(self.state_dir)
        assert found is not None, f"lab {self.name} has no record in {self.state_dir}"
        return found

    def ns(self, node: str) -> str:
        found = self.record().namespace_of(Role.NODE, node)
        assert found is not None
        return found

    def client(self) -> Client:
        record = self.record()
        return Client(record.manager_url, read_token_file(Path(record.admin_token_file)))

    def agent_ports(self, host: str) -> float | None:
        """The `onm_agent_ports` gauge of `host`'s agent (None while it does not answer)."""
        agent = self.record().process(lab_state.process_key("agent", host))
        assert agent is not None
        port = int(agent.argv[agent.argv.index("--metrics") + 1].rpartition(":")[2])
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith("onm_agent_ports "):
                return float(line.split()[1])
        return None

    def logs(self) -> str:
        """The last lines of the manager's and the agents' logs, for a failure's message."""
        tails = []
        for process in self.record().processes:
            lines = Path(process.log).read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {process.key} ({process.log})\n" + "\n".join(lines))
        return "\n".join(tails)

    def namespaces(self) -> set[str]:
        return {n for n in netns.namespaces() if n.startswith(f"onm-{self.name}-")}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("many")
    file = base / "many.yaml"
    file.write_text(topology())
    built = Lab(f"sl{os.getpid()}", base / "state")
    try:
        started = time.monotonic()
        onm("lab", "up", str(file), *built.flags)
        deadline = time.monotonic() + 60
        while built.agent_ports("r") != ON_R:
            assert time.monotonic() < deadline, f"agent r has {built.agent_ports('r')} ports"
            time.sleep(0.5)
        print(f"\nlab with {ON_R} nodes on one host up in {time.monotonic() - started:.1f} s")
        yield built
    finally:
        onm("lab", "down", *built.flags, check=False)
        leftovers = built.namespaces()
        assert not leftovers, f"lab {built.name} left namespaces behind: {leftovers}"


def test_the_manager_placed_seventy_nodes_on_one_host(lab: Lab) -> None:
    with lab.client() as client:
        on_r = client.list_nodes(host="r")
    assert len(on_r) == ON_R
    assert len({(n.network_id, n.ip) for n in on_r}) == ON_R
    assert len({n.ip for n in on_r}) == Z_NODES  # the y nodes share the IPs of z63..z66


def neighbour_mac(namespace: str, ip: str) -> str:
    shown = subprocess.run(
        ["ip", "-n", namespace, "neigh", "show", ip], capture_output=True, text=True, check=True
    )
    fields = shown.stdout.split()
    return fields[fields.index("lladdr") + 1] if "lladdr" in fields else ""


def answers(lab: Lab, node: str) -> bool:
    command = ("ping", "-c", "1", "-W", "1", "10.0.0.3")
    probe = subprocess.run(["ip", "netns", "exec", lab.ns(node), *command], capture_output=True)
    return probe.returncode == 0


def test_the_nodes_past_the_63rd_reach_their_own_networks_peer(lab: Lab) -> None:
    late = [f"z{i}" for i in range(63, Z_NODES + 1)] + [f"y{i}" for i in range(1, Y_NODES + 1)]
    # The agent attaches its 70 ports one by one after its snapshot: wait for the last ones.
    started, deadline = time.monotonic(), time.monotonic() + 90
    for node in late:
        while not answers(lab, node):
            assert time.monotonic() < deadline, f"{node} never reached its peer\n{lab.logs()}"
            time.sleep(0.3)
    print(f"\nthe last {len(late)} nodes answered within {time.monotonic() - started:.1f} s")
    command = ("ping", "-c", "3", "-i", "0.3", "-w", "30", "10.0.0.3")
    pings = {
        node: subprocess.Popen(
            ["ip", "netns", "exec", lab.ns(node), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in late
    }
    outcome = {}
    for node, process in pings.items():
        try:
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        outcome[node] = (process.returncode, output)
    failed = {node: out for node, (code, out) in outcome.items() if code != 0}
    assert not failed, f"{failed}\n{lab.logs()}"

    with lab.client() as client:
        macs = {n.name: n.mac for n in client.list_nodes(host="s")}
    for node in late:
        peer = "gz" if node.startswith("z") else "gy"
        assert neighbour_mac(lab.ns(node), "10.0.0.3") == macs[peer], node
