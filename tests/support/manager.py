"""Run a real `onm manager serve` process for tests: free port, own state dir, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ManagerProcess:
    url: str
    admin_token: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (a frozen one is continued first, to act on it), SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def auth(token: str) -> dict[str, str]:
    """The header presenting `token` (a bearer token, RFC 6750 section 2.1)."""
    return {"Authorization": f"Bearer {token}"}


def create(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to `path`, which must answer 201 Created; the object made."""
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def manager_command(
    state_dir: Path, port: int, db: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The `onm manager serve` command line for `state_dir` on 127.0.0.1:`port`."""
    command = [
        sys.executable,
        "-m",
        "onm.cli",
        "manager",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--state-dir",
        str(state_dir),
    ]
    if db:
        command += ["--db", db]
    return [*command, *extra]


def start_manager(
    state_dir: Path, db: str | None = None, port: int | None = None, extra: Sequence[str] = ()
) -> ManagerProcess:
    """A manager answering on a free (or the given) port; its stdout and stderr go to `log`."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = state_dir.parent / f"{state_dir.name}-manager.log"
    command = manager_command(state_dir, port, db, extra)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"manager exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"manager did not start: {log.read_text()}")
    token = (state_dir / "admin.token").read_text().strip()
    return ManagerProcess(url, token, state_dir, process, log)


UNLIMITED = [f"--rate={kind}=100000:100000" for kind in ("read", "write", "resolve", "sync")]
"""Serve options that keep the rate limits out of a benchmark's way (it measures the manager,
not its throttle)."""


@contextmanager
def running_manager(
    state_dir: Path, db: str | None = None, extra: Sequence[str] = ()
) -> Iterator[ManagerProcess]:
    """`start_manager`, stopped however the block ends."""
    manager = start_manager(state_dir, db, extra=extra)
    try:
        yield manager
    finally:
        manager.stop()
