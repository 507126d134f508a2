"""Tests for onm.lab.processes: a recorded process is recognised by start time and command line,
and a pid that now belongs to something else is never signalled."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from onm.lab import processes
from onm.lab.state import ProcessRecord

SLEEPER = (sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)")


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[ProcessRecord]:
    record = processes.start("manager", "", SLEEPER, tmp_path / "logs" / "sleeper.log")
    try:
        yield record
    finally:
        processes.stop(record, timeout=5)


def test_start_records_identity(sleeper: ProcessRecord) -> None:
    assert sleeper.argv == SLEEPER
    assert processes.identity(sleeper.pid) == (sleeper.start_time, SLEEPER)
    assert processes.is_running(sleeper)
    assert os.getsid(sleeper.pid) == sleeper.pid  # its own session: outlives the CLI


def test_stop(sleeper: ProcessRecord) -> None:
    assert processes.stop(sleeper, timeout=5) is True
    assert not processes.is_running(sleeper)
    assert processes.stop(sleeper) is False  # already gone: nothing to do


def test_a_reused_pid_is_not_signalled(sleeper: ProcessRecord) -> None:
    for stale in (
        dataclasses.replace(sleeper, start_time=sleeper.start_time + 1),
        dataclasses.replace(sleeper, argv=("something", "else")),
    ):
        assert not processes.is_running(stale)
        assert processes.stop(stale, timeout=1) is False
        assert processes.is_running(sleeper)


def test_exited_and_log_tail(tmp_path: Path) -> None:
    argv = (sys.executable, "-c", "import sys; print('\\n'.join(map(str, range(40)))); sys.exit(3)")
    record = processes.start("agent", "r", argv, tmp_path / "agent.log")
    assert processes.exited(record, wait=10)
    assert processes.log_tail(record.log, lines=3) == "37\n38\n39"
    assert processes.log_tail(tmp_path / "missing.log") == ""


def test_gone_pid_has_no_identity() -> None:
    assert processes.identity(2**22 + 12345) is None


def test_ports() -> None:
    port = processes.free_port()
    assert 0 < port < 65536
    assert processes.port_free(port)


def test_a_port_left_in_time_wait_is_free() -> None:
    """A restarted manager keeps its port (and so its agents): the connections its predecessor
    closed wait in TIME_WAIT, which does not stop a server that binds with SO_REUSEADDR."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    with server, socket.create_connection(("127.0.0.1", port)) as client:
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: it is the one left in TIME_WAIT
        assert client.recv(1) == b""
    assert processes.port_free(port)
    with socket.create_server(("127.0.0.1", port)):  # and a server can indeed listen there
        assert not processes.port_free(port)
