"""Tests for onm.agent.backoff: the reconnect schedule (issue #7: reconnect within 2 s)."""

from __future__ import annotations

import pytest

from onm.agent.backoff import CAP, Backoff


def test_the_wait_doubles_from_the_first_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(first=0.25, cap=1.0, jitter=0.5)
    assert [backoff.delay(n, 0.0) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]


def test_jitter_takes_off_at_most_its_share_and_rand_picks_where() -> None:
    backoff = Backoff(first=0.25, cap=1.0, jitter=0.5)
    assert backoff.delay(10, 0.5) == pytest.approx(0.75)
    assert backoff.delay(10, 0.999999) == pytest.approx(0.5, abs=1e-5)
    assert backoff.delay(1, 0.5) == pytest.approx(0.1875)


def test_the_cap_holds_after_any_number_of_failures() -> None:
    backoff = Backoff()
    for failures in (1, 2, 3, 10, 100, 10_000, 2**40):
        for rand in (0.0, 0.3, 0.99):
            assert 0 < backoff.delay(failures, rand) <= CAP


def test_the_default_cap_lets_an_agent_back_within_two_seconds() -> None:
    # The longest wait plus a second to connect and receive the snapshot: under 2 s.
    assert max(Backoff().delay(n, 0.0) for n in range(1, 50)) + 1.0 <= 2.0
