"""The lab's supervisor: a process of the lab that dies is started again, as systemd would.

`deploy/systemd/` gives the manager and the agents `Restart=` policies on real hosts; the lab
does the same with one small detached process per lab (`python -m onm.lab.supervise STATE_DIR`),
started by `onm lab up` (it must outlive `up`, which returns) and stopped first by `onm lab down`.
It watches the processes the lab record names and starts a dead one again with the same command
line and log, recording its new pid and one more restart (`onm lab status` shows both).

Rules:
- It acts only under the lab's lock (`lab.lock` in the state directory, flock(2)), which `up`
  and `down` hold while they change processes, and it reads the record again once it has the
  lock: it never restarts what `down` is stopping, nor what `up` has just started itself.
- A process is dead when its record no longer matches /proc (pid, start time, command line:
  `onm.lab.processes`). The supervisor never signals anything: stale pids are never killed.
- One that the lab stopped on purpose (`processes.stop`, which leaves a marker) stays down
  until `onm lab up`, as a unit that `systemctl stop` stopped: a crash, a kill -9, or any
  signal from elsewhere is a death.
- The first death is followed by a restart after `RESTART_SEC`; a process that dies again
  within `HEALTHY_AFTER` s of being restarted waits twice as long each time (up to `MAX_DELAY`),
  and after `GIVE_UP_AFTER` such deaths in a row it is left down, as systemd's start limit
  does (`onm lab up` starts it again). The policy is `next_restart`, a pure function of the
  watch and `now`.
- It leaves as soon as the record is gone or names another supervisor.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from onm.lab import processes, state
from onm.lab.state import LabState, LabStateError, ProcessRecord

log = logging.getLogger("onm.lab.supervise")

LOCK: Final = "lab.lock"
"""The lab's lock file in its state directory (held by `up`, `down` and each restart)."""
LOG: Final = "supervisor.log"
POLL: Final = 0.2
"""Seconds between two looks at the lab's processes."""
RESTART_SEC: Final = 0.2
"""Seconds between a death and the restart (systemd's RestartSec)."""
HEALTHY_AFTER: Final = 10.0
"""A restarted process that lives this long is healthy: its next death is a first one again."""
MAX_DELAY: Final = 10.0
"""Longest wait before a restart."""
GIVE_UP_AFTER: Final = 8
"""Deaths in a row, each within HEALTHY_AFTER of a restart, after which it is left down."""


@dataclass(frozen=True, slots=True)
class Watch:
    """What the supervisor knows of one recorded process."""

    started_at: float | None = None
    """When the supervisor last started it (monotonic s); None if `up` did."""
    quick_deaths: int = 0
    """Deaths in a row within HEALTHY_AFTER of a restart."""
    dead_since: float | None = None
    """When it was first seen dead (None while it runs)."""


def died(watch: Watch, now: float) -> Watch:
    """`watch` after its process was first seen dead at `now`."""
    quick = watch.started_at is not None and now - watch.started_at < HEALTHY_AFTER
    return replace(watch, quick_deaths=watch.quick_deaths + 1 if quick else 0, dead_since=now)


def next_restart(watch: Watch) -> float | None:
    """When to start the dead process of `watch` again; None: leave it down (or it runs)."""
    if watch.dead_since is None or watch.quick_deaths >= GIVE_UP_AFTER:
        return None
    return watch.dead_since + min(MAX_DELAY, RESTART_SEC * 2.0**watch.quick_deaths)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the lab's lock (waiting for it) for the body of the `with`."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def argv(directory: Path) -> tuple[str, ...]:
    """The supervisor's command line for the lab in `directory`."""
    return (sys.executable, "-m", "onm.lab.supervise", str(directory))


def ensure(record: LabState, directory: Path) -> tuple[LabState, bool]:
    """The record with a running supervisor (started if missing); True if one was started.

    Call with the lock held: the new supervisor waits for it before it reads the record.
    """
    current = record.supervisor
    wanted = argv(directory)
    if current is not None and processes.is_running(current) and current.argv == wanted:
        return record, False
    started = processes.start("supervisor", "", wanted, directory / LOG)
    return replace(record, supervisor=started), True


class Supervisor:
    """The loop of one lab's supervisor process (`run`), in steps a test can drive (`step`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.watches: dict[str, Watch] = {}
        self._given_up: set[str] = set()
        self._children: set[int] = set()

    def run(self) -> None:
        with locked(self.directory):  # `up` is saving the record that names us: wait for it
            pass
        log.info("supervising the lab in %s (pid %d)", self.directory, os.getpid())
        while self.step(time.monotonic()):
            time.sleep(POLL)
        log.info("the lab record no longer names this supervisor: leaving")

    def step(self, now: float) -> bool:
        """Look once, restart what is due; False when the record no longer names us."""
        _reap(self._children)
        record = self._load()
        if record is None:
            return False
        due = self._observe(record, now)
        if due:
            with locked(self.directory):
                record = self._load()  # again: `up` or `down` may have changed it meanwhile
                if record is None:
                    return False
                self._restart(record, now)
        return True

    def _load(self) -> LabState | None:
        try:
            record = state.load(self.directory)
        except LabStateError as error:
            log.warning("%s", error)
            return None
        if record is None or record.supervisor is None or record.supervisor.pid != os.getpid():
            return None
        return record

    def _observe(self, record: LabState, now: float) -> bool:
        """Update the watches from /proc; is any restart due?"""
        due = False
        for process in record.processes:
            watch = self.watches.get(process.key, Watch())
            if processes.is_running(process):
                if watch.dead_since is not None:  # started again, by `up`
                    watch = Watch()
                self._given_up.discard(process.key)
            elif processes.stopped_on_purpose(process):
                if process.key not in self._given_up:
                    log.info("%s was stopped by the lab: left down", _name(process))
                    self._given_up.add(process.key)
                watch = Watch(dead_since=None)
            elif watch.dead_since is None:
                watch = died(watch, now)
                log.warning("%s died (pid %d)", _name(process), process.pid)
            at = next_restart(watch)
            if at is None and watch.dead_since is not None and process.key not in self._given_up:
                self._given_up.add(process.key)
                log.error("%s died %d times in a row: left down", _name(process), GIVE_UP_AFTER)
            due = due or (at is not None and now >= at)
            self.watches[process.key] = watch
        for key in set(self.watches) - {p.key for p in record.processes}:
            del self.watches[key]
        return due

    def _restart(self, record: LabState, now: float) -> None:
        for process in record.processes:
            watch = self.watches.get(process.key, Watch())
            at = next_restart(watch)
            if processes.is_running(process) or at is None or now < at:
                continue
            started = processes.start(process.role, process.owner, process.argv, Path(process.log))
            self._children.add(started.pid)
            started = replace(started, restarts=process.restarts + 1)
            record = record.with_process(started)
            state.save(self.directory, record)
            self.watches[process.key] = Watch(started_at=now, quick_deaths=watch.quick_deaths)
            log.info(
                "restarted %s: pid %d (restart %d)", _name(process), started.pid, started.restarts
            )


def _name(process: ProcessRecord) -> str:
    return " ".join(filter(None, (process.role, process.owner)))


def _reap(children: set[int]) -> None:
    """Collect the exit status of the processes this supervisor started that have ended (so
    that none stays a zombie), and forget them."""
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def main(args: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if args is None else args)
    if len(given) != 1:
        print("usage: python -m onm.lab.supervise STATE_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    Supervisor(Path(given[0])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
