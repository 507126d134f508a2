"""onm.agent.datapath.ebpf.refresh: due resolutions the kernel used are asked for again."""

from __future__ import annotations

import datetime as dt

from onm.agent.datapath.ebpf.layout import USED_SHIFT
from onm.agent.datapath.ebpf.refresh import due, to_ask, used_since_due
from onm.agent.resolution import REFRESH_BEFORE, Key, Mapping

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
MONO = 5_000 << USED_SHIFT
"""CLOCK_MONOTONIC at NOW, in ns."""
UNIT = dt.timedelta(microseconds=(1 << USED_SHIFT) // 1000)


def stamp(ago: dt.timedelta) -> int:
    """The `used` the program would have written `ago` before NOW."""
    return (MONO - int(ago.total_seconds() * 1e9)) >> USED_SHIFT


def resolution(life_left: dt.timedelta) -> Mapping:
    expires = NOW + life_left
    return Mapping(b"\x02" * 6, b"\xfd" * 16, expires, expires)


def test_only_resolutions_with_less_than_refresh_before_left_are_due() -> None:
    cache: dict[Key, Mapping] = {
        ("p1", b"\x0a\x00\x00\x02"): resolution(REFRESH_BEFORE + dt.timedelta(seconds=1)),
        ("p1", b"\x0a\x00\x00\x03"): resolution(REFRESH_BEFORE - dt.timedelta(seconds=1)),
        ("p2", b"\x0a\x00\x00\x03"): resolution(-dt.timedelta(seconds=10)),  # kept past expiry
    }
    assert list(due(cache, NOW)) == [("p1", b"\x0a\x00\x00\x03"), ("p2", b"\x0a\x00\x00\x03")]


def test_used_counts_only_after_the_resolution_became_due() -> None:
    left = dt.timedelta(seconds=30)  # due since REFRESH_BEFORE - 30 s = 45 s ago
    expires = NOW + left
    since_due = REFRESH_BEFORE - left
    assert used_since_due(stamp(dt.timedelta(seconds=1)), expires, NOW, MONO)
    assert used_since_due(stamp(since_due - 3 * UNIT), expires, NOW, MONO)
    assert not used_since_due(stamp(since_due + 3 * UNIT), expires, NOW, MONO)
    assert not used_since_due(0, expires, NOW, MONO)  # never


def test_to_ask_keeps_the_used_due_ones_in_the_cache() -> None:
    used, idle, gone = ("p1", b"\x0a\x00\x00\x03"), ("p1", b"\x0a\x00\x00\x04"), ("p9", b"\x01")
    cache = {key: resolution(dt.timedelta(seconds=10)) for key in (used, idle)}
    recent = stamp(dt.timedelta(seconds=2))
    stamps = [(used, recent), (idle, stamp(dt.timedelta(minutes=5))), (gone, recent)]
    assert to_ask(cache, stamps, NOW, MONO) == [used]
