"""onm.selection.flow.steering_slot: the slot an anycast-mode flow's source carries (seed 1:
"spoofing a specified source network address ... not actually used")."""

from __future__ import annotations

from collections import Counter

from onm.addressing import STEERING_SLOTS
from onm.selection.flow import DEFAULT_FIELDS, Flow, HashField, flow_hash, steering_slot
from onm.selection.hashing import jhash_words

A, WEB = bytes((10, 0, 0, 2)), bytes((30, 0, 2, 2))
FIVE = frozenset(HashField)


def test_the_slot_is_the_top_six_bits_of_the_flow_hash() -> None:
    # Vector: jhash2 of (10.0.0.2, 30.0.2.2, 0, 0) as the src,dst pool hashes it
    # (test_maglev's vector), shifted right by 32 - 6.
    flow = Flow(A, WEB, 6, 40000, 80)
    expected = jhash_words((0x0A000002, 0x1E000202, 0, 0)) >> 26
    assert steering_slot(flow, DEFAULT_FIELDS) == expected
    assert steering_slot(flow, FIVE) == flow_hash(flow, FIVE) >> 26
    assert STEERING_SLOTS == 64


def test_flows_a_pool_keeps_together_share_a_slot_and_others_spread() -> None:
    flows = [Flow(A, WEB, 6, port, 80) for port in range(40000, 41000)]
    assert {steering_slot(f) for f in flows} == {steering_slot(flows[0])}  # src,dst: one
    counts = Counter(steering_slot(f, FIVE) for f in flows)
    assert set(counts) == set(range(STEERING_SLOTS))  # the 5-tuple: every slot is used
    assert max(counts.values()) < 3 * 1000 / STEERING_SLOTS
