"""The lab's background processes (the manager, one agent per host): start, recognise, stop.

A process is started in its own session (so it outlives `onm lab up` and ignores the
terminal's Ctrl-C), with stdin closed and stdout and stderr appended to its log. It is recorded
by pid *and* by its start time and command line: a recorded process counts as running only
while /proc/PID says the same start time and command line, so a pid the kernel has since given
to another program is never signalled. A zombie counts as gone.

A process stopped through `stop` leaves a marker beside its log (`LOG.stopped`, naming it by pid
and start time): the lab's supervisor restarts a process that died, but not one the lab stopped
on purpose (as systemd restarts a crashed unit, not one `systemctl stop` stopped). `start`
removes the marker of the log it writes to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from onm.lab.state import ProcessRecord

STOP_TIMEOUT: Final = 10.0
"""Seconds a process gets to exit after SIGTERM before it gets SIGKILL."""
SETTLE_TIMEOUT: Final = 5.0
"""Seconds to wait for a new process's command line to show in /proc."""


def identity(pid: int) -> tuple[int, tuple[str, ...]] | None:
    """(start time, command line) of a live process, or None if it is gone or a zombie."""
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_time = fields[0], int(fields[19])
    if state in ("Z", "X"):
        return None
    argv = tuple(part.decode(errors="replace") for part in cmdline.split(b"\0")[:-1])
    return start_time, argv


def is_running(record: ProcessRecord) -> bool:
    """Is the recorded process still alive, and still the same program?"""
    return identity(record.pid) == (record.start_time, record.argv)


def stop_marker(record: ProcessRecord) -> Path:
    """Where `stop` notes that it stopped the process of `record` on purpose."""
    log = Path(record.log)
    return log.with_name(f"{log.name}.stopped")


def stopped_on_purpose(record: ProcessRecord) -> bool:
    """Did `stop` stop this very process (same pid and start time)?"""
    try:
        return stop_marker(record).read_text().split() == [str(record.pid), str(record.start_time)]
    except OSError:
        return False


def start(
    role: str, owner: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> ProcessRecord:
    """Start `argv` in the background, logging to `log`; its record."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.with_name(f"{log.name}.stopped").unlink(missing_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    # The kernel shows the new command line a moment after Popen returns (the exec is past the
    # point of no return, not finished): wait for it, so the record is recognisable at once.
    deadline = time.monotonic() + SETTLE_TIMEOUT
    found = identity(process.pid)
    while (found is None or found[1] != tuple(argv)) and process.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
        found = identity(process.pid)
    if process.returncode is None:
        # The Popen object is dropped; the process lives on and is found again by its pid.
        process.returncode = 0  # no "subprocess is still running" warning for it
    start_time = found[0] if found is not None else 0
    return ProcessRecord(role, owner, process.pid, start_time, tuple(argv), str(log))


def stop(record: ProcessRecord, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the recorded process if it is still the same one; True if it had to be stopped."""
    if not is_running(record):
        _reap(record.pid)
        return False
    with contextlib.suppress(OSError):  # the marker is for the supervisor; stopping comes first
        stop_marker(record).write_text(f"{record.pid} {record.start_time}\n")
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGTERM)
    if not _wait_gone(record, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
        _wait_gone(record, timeout)
    return True


def _wait_gone(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_running(record):
            return True
        time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (it is not, after `up` ends)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def exited(record: ProcessRecord, wait: float) -> bool:
    """Has the process exited within `wait` seconds of now?"""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_running(record):
            return True
        time.sleep(0.05)
    return not is_running(record)


def log_tail(path: Path | str, lines: int = 15) -> str:
    """The last `lines` lines of a log ("" if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Could a server listen on `port` of 127.0.0.1 now?

    Probed with SO_REUSEADDR, as the manager (uvicorn) and the agents' metrics server bind: the
    connections a stopped server leaves in TIME_WAIT do not keep its successor off its port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
