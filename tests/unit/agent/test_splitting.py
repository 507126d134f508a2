"""Which pairs of a routed edge pool are heavy (onm.agent.splitting; seed 1: "split the load"):
a pair over `split_above` bits/s in its last complete window is heavy; one under it is not, nor
one that bursts inside a window; a pause forgets the rate; the meter is bounded."""

from __future__ import annotations

import datetime as dt

from onm.agent.splitting import WINDOW, PairMeter
from onm.model.ids import EdgePoolId

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
POOL = EdgePoolId("edg-links")
PAIR = (POOL, bytes([10, 0, 0, 2]), bytes([40, 0, 0, 9]))
MBIT = 1_000_000.0
PER_WINDOW = int(MBIT * WINDOW.total_seconds() / 8)
"""Bytes one window holds at exactly 1 Mbit/s."""


def test_a_pair_over_the_threshold_in_a_whole_window_is_heavy_in_the_next() -> None:
    meter = PairMeter()
    assert meter.add(PAIR, PER_WINDOW, MBIT, NOW) is False
    assert meter.add(PAIR, 1, MBIT, NOW + WINDOW / 2) is False  # a burst is not a rate yet
    assert meter.add(PAIR, 100, MBIT, NOW + WINDOW) is True  # the last window was over
    assert meter.add(PAIR, 100, MBIT, NOW + WINDOW * 1.5) is True
    assert meter.heavy_seen == 1
    assert meter.add(PAIR, 100, MBIT, NOW + WINDOW * 2) is False  # 200 bytes: slow again


def test_a_window_exactly_at_the_rate_is_not_over_it() -> None:
    meter = PairMeter()
    meter.add(PAIR, PER_WINDOW, MBIT, NOW)
    assert meter.add(PAIR, 1, MBIT, NOW + WINDOW) is False


def test_a_pair_under_the_threshold_is_never_heavy() -> None:
    meter = PairMeter()
    for n in range(40):  # 0.9 Mbit/s, steadily
        at = NOW + n * WINDOW / 10
        assert meter.add(PAIR, int(PER_WINDOW * 0.9 / 10), MBIT, at) is False


def test_a_pause_of_two_windows_forgets_the_rate() -> None:
    meter = PairMeter()
    meter.add(PAIR, 2 * PER_WINDOW, MBIT, NOW)
    assert meter.add(PAIR, 10, MBIT, NOW + WINDOW) is True
    assert meter.add(PAIR, 10, MBIT, NOW + 3 * WINDOW) is False


def test_the_meter_is_bounded_stale_pairs_first() -> None:
    meter = PairMeter(capacity=4)
    pairs = [(POOL, bytes([10, 0, 0, n]), bytes(4)) for n in range(6)]
    for pair in pairs[:4]:
        meter.add(pair, 1, MBIT, NOW)
    meter.add(pairs[4], 1, MBIT, NOW + 2 * WINDOW)  # the first four are stale by now
    assert set(meter.pairs) == {pairs[4]}
    for pair in pairs[:3]:
        meter.add(pair, 1, MBIT, NOW + 2 * WINDOW)
    meter.add(pairs[5], 1, MBIT, NOW + 2 * WINDOW)  # none stale: the oldest half goes
    assert len(meter.pairs) <= 4 and pairs[5] in meter.pairs
