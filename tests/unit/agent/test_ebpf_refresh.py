"""onm.agent.datapath.ebpf.refresh: due resolutions the kernel used are asked for again."""

from __future__ import annotations

import datetime as dt

import pytest

from onm.agent.datapath.ebpf.layout import USED_SHIFT
from onm.agent.datapath.ebpf.refresh import due, to_ask, used_since_due
from onm.agent.resolution import Key, Lifetime, Mapping

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
MONO = 5_000 << USED_SHIFT
"""CLOCK_MONOTONIC at NOW, in ns."""
UNIT = dt.timedelta(microseconds=(1 << USED_SHIFT) // 1000)
DEFAULT = dt.timedelta(seconds=300)
"""The manager's default lifetime: due in its last 75 s."""


def stamp(ago: dt.timedelta) -> int:
    """The `used` the program would have written `ago` before NOW."""
    return (MONO - int(ago.total_seconds() * 1e9)) >> USED_SHIFT


def resolution(life_left: dt.timedelta, life: dt.timedelta = DEFAULT) -> Mapping:
    """A mapping granted for `life` that has `life_left` of it at NOW."""
    expires = NOW + life_left
    return Mapping(b"\x02" * 6, b"\xfd" * 16, Lifetime.granted(expires - life, expires), expires)


def test_only_resolutions_in_the_last_75_of_their_300_seconds_are_due() -> None:
    cache: dict[Key, Mapping] = {
        ("p1", b"\x0a\x00\x00\x02"): resolution(dt.timedelta(seconds=76)),
        ("p1", b"\x0a\x00\x00\x03"): resolution(dt.timedelta(seconds=74)),
        ("p2", b"\x0a\x00\x00\x03"): resolution(-dt.timedelta(seconds=10)),  # kept past expiry
    }
    assert list(due(cache, NOW)) == [("p1", b"\x0a\x00\x00\x03"), ("p2", b"\x0a\x00\x00\x03")]


@pytest.mark.parametrize("seconds", [6, 8, 60])
def test_a_short_lifetime_is_due_in_its_own_last_quarter(seconds: int) -> None:
    life = dt.timedelta(seconds=seconds)
    early = ("p1", b"\x0a\x00\x00\x02")
    late = ("p1", b"\x0a\x00\x00\x03")
    margin = dt.timedelta(milliseconds=50)
    cache: dict[Key, Mapping] = {
        early: resolution(life / 4 + margin, life),
        late: resolution(life / 4 - margin, life),
    }
    assert list(due(cache, NOW)) == [late]


def test_an_answer_received_expired_is_due_at_once() -> None:
    expires = NOW - dt.timedelta(seconds=1)  # the agent's clock ahead of the manager's
    assert Lifetime.granted(NOW, expires).due(NOW)


def test_used_counts_only_after_the_resolution_became_due() -> None:
    left = dt.timedelta(seconds=30)  # due since 75 s - 30 s = 45 s ago
    lifetime = resolution(left).lifetime
    since_due = dt.timedelta(seconds=75) - left
    assert used_since_due(stamp(dt.timedelta(seconds=1)), lifetime, NOW, MONO)
    assert used_since_due(stamp(since_due - 3 * UNIT), lifetime, NOW, MONO)
    assert not used_since_due(stamp(since_due + 3 * UNIT), lifetime, NOW, MONO)
    assert not used_since_due(0, lifetime, NOW, MONO)  # never


def test_used_since_a_short_lifetime_became_due() -> None:
    life = dt.timedelta(seconds=8)  # due in its last 2 s; 1 s left: due since 1 s
    lifetime = resolution(dt.timedelta(seconds=1), life).lifetime
    assert used_since_due(stamp(dt.timedelta(milliseconds=500)), lifetime, NOW, MONO)
    assert not used_since_due(stamp(dt.timedelta(milliseconds=1500)), lifetime, NOW, MONO)


def test_to_ask_keeps_the_used_due_ones_in_the_cache() -> None:
    used, idle, gone = ("p1", b"\x0a\x00\x00\x03"), ("p1", b"\x0a\x00\x00\x04"), ("p9", b"\x01")
    cache = {key: resolution(dt.timedelta(seconds=10)) for key in (used, idle)}
    recent = stamp(dt.timedelta(seconds=2))
    stamps = [(used, recent), (idle, stamp(dt.timedelta(minutes=5))), (gone, recent)]
    assert to_ask(cache, stamps, NOW, MONO) == [used]
