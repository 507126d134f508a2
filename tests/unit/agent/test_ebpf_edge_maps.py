"""onm.agent.datapath.ebpf.edge_maps: edge pools as map entries (pure part).

World `support.edge_world`: pool egress of znet (10.0.0.0/24) with gateways e1 (gw1) and e2
(gw2), route 0.0.0.0/0 -> egress.
"""

from __future__ import annotations

import dataclasses

from onm.agent.datapath.ebpf import layout
from onm.agent.datapath.ebpf.edge_maps import adopt, edge_maps, pool_value
from onm.agent.datapath.ebpf.maps import holds_public_ip, port_value
from onm.agent.flows import PoolRoute
from onm.manager import edge_pools, hosts, public_ips, routes
from onm.model.ids import GatewayId
from onm.model.principal import ADMIN
from support.agent_world import NOW, Lab
from support.agent_world import lab as world
from support.edge_world import edge_world

__all__ = ["world"]


def alive(_gateway: GatewayId) -> bool:
    return True


def test_the_maglev_table_is_the_cores_and_routes_inside_the_network_are_slow(world: Lab) -> None:
    edge = edge_world(world, {"hash": "src,dst,dport"})
    tables = world.r.tables
    made = edge_maps(tables, alive)
    [pool] = tables.edge_pools.values()
    assert made.pool_slots == {pool.id: 0}
    route = PoolRoute.of(pool.id, pool.fields, list(pool.gateways), list(pool.gateways))
    slot_of = {g: s for g, (s, _) in made.gateway_slots.items()}
    assert made.tables[0] == tuple(slot_of[GatewayId(g)] for g in route.table)
    assert len(made.tables[0]) == layout.MAGLEV_STRIDE
    value = layout.PoolValue.from_buffer_copy(made.pools[0])
    assert value.table_size == layout.MAGLEV_STRIDE and value.flags == 0
    assert value.fields == layout.HashFlag.SRC | layout.HashFlag.DST | layout.HashFlag.DPORT
    assert made.routes[(edge.vni, 0, bytes(4))] == 0
    assert made.routes[(edge.vni, 24, bytes((10, 0, 0, 0)))] == layout.ROUTE_INSIDE
    for g in pool.gateways.values():
        gateway = layout.EdgeGatewayValue.from_buffer_copy(made.gateways[slot_of[g.id]])
        assert bytes(gateway.prefix) == g.prefix_bytes
        assert gateway.flags == layout.EdgeGatewayFlag.ALIVE | layout.EdgeGatewayFlag.ACTIVE


def test_slots_stay_and_a_new_gateway_gets_a_new_serial(world: Lab) -> None:
    edge = edge_world(world, {})
    first = edge_maps(world.r.tables, alive)
    [pool] = world.r.tables.edge_pools.values()
    by_name = {g.name: g.id for g in pool.gateways.values()}
    e1, e2 = by_name["e1"], by_name["e2"]
    kept = first.gateway_slots[e1]
    with world.store.write(ADMIN, NOW) as tx:
        hosts.create(tx, "gw3", "fd00:0:101:903::/64", role="edge", external="internet")
        edge_pools.add_gateway(tx, "z/znet/egress", "e3", "gw3", "30.0.100.3")
        edge_pools.remove_gateway(tx, "z/znet/egress", "e2")
    edge.snapshot_all()
    second = edge_maps(world.r.tables, lambda g: g != e1, first)
    assert second.gateway_slots[e1] == kept and e2 not in second.gateway_slots
    [e3] = second.gateway_slots.keys() - {e1}
    slot, serial = second.gateway_slots[e3]
    assert serial == first.next_serial  # never a serial seen before, even in e2's old slot
    dead = layout.EdgeGatewayValue.from_buffer_copy(second.gateways[kept[0]])
    assert dead.flags == layout.EdgeGatewayFlag.ACTIVE  # not alive: keeps no flows
    assert set(second.tables[0]) == {slot}  # the table over the living active ones only


def test_what_the_core_chooses_is_flagged(world: Lab) -> None:
    edge_world(world, {"choice": "least-loaded", "mode": "anycast"})
    [pool] = world.r.tables.edge_pools.values()
    value = pool_value(pool, 16381, overflow=False)
    assert value.flags == layout.EdgePoolFlag.LEAST_LOADED | layout.EdgePoolFlag.ANYCAST
    overflowing = pool_value(pool, 16381, overflow=True)
    assert overflowing.table_size == 0 and overflowing.flags & layout.EdgePoolFlag.OVERFLOW


def test_no_route_and_a_route_to_an_unknown_pool_are_no_route(world: Lab) -> None:
    """The core drops both as NO_ROUTE (no shorter route is tried); the program drops a
    `ROUTE_NO_POOL` entry's, and hands a network with no entry at all to the slow path."""
    edge_world(world, {})
    tables = world.r.tables
    orphan = type(tables)(
        **{f: getattr(tables, f) for f in tables.__dataclass_fields__} | {"edge_pools": {}}
    )
    with world.store.write(ADMIN, NOW) as tx:
        routes.remove(tx, "z/znet", "0.0.0.0/0")
    world.snapshot("r")
    made = edge_maps(world.r.tables, alive)
    vni = world.r.tables.ports[world.nodes["a"].interface].network.vni
    assert made.routes[(vni, 0, bytes(4))] == layout.ROUTE_NO_POOL  # no route: dropped
    assert set(edge_maps(orphan, alive).routes.values()) == {
        layout.ROUTE_NO_POOL,
        layout.ROUTE_INSIDE,
    }


def test_a_public_ip_holder_is_flagged_on_its_port(world: Lab) -> None:
    edge_world(world, {})
    port = world.r.tables.ports[world.nodes["a"].interface]
    assert not holds_public_ip(world.r.tables, port)
    flags = port_value(port, port.network.vni, public_ip=True).flags
    assert flags & layout.PortFlag.PUBLIC_IP


def test_a_local_nodes_public_ip_names_its_holder_by_slot_and_serial(world: Lab) -> None:
    edge = edge_world(world, {})
    assert edge_maps(world.r.tables, alive).holders == {}
    with world.store.write(ADMIN, NOW) as tx:
        public_ips.add(tx, "z/znet/a", "egress", "30.0.100.50")
    edge.snapshot_all()
    tables = world.r.tables
    made = edge_maps(tables, alive)
    [((_node, pool_id), gateway_id)] = tables.public_owners.items()
    a = world.nodes["a"]
    key = (tables.ports[a.interface].network.vni, a.ip.packed, made.pool_slots[pool_id])
    holder = layout.HolderValue.from_buffer_copy(made.holders[key])
    assert (holder.gateway, holder.serial) == made.gateway_slots[gateway_id]
    assert len(made.holders) == 1  # a's only: no other node has a public IP


def test_adopted_maps_keep_the_slots_of_the_pools_and_gateways_still_there(world: Lab) -> None:
    """What a stopped agent wrote, read back without ids (`read_edge`'s form): a pool takes the
    slot whose gateways share its /64s; a gateway that stayed keeps slot and serial, one that
    joined since gets a new serial past every one found, one that left is removed."""
    edge = edge_world(world, {})
    [pool] = world.r.tables.edge_pools.values()
    by_name = {g.name: g.id for g in pool.gateways.values()}
    written = edge_maps(world.r.tables, alive)
    moved = {g: (slot + 7, serial + 40) for g, (slot, serial) in written.gateway_slots.items()}
    old = edge_maps(
        world.r.tables,
        alive,
        dataclasses.replace(written, pool_slots={pool.id: 3}, gateway_slots=moved, next_serial=50),
    )
    found = dataclasses.replace(old, pool_slots={}, gateway_slots={}, tables={})
    with world.store.write(ADMIN, NOW) as tx:
        hosts.create(tx, "gw3", "fd00:0:101:903::/64", role="edge", external="internet")
        edge_pools.add_gateway(tx, "z/znet/egress", "e3", "gw3", "30.0.100.3")
        edge_pools.remove_gateway(tx, "z/znet/egress", "e2")
    edge.snapshot_all()
    [pool] = world.r.tables.edge_pools.values()
    e3 = next(g.id for g in pool.gateways.values() if g.name == "e3")
    adopted = adopt(found, world.r.tables)
    assert adopted.pool_slots == {pool.id: 3}
    assert adopted.gateway_slots == {by_name["e1"]: moved[by_name["e1"]]}
    new = edge_maps(world.r.tables, alive, adopted)
    assert new.gateway_slots[by_name["e1"]] == moved[by_name["e1"]]
    assert new.gateway_slots[e3][1] >= 50 and by_name["e2"] not in new.gateway_slots
    assert new.pool_slots == {pool.id: 3}


def test_adopted_maps_sharing_no_gateway_with_a_pool_give_it_no_slot(world: Lab) -> None:
    edge_world(world, {})
    found = dataclasses.replace(edge_maps(world.r.tables, alive), pool_slots={}, tables={})
    stranger = layout.EdgeGatewayValue(prefix=(layout.u8 * 8)(*bytes(8)), pool=0, serial=9)
    assert (
        adopt(dataclasses.replace(found, gateways={0: bytes(stranger)}), world.r.tables).pool_slots
        == {}
    )
