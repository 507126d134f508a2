"""An agent notices a frozen manager in seconds and comes back within 2 s of its return (#7).

A real `onm agent run` process, on each datapath, serves a host whose substrate is one end of a
veth pair in a network namespace of this test's own (`lv<pid>...`), against a real `onm manager
serve` process. What is checked is what an operator sees: the agent's
`onm_agent_manager_connected` metric.

- SIGSTOP the manager (its kernel still accepts connections, nothing answers): the metric
  drops to 0 within the snapshot stream's heartbeat window (it used to stay 1);
- SIGCONT: back to 1 within 2 s (plus margin);
- kill -9 and restart on the same port after the agent has been failing for a while (its
  back-off at its cap): back to 1 within 2 s of the manager answering (it used to take 8.8 s).

The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from onm.api.client import STREAM_IDLE, Client
from support.manager import ManagerProcess, free_port, start_manager

PREFIX = "fd00:0:7c:1::/64"
POLL = 0.05
_SEQ = itertools.count()


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"lv{os.getpid()}l{next(_SEQ)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "sub0", "mtu", "1520", "type", "veth", "peer", "sub0p")
        ip("-n", name, "link", "set", "sub0p", "mtu", "1520", "up")
        ip("-n", name, "link", "set", "sub0", "up")
        ip("-n", name, "addr", "add", "fd00:0:7c:1::1/64", "dev", "sub0", "nodad")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    metrics: str
    log: Path

    def sample(self, key: str) -> int | None:
        """The value of the sample exposed as `key` (`name` or `name{label="value"}`)."""
        try:
            text = httpx.get(self.metrics, timeout=2).text
        except httpx.TransportError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{key} "):
                return int(float(line.split()[1]))
        return None

    def connected(self) -> int | None:
        return self.sample("onm_agent_manager_connected")


@pytest.fixture
def world(datapath: str, tmp_path: Path, netns: str) -> Iterator[tuple[ManagerProcess, Agent]]:
    manager = start_manager(tmp_path / "manager")
    agent: Agent | None = None
    try:
        with Client(manager.url, manager.admin_token) as admin:
            created = admin.create_host("h1", prefix=PREFIX)
        token = tmp_path / "h1.token"
        token.write_text(created.token + "\n")
        port = free_port()
        log = tmp_path / "agent.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "onm.cli",
                    "agent",
                    "run",
                    "--manager",
                    manager.url,
                    "--host",
                    "h1",
                    "--token-file",
                    str(token),
                    "--substrate-if",
                    "sub0",
                    "--datapath",
                    datapath,
                    "--netns",
                    netns,
                    "--metrics",
                    f"127.0.0.1:{port}",
                    "--state-dir",
                    str(tmp_path / "agent"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        agent = Agent(process, f"http://127.0.0.1:{port}/metrics", log)
        wait_for(lambda: agent.connected() == 1, "the agent to connect", 60, agent)
        assert agent.sample(f'onm_agent_datapath{{datapath="{datapath}"}}') == 1
        yield manager, agent
    finally:
        if manager.process.poll() is None:
            manager.process.send_signal(signal.SIGCONT)
        manager.stop()
        if agent is not None:
            agent.process.terminate()
            try:
                agent.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.process.kill()
                agent.process.wait(timeout=10)
        # A stopped ebpf agent leaves its programs and pins (static stability): ours go.
        cleanup = [sys.executable, "-m", "onm.cli", "agent", "cleanup", "--host", "h1"]
        subprocess.run([*cleanup, "--netns", netns], capture_output=True, timeout=60, check=False)


def wait_for(check: Callable[[], bool], what: str, timeout: float, agent: Agent) -> float:
    """Seconds until `check()` holds; fails after `timeout` with the agent's log."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"no {what} within {timeout} s; agent log:\n{agent.log.read_text()}")
        if agent.process.poll() is not None:
            pytest.fail(f"the agent exited ({agent.process.returncode}):\n{agent.log.read_text()}")
        time.sleep(POLL)
    return time.monotonic() - started


def test_a_frozen_manager_is_noticed_and_its_return_too(
    world: tuple[ManagerProcess, Agent],
) -> None:
    manager, agent = world
    manager.process.send_signal(signal.SIGSTOP)
    lost = wait_for(lambda: agent.connected() == 0, "manager_connected 0", 30, agent)
    manager.process.send_signal(signal.SIGCONT)
    back = wait_for(lambda: agent.connected() == 1, "manager_connected 1", 30, agent)
    print(f"SIGSTOP -> manager_connected 0 after {lost:.2f} s; SIGCONT -> 1 after {back:.2f} s")
    # Silence for STREAM_IDLE, then the metric's next publication (0.5 s); margin for load.
    assert lost < STREAM_IDLE + 4
    assert back < 2 + 2


def test_after_kill_9_and_a_restart_on_the_same_port_the_agent_is_back_within_2_s(
    world: tuple[ManagerProcess, Agent],
) -> None:
    manager, agent = world
    port = int(manager.url.rsplit(":", 1)[1])
    manager.kill()
    wait_for(lambda: agent.connected() == 0, "manager_connected 0", 30, agent)
    time.sleep(8)  # an outage long enough for any back-off to grow to its cap
    again = start_manager(manager.state_dir, port=port)
    try:
        answering = time.monotonic()  # start_manager returns once the manager answers
        back = wait_for(lambda: agent.connected() == 1, "manager_connected 1", 30, agent)
        print(f"kill -9, restart: manager_connected 1 {back:.2f} s after the manager answered")
        assert back < 2 + 1  # 2 s as the issue asks, plus margin for a loaded machine
        assert time.monotonic() - answering >= back
    finally:
        again.stop()
