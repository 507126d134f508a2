"""Which pairs of a routed edge pool are heavy (onm.agent.splitting; seed 1: "split the load"):
a pair over `split_above` bits/s in its last complete window, or in the current one so far, is
heavy; one under it is not; a pause forgets the rate; the meter is bounded."""

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


def test_a_pair_over_the_threshold_is_heavy_and_stays_so_in_the_next_window() -> None:
    meter = PairMeter()
    assert meter.add(PAIR, PER_WINDOW, MBIT, NOW) is False  # at the rate, not over it
    assert meter.add(PAIR, 1, MBIT, NOW) is True
    assert meter.add(PAIR, 100, MBIT, NOW + WINDOW) is True  # the last window was over
    assert meter.heavy_seen == 1


def test_a_pair_under_the_threshold_is_never_heavy() -> None:
    meter = PairMeter()
    for n in range(40):  # 0.9 Mbit/s, steadily
        at = NOW + n * WINDOW / 10
        assert meter.add(PAIR, int(PER_WINDOW * 0.9 / 10), MBIT, at) is False


def test_a_pause_of_two_windows_forgets_the_rate() -> None:
    meter = PairMeter()
    assert meter.add(PAIR, 2 * PER_WINDOW, MBIT, NOW) is True
    assert meter.add(PAIR, 10, MBIT, NOW + 2 * WINDOW) is False


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
