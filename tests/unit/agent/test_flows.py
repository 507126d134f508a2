"""Flow pinning for edge pools (onm.agent.flows; seed 1): a flow keeps its gateway while it
lives; a gateway dying moves its own flows only; a new gateway or a draining one moves none;
rebalance moves them on purpose; idle pins expire; the table is bounded. Issue #10's figure
"the fraction of 3,000 flows that moved when one of 3 gateways died (its own share, 0 of the
survivors)" measured on the pure code."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

from onm.agent.flows import IDLE, FlowTable, PoolRoute
from onm.model.edge_pool import HashField
from onm.model.ids import EdgePoolId, GatewayId
from onm.selection.flow import DEFAULT_FIELDS, Flow

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
POOL = EdgePoolId("edg-egress")
FIVE = frozenset(HashField)
GATEWAYS = ("e1", "e2", "e3")


def route(active: tuple[str, ...] = GATEWAYS, alive: tuple[str, ...] = GATEWAYS) -> PoolRoute:
    return PoolRoute.of(POOL, FIVE, active, alive)


def flows(count: int) -> list[Flow]:
    draw = random.Random(11)
    src = bytes([10, 0, 0, 2])
    return [Flow(src, draw.randbytes(4), 6, draw.randrange(1024, 65536), 443) for _ in range(count)]


def test_a_gateway_dying_moves_its_own_flows_and_none_of_the_survivors() -> None:
    table, sample = FlowTable(), flows(3_000)
    before = [table.gateway_for(route(), f, NOW) for f in sample]
    shares = Counter(before)
    assert set(shares) == set(GATEWAYS)
    later = NOW + dt.timedelta(seconds=1)
    after = [table.gateway_for(route(alive=("e1", "e3")), f, later) for f in sample]
    moved = [i for i in range(len(sample)) if before[i] != after[i]]
    assert all(before[i] == "e2" for i in moved)  # the survivors' flows stayed
    assert len(moved) == shares["e2"] and table.rehashed == shares["e2"]
    assert abs(len(moved) / 3_000 - 1 / 3) < 0.03
    assert "e2" not in after


def test_a_new_gateway_or_a_draining_one_moves_no_flow() -> None:
    table, sample = FlowTable(), flows(500)
    before = [table.gateway_for(route(), f, NOW) for f in sample]
    grown = route(active=(*GATEWAYS, "e4"), alive=(*GATEWAYS, "e4"))
    assert [table.gateway_for(grown, f, NOW) for f in sample] == before
    drained = route(active=("e1", "e3"), alive=GATEWAYS)  # e2 draining: alive, no new flows
    assert [table.gateway_for(drained, f, NOW) for f in sample] == before
    fresh = flows(1_000)[500:]
    assert "e2" not in {table.gateway_for(drained, f, NOW) for f in fresh}


def test_rebalance_moves_flows_to_the_tables_choice() -> None:
    table, sample = FlowTable(), flows(300)
    for f in sample:
        table.gateway_for(route(active=("e1",), alive=GATEWAYS), f, NOW)
    assert table.rebalance(POOL) == 300
    assert len({table.gateway_for(route(), f, NOW) for f in sample}) == 3


def test_src_dst_keeps_one_pairs_connections_on_one_gateway() -> None:
    table = FlowTable()
    two = PoolRoute.of(POOL, DEFAULT_FIELDS, GATEWAYS, GATEWAYS)
    pair = [Flow(bytes([10, 0, 0, 2]), bytes([30, 0, 2, 2]), 6, port, 443) for port in range(100)]
    assert len({table.gateway_for(two, f, NOW) for f in pair}) == 1


def test_idle_pins_expire_by_protocol_and_the_table_is_bounded() -> None:
    table = FlowTable(capacity=2)
    tcp = Flow(bytes(4), bytes([30, 0, 2, 2]), 6, 1, 80)
    udp = Flow(bytes(4), bytes([30, 0, 2, 2]), 17, 1, 53)
    table.gateway_for(route(), tcp, NOW)
    table.gateway_for(route(), udp, NOW)
    assert table.next_timer() is not None and table.next_timer() <= NOW + IDLE[17]
    assert table.expire(NOW + IDLE[17]) == 1  # UDP went, TCP stays
    assert table.expire(NOW + IDLE[6]) == 1
    for port in range(3):
        table.gateway_for(route(), Flow(bytes(4), bytes(4), 6, port, 1), NOW)
    assert (len(table.pins), table.evicted) == (2, 1)


def test_no_live_gateway_no_answer() -> None:
    assert FlowTable().gateway_for(route(alive=()), flows(1)[0], NOW) is None


def pair_flows(count: int) -> list[Flow]:
    """One source/destination pair's connections, from many source ports."""
    return [
        Flow(bytes([10, 0, 0, 2]), bytes([40, 0, 0, 9]), 6, 40000 + n, 5001) for n in range(count)
    ]


def test_spreading_a_pair_moves_its_pinned_flows_to_their_five_tuple_gateways() -> None:
    table, sample = FlowTable(), pair_flows(40)
    by_pair = PoolRoute.of(POOL, DEFAULT_FIELDS, GATEWAYS, GATEWAYS)
    assert len({table.gateway_for(by_pair, f, NOW) for f in sample}) == 1
    spread = [table.gateway_for(by_pair, f, NOW, spread=FIVE) for f in sample]
    assert set(spread) == set(GATEWAYS)
    moved = table.split
    assert 0 < moved < len(sample)
    # Pinned where they went: the pair slowing down (no spread) moves nothing back.
    assert [table.gateway_for(by_pair, f, NOW) for f in sample] == spread
    assert table.split == moved


def test_pins_per_gateway_are_counted_as_they_come_and_go() -> None:
    table, sample = FlowTable(), flows(600)
    before = [table.gateway_for(route(), f, NOW) for f in sample]
    assert table.pinned == Counter(before) and table.selections == 600
    assert [table.gateway_for(route(), f, NOW) for f in sample] == before
    assert table.selections == 600  # pinned flows choose nothing
    for f in sample:
        table.gateway_for(route(alive=("e1", "e3")), f, NOW)
    assert "e2" not in table.pinned and sum(table.pinned.values()) == 600
    assert table.selections == 600 + table.rehashed
    table.expire(NOW + IDLE[6])
    assert table.pinned == Counter() and table.expired == 600


def test_rebalance_is_counted_and_leaves_other_pools_alone() -> None:
    table, other = FlowTable(), PoolRoute.of(EdgePoolId("edg-other"), FIVE, GATEWAYS, GATEWAYS)
    for f in flows(50):
        table.gateway_for(route(), f, NOW)
        table.gateway_for(other, f, NOW)
    assert table.rebalance(POOL) == 50
    assert (table.rebalanced, len(table.pins), sum(table.pinned.values())) == (50, 50, 50)


# --- least-loaded pools ------------------------------------------------------------------------


def test_a_burst_of_new_flows_spreads_over_equally_loaded_gateways() -> None:
    table = FlowTable()
    chosen = [table.gateway_for(route(), f, NOW, loads={}) for f in flows(30)]
    assert Counter(chosen) == {"e1": 10, "e2": 10, "e3": 10}  # own pins count at once
    assert table.selections == 30


def test_the_other_senders_load_steers_new_flows_away() -> None:
    table = FlowTable()
    others = {GatewayId("e1"): 20, GatewayId("e2"): 5}
    chosen = Counter(table.gateway_for(route(), f, NOW, loads=others) for f in flows(25))
    # e3 takes the first 5 alone, then e2 and e3 share until they reach e1's 20.
    assert chosen == {"e2": 10, "e3": 15}


def test_ties_follow_the_hash_so_equal_loads_choose_as_hash_does() -> None:
    sample = flows(200)
    by_hash = [FlowTable().gateway_for(route(), f, NOW) for f in sample]
    loaded = {GatewayId(g): 0 for g in GATEWAYS}
    assert [FlowTable().gateway_for(route(), f, NOW, loads=loaded) for f in sample] == by_hash


def test_pinned_flows_stay_whatever_the_load() -> None:
    table, sample = FlowTable(), flows(60)
    before = [table.gateway_for(route(), f, NOW, loads={}) for f in sample]
    heavy = {GatewayId("e1"): 1000}
    assert [table.gateway_for(route(), f, NOW, loads=heavy) for f in sample] == before
    assert table.selections == 60  # no choice made for a pinned flow
    fresh = [table.gateway_for(route(), f, NOW, loads=heavy) for f in flows(80)[60:]]
    assert "e1" not in fresh


def test_dead_and_draining_gateways_take_no_new_flow_however_idle() -> None:
    table = FlowTable()
    idle_e2 = {GatewayId("e1"): 50, GatewayId("e3"): 50}
    dead = route(alive=("e1", "e3"))
    assert {table.gateway_for(dead, f, NOW, loads=idle_e2) for f in flows(20)} <= {"e1", "e3"}
    draining = route(active=("e1", "e3"), alive=GATEWAYS)
    fresh = flows(40)[20:]
    assert "e2" not in {table.gateway_for(draining, f, NOW, loads=idle_e2) for f in fresh}
    assert FlowTable().gateway_for(route(alive=()), fresh[0], NOW, loads={}) is None


def test_a_flow_whose_gateway_died_moves_to_the_least_loaded_survivor() -> None:
    table, sample = FlowTable(), flows(30)
    for f in sample:
        table.gateway_for(route(), f, NOW, loads={})
    survivors = route(alive=("e1", "e3"))
    moved = [table.gateway_for(survivors, f, NOW, loads={}) for f in sample]
    assert Counter(moved) == {"e1": 15, "e3": 15} and table.rehashed == 10


def test_an_adopted_pin_keeps_its_gateway_until_that_gateway_dies() -> None:
    """A flow the kernel pinned (the eBPF datapath) is adopted as it is: kept even where the
    table now says otherwise, counted in `pinned`, not a selection; moved when it dies."""
    table = FlowTable()
    flow = flows(1)[0]
    hashed = table.gateway_for(route(), flow, NOW)
    assert hashed is not None
    table.rebalance(POOL)
    other = next(g for g in GATEWAYS if g != hashed)
    selections = table.selections
    table.adopt(POOL, flow, other, NOW)
    assert table.gateway_for(route(), flow, NOW) == other
    assert table.pinned == Counter({other: 1}) and table.selections == selections
    table.adopt(POOL, flow, hashed, NOW)  # again: the pin moves, counted once
    assert table.pinned == Counter({hashed: 1}) and len(table.pins) == 1
    survivors = tuple(g for g in GATEWAYS if g != hashed)
    moved = table.gateway_for(route(alive=survivors), flow, NOW)
    assert moved in survivors and table.rehashed == 1


def test_adopting_into_a_full_table_evicts_the_least_recent_pin() -> None:
    table = FlowTable(capacity=2)
    first, second, third = flows(3)
    for each in (first, second):
        table.gateway_for(route(), each, NOW)
    table.adopt(POOL, third, "e1", NOW)
    assert (POOL, first) not in table.pins and table.evicted == 1 and len(table.pins) == 2
    assert sum(table.pinned.values()) == 2
