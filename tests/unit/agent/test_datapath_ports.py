"""`onm.agent.datapath.ports`: when a missing port is tried again and when it is logged."""

from __future__ import annotations

from onm.agent.datapath.ports import FIRST_RETRY, LOG_EVERY, MAX_RETRY, PortRetries


def attempts_over(retries: PortRetries, seconds: float, step: float) -> tuple[int, int]:
    """Try `eth9` whenever due for `seconds`, asked every `step` s (a snapshot arriving each
    time); (attempts made, log lines said). Every attempt fails."""
    made = logged = 0
    now = 0.0
    while now < seconds:
        if retries.due("eth9", now):
            made += 1
            logged += retries.failed("eth9", now).log
        now += step
    return made, logged


def test_a_missing_port_is_logged_once_however_often_snapshots_ask() -> None:
    retries = PortRetries()
    made, logged = attempts_over(retries, 30.0, 0.025)  # 40 looks a second, as in the issue
    assert logged == 1
    # Attempts back off to one per MAX_RETRY s: 30 s cost about 15 attempts, not 1,200.
    assert made <= 30.0 / MAX_RETRY + 6


def test_it_is_logged_again_once_a_minute_with_the_attempts_since() -> None:
    retries = PortRetries()
    first = retries.failed("eth9", 0.0)
    assert (first.log, first.attempts, first.missing_for) == (True, 1, 0.0)
    said = []
    now = 0.0
    while now < 3 * LOG_EVERY + 1:
        now += MAX_RETRY
        verdict = retries.failed("eth9", now)
        if verdict.log:
            said.append(verdict)
    assert len(said) == 3
    assert all(v.attempts == LOG_EVERY / MAX_RETRY for v in said)
    assert [round(v.missing_for) for v in said] == [60, 120, 180]


def test_retries_back_off_from_first_retry_to_max_retry() -> None:
    retries = PortRetries()
    retries.failed("eth9", 0.0)
    assert not retries.due("eth9", FIRST_RETRY / 2)
    assert retries.due("eth9", FIRST_RETRY)
    waits = []
    now = FIRST_RETRY
    for _ in range(8):
        retries.failed("eth9", now)
        due = retries.next_retry()
        assert due is not None
        waits.append(round(due - now, 3))
        now = due
    assert waits == sorted(waits) and waits[0] == 2 * FIRST_RETRY and waits[-1] == MAX_RETRY


def test_a_lost_port_is_tried_again_soon_and_its_return_is_said() -> None:
    retries = PortRetries()
    assert retries.attached("eth9", 0.0) is None  # never missing: nothing to say
    retries.lost("eth9", 10.0)
    assert "eth9" in retries and not retries.due("eth9", 10.0)
    assert retries.due("eth9", 10.0 + FIRST_RETRY)
    assert retries.failed("eth9", 10.1).log is False  # the loss itself was the log line
    back = retries.attached("eth9", 12.5)
    assert back is not None and back.missing_for == 2.5 and back.attempts == 1
    assert "eth9" not in retries and retries.next_retry() is None


def test_ports_that_leave_the_tables_are_forgotten() -> None:
    retries = PortRetries()
    for name in ("eth1", "eth2", "eth3"):
        retries.failed(name, 0.0)
    retries.keep_only({"eth2", "eth7"})
    assert len(retries) == 1 and "eth2" in retries
    assert retries.failed("eth1", 1.0).log  # it comes back as new: logged again, once
