"""`onm.lab.supervise`: a dead lab process is started again, never while `up`/`down` hold the lab.

The processes are sleepers started by `onm.lab.processes` (no privileges needed); each is
stopped by its record when the test ends. The restart policy is checked as a pure function; the
loop in-process (this test process recorded as the supervisor) and as the detached process the
lab runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from onm.lab import processes, state, supervise
from onm.lab.state import LabState, ProcessRecord
from onm.lab.supervise import (
    GIVE_UP_AFTER,
    HEALTHY_AFTER,
    MAX_DELAY,
    RESTART_SEC,
    Supervisor,
    Watch,
    died,
    next_restart,
)

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")


# --- the policy ------------------------------------------------------------------------------
def test_a_first_death_is_restarted_after_restart_sec() -> None:
    watch = died(Watch(), 100.0)  # started by `up`: any death is a first one
    assert (watch.quick_deaths, next_restart(watch)) == (0, 100.0 + RESTART_SEC)
    assert next_restart(Watch()) is None  # alive: nothing to do


def test_quick_deaths_back_off_and_end_in_giving_up() -> None:
    watch, now, waits = Watch(), 0.0, []
    for _ in range(GIVE_UP_AFTER + 1):
        watch = died(watch, now)
        at = next_restart(watch)
        if at is None:
            break
        waits.append(round(at - now, 3))
        now = at
        watch = Watch(started_at=now, quick_deaths=watch.quick_deaths)
        now += 1.0  # dies a second after each restart
    assert waits[0] == RESTART_SEC and waits == sorted(waits) and waits[-1] == MAX_DELAY
    assert len(waits) == GIVE_UP_AFTER  # then left down
    assert next_restart(watch) is None


def test_a_process_that_lived_long_enough_starts_afresh() -> None:
    watch = Watch(started_at=0.0, quick_deaths=5)
    assert died(watch, HEALTHY_AFTER + 1).quick_deaths == 0
    assert died(watch, HEALTHY_AFTER - 1).quick_deaths == 6


# --- the loop --------------------------------------------------------------------------------
@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], LabState]]]:
    """A lab record naming one sleeper "agent r"; every process it ever names is stopped."""
    directory = tmp_path / "lab"
    directory.mkdir()
    seen: list[ProcessRecord] = []

    def load() -> LabState:
        record = state.load(directory)
        assert record is not None
        seen.extend(record.processes)
        if record.supervisor is not None:
            seen.append(record.supervisor)
        return record

    sleeper = processes.start("agent", "r", SLEEPER, directory / "agents" / "r.log")
    seen.append(sleeper)
    record = LabState("t", str(directory), "t.yaml", "digest", True).with_process(sleeper)
    state.save(directory, record)
    try:
        yield directory, load
    finally:
        load()
        for process in seen:
            if process.pid != os.getpid():
                processes.stop(process, timeout=5)


def as_supervisor(directory: Path, load: Callable[[], LabState]) -> Supervisor:
    """Record this test process as the lab's supervisor (so `Supervisor.step` acts here)."""
    me = ProcessRecord("supervisor", "", os.getpid(), 0, (), "")
    state.save(directory, replace(load(), supervisor=me))
    return Supervisor(directory)


def agent_r(load: Callable[[], LabState]) -> ProcessRecord:
    """The record of the sleeper "agent r", as the lab's record has it now."""
    found = load().process("agent:r")
    assert found is not None
    return found


def kill(process: ProcessRecord) -> None:
    os.kill(process.pid, signal.SIGKILL)
    os.waitpid(process.pid, 0)  # our child: reaped here


def test_a_killed_process_is_started_again_with_its_command_and_a_restart_counted(
    lab: tuple[Path, Callable[[], LabState]],
) -> None:
    directory, load = lab
    supervisor = as_supervisor(directory, load)
    assert supervisor.step(0.0)
    before = agent_r(load)
    assert processes.is_running(before)
    kill(before)
    assert supervisor.step(10.0)  # seen dead now; due RESTART_SEC later
    assert load().process("agent:r") == before
    assert supervisor.step(10.0 + RESTART_SEC)
    after = load().process("agent:r")
    assert after is not None and after.pid != before.pid and processes.is_running(after)
    assert (after.argv, after.log, after.restarts) == (before.argv, before.log, 1)


def test_nothing_is_restarted_while_the_lab_is_locked_and_down_took_it_away(
    lab: tuple[Path, Callable[[], LabState]],
) -> None:
    directory, load = lab
    supervisor = as_supervisor(directory, load)
    before = agent_r(load)
    results: list[bool] = []
    with supervise.locked(directory):  # as `down` holds it
        kill(before)
        supervisor.step(0.0)
        worker = threading.Thread(target=lambda: results.append(supervisor.step(1.0)))
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive()  # waiting for the lock
        state.save(directory, load().without_process("agent:r"))  # `down` stopped it
    worker.join(5)
    assert results == [True]
    assert load().processes == ()


def test_a_record_naming_another_supervisor_ends_the_loop(
    lab: tuple[Path, Callable[[], LabState]],
) -> None:
    directory, load = lab
    other = ProcessRecord("supervisor", "", os.getpid() + 1, 0, (), "")
    state.save(directory, replace(load(), supervisor=other))
    assert Supervisor(directory).step(0.0) is False
    state.save(directory, replace(load(), supervisor=None))
    assert Supervisor(directory).step(0.0) is False


def test_the_detached_supervisor_restarts_a_killed_process_within_two_seconds(
    lab: tuple[Path, Callable[[], LabState]],
) -> None:
    directory, load = lab
    with supervise.locked(directory):  # as `up` does
        record, started = supervise.ensure(load(), directory)
        assert started and record.supervisor is not None
        state.save(directory, record)
    again, started = supervise.ensure(load(), directory)
    assert not started and again.supervisor == record.supervisor  # kept while it runs
    before = agent_r(load)
    killed = time.monotonic()
    kill(before)
    deadline = killed + 2.0 + 3.0  # two seconds, and a generous margin for a busy machine
    while time.monotonic() < deadline:
        after = load().process("agent:r")
        if after is not None and after.pid != before.pid and processes.is_running(after):
            break
        time.sleep(0.05)
    else:
        pytest.fail("not restarted: " + processes.log_tail(directory / supervise.LOG))
    took = time.monotonic() - killed
    assert after.restarts == 1 and took < 5.0
    assert "restarted agent r" in processes.log_tail(directory / supervise.LOG)
    assert processes.stop(record.supervisor)


def test_a_process_the_lab_stopped_stays_down_until_started_again(
    lab: tuple[Path, Callable[[], LabState]],
) -> None:
    directory, load = lab
    supervisor = as_supervisor(directory, load)
    before = agent_r(load)
    assert processes.stop(before, timeout=5)  # as `systemctl stop` would: on purpose
    assert processes.stopped_on_purpose(before)
    for now in (0.0, 1.0, 30.0):
        assert supervisor.step(now)
    assert load().process("agent:r") == before  # left down
    # `onm lab up` starts it again (the marker goes); from then on a death is a death.
    again = processes.start("agent", "r", SLEEPER, Path(before.log))
    state.save(directory, load().with_process(again))
    assert not processes.stopped_on_purpose(again)
    assert not processes.stop_marker(again).exists()
    kill(again)
    supervisor.step(40.0)
    supervisor.step(40.0 + RESTART_SEC)
    after = load().process("agent:r")
    assert after is not None and after.pid != again.pid and after.restarts == 1
