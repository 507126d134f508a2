"""Edge pools, gateways, external networks and routes in the manager (issue #10; seed 1):
who may do what, and every bad input refused whole with the field named.

World (`support.manager_world`): network na (tenant a, 10.0.0.0/24) with a1 on host x; here
an external network `internet` (30.0.0.0/16) and edge hosts gw1, gw2 on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from onm.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import edge_pools, events, externals, hosts, networks, routes
from onm.manager.store import Store
from onm.model.edge_pool import Choice, GatewayState, HashField, Mode, Nat
from onm.model.host import HostRole
from onm.model.principal import ADMIN
from support.manager_world import NOW, World, build_world, prefix_at, tenant_principal


@pytest.fixture
def world() -> Iterator[tuple[Store, World]]:
    store = Store("sqlite://")
    store.migrate()
    built = build_world(store)
    with store.write(ADMIN, NOW) as tx:
        externals.create(tx, "internet", "30.0.0.0/16")
        hosts.create(tx, "gw1", prefix_at(1, rack=9), role="edge", external="internet")
        hosts.create(tx, "gw2", prefix_at(2, rack=9), role="edge", external="internet")
    yield store, built
    store.dispose()


def egress(store: Store, **settings: object) -> edge_pools.EdgePoolDetail:
    with store.write(ADMIN, NOW) as tx:
        return edge_pools.create(tx, "egress", "a/na", settings)


def test_an_edge_pool_with_two_gateways_and_a_default_route(world: tuple[Store, World]) -> None:
    store, _ = world
    made = egress(store, hash="src,dst,proto,sport,dport")
    assert (made.pool.nat, made.pool.choice, made.pool.mode) == (Nat.SNAT, Choice.HASH, Mode.DIRECT)
    assert made.pool.hash_fields == tuple(HashField)
    with store.write(ADMIN, NOW) as tx:
        edge_pools.add_gateway(tx, "a/na/egress", "e1", "gw1", "30.0.100.1")
        found = edge_pools.add_gateway(tx, "na/egress", "e2", "gw2", "30.0.100.2")
        route = routes.add(tx, "a/na", "0.0.0.0/0", "egress")
    assert [(g.name, str(g.external_ip), g.state) for g in found.gateways] == [
        ("e1", "30.0.100.1", GatewayState.ACTIVE),
        ("e2", "30.0.100.2", GatewayState.ACTIVE),
    ]
    assert route.prefix == ipaddress.IPv4Network("0.0.0.0/0")
    with store.write(ADMIN, NOW) as tx:
        drained = edge_pools.update_gateway(tx, "a/na/egress", "e2", state="draining")
        assert drained.gateways[1].state is GatewayState.DRAINING
        with pytest.raises(ConflictError, match=r"route 0\.0\.0\.0/0"):
            edge_pools.delete_pool(tx, "a/na/egress")
        routes.remove(tx, "a/na", "0.0.0.0/0")
        edge_pools.delete_pool(tx, "a/na/egress")
    with store.read(ADMIN, NOW) as tx:
        kinds = [e.kind for e in events.list_since(tx)]
    for kind in ("edge_pool.created", "edge_pool.gateway_added", "route.added",
                 "edge_pool.gateway_updated", "route.deleted", "edge_pool.deleted"):  # fmt: skip
        assert kind in kinds


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"hash": "src,port"}, "hash", "'port' is not a field"),
        ({"hash": "src,src"}, "hash", "twice"),
        ({"nat": "masquerade"}, "nat", "not one of snat, none"),
        ({"split_above": 1e9}, "split_above", "only a pool without NAT splits"),
        ({"probe_interval": 0}, "probe_interval", "outside"),
        ({"colour": "red"}, "colour", "unknown setting"),
    ],
)
def test_bad_settings_name_the_field_and_write_nothing(
    world: tuple[Store, World], settings: dict[str, object], field: str, words: str
) -> None:
    store, _ = world
    with pytest.raises(InvalidInputError, match=words) as caught:
        egress(store, **settings)
    assert caught.value.field == field
    with store.read(ADMIN, NOW) as tx:
        assert edge_pools.list_all(tx) == []


def test_a_pool_without_nat_may_split(world: tuple[Store, World]) -> None:
    store, _ = world
    assert egress(store, nat="none", split_above=1e9).pool.split_above == 1e9


@pytest.mark.parametrize(
    ("host", "ip", "error", "words"),
    [
        ("x", "30.0.100.1", InvalidInputError, "not in edge role"),
        ("gw1", "40.0.0.1", InvalidInputError, "not a host address of external network"),
        ("gw1", "30.0.255.255", InvalidInputError, "not a host address"),
        ("gw1", "30.0.100.9", ConflictError, "gateway 'e1'"),
    ],
)
def test_bad_gateways_are_refused(
    world: tuple[Store, World], host: str, ip: str, error: type[Exception], words: str
) -> None:
    store, _ = world
    egress(store)
    with store.write(ADMIN, NOW) as tx:
        edge_pools.add_gateway(tx, "a/na/egress", "e1", "gw1", "30.0.100.9")
    with pytest.raises(error, match=words), store.write(ADMIN, NOW) as tx:
        edge_pools.add_gateway(tx, "a/na/egress", "e2", host, ip)


@pytest.mark.parametrize(
    ("prefix", "error", "words"),
    [
        ("10.0.0.128/25", InvalidInputError, "inside network 'na''s own CIDR 10.0.0.0/24"),
        ("10.0.0.0/24", InvalidInputError, "inside network 'na''s own CIDR"),
        ("30.0.0.0/33", InvalidInputError, "not an IPv4 CIDR"),
        ("30.0.0.1/16", InvalidInputError, "not an IPv4 CIDR"),
        ("30.0.2.0/24", ConflictError, "overlaps the network's route 30.0.0.0/16"),
    ],
)
def test_bad_routes_are_refused(
    world: tuple[Store, World], prefix: str, error: type[Exception], words: str
) -> None:
    store, _ = world
    egress(store)
    with store.write(ADMIN, NOW) as tx:
        routes.add(tx, "a/na", "30.0.0.0/16", "egress")
    with pytest.raises(error, match=words), store.write(ADMIN, NOW) as tx:
        routes.add(tx, "a/na", prefix, "egress")


def test_a_route_takes_only_its_own_networks_edge_pool(world: tuple[Store, World]) -> None:
    store, _ = world
    egress(store)
    refused = pytest.raises(InvalidInputError, match="no edge pool 'egress' in network 'nb'")
    with refused, store.write(ADMIN, NOW) as tx:
        routes.add(tx, "b/nb", "0.0.0.0/0", "egress")


def test_tenants_manage_their_own_edge_pools_and_routes_and_no_gateways(
    world: tuple[Store, World],
) -> None:
    store, w = world
    with store.write(tenant_principal(w.a), NOW) as tx:
        edge_pools.create(tx, "egress", "na", {})
        routes.add(tx, "na", "0.0.0.0/0", "egress")
        with pytest.raises(ForbiddenError):
            edge_pools.add_gateway(tx, "na/egress", "e1", "gw1", "30.0.100.1")
    with pytest.raises(NotFoundError), store.write(tenant_principal(w.b), NOW) as tx:
        edge_pools.get(tx, "a/na/egress")


def test_hosts_in_edge_role_name_their_external_network(world: tuple[Store, World]) -> None:
    store, _ = world
    with store.read(ADMIN, NOW) as tx:
        gw1 = hosts.get(tx, "gw1")
    assert gw1.role is HostRole.EDGE and gw1.external_id is not None
    with store.write(ADMIN, NOW) as tx:
        with pytest.raises(InvalidInputError, match="names its external network"):
            hosts.create(tx, "gw3", prefix_at(3, rack=9), role="edge")
        with pytest.raises(InvalidInputError, match="not one of node, edge"):
            hosts.create(tx, "gw3", prefix_at(3, rack=9), role="router")
        with pytest.raises(NotFoundError, match="no external network 'mars'"):
            hosts.create(tx, "gw3", prefix_at(3, rack=9), role="edge", external="mars")
        with pytest.raises(ConflictError, match="host 'gw1' is on external network"):
            externals.delete_external(tx, "internet")


def test_bad_external_networks_are_refused(world: tuple[Store, World]) -> None:
    store, _ = world
    with store.write(ADMIN, NOW) as tx:
        with pytest.raises(InvalidInputError, match="not an IPv4 CIDR"):
            externals.create(tx, "x", "30.0.0.1/16")
        with pytest.raises(ConflictError, match="exists"):
            externals.create(tx, "internet", "40.0.0.0/8")


def test_a_network_or_host_in_use_by_edge_objects_is_not_deleted(
    world: tuple[Store, World],
) -> None:
    store, _ = world
    egress(store)
    with store.write(ADMIN, NOW) as tx:
        edge_pools.add_gateway(tx, "a/na/egress", "e1", "gw1", "30.0.100.1")
        with pytest.raises(ConflictError, match="still runs gateway 'e1'"):
            hosts.delete_host(tx, "gw1")
        networks.create(tx, "a", "spare", ["10.9.0.0/24"])
        edge_pools.create(tx, "out", "a/spare", {})
        with pytest.raises(ConflictError, match="still has edge pools"):
            networks.delete_network(tx, "a/spare")


def test_anycast_mode_gets_a_64_of_its_own_and_gives_it_back(
    world: tuple[Store, World],
) -> None:
    store, built = world
    first = egress(store, mode="anycast")
    assert first.pool.mode is Mode.ANYCAST
    assert str(first.anycast) == "fd00:0:4000::/64"  # anycast /64 number 0 (version 1)
    with store.write(ADMIN, NOW) as tx:
        second = edge_pools.create(tx, "other", "a/na", {"mode": "anycast"})
        assert str(second.anycast) == "fd00:0:4000:1::/64"  # the lowest number free
        back = edge_pools.update_pool(tx, "a/na/egress", {"mode": "direct"})
        assert back.anycast is None and back.pool.anycast is None
        third = edge_pools.create(tx, "third", "a/na", {"mode": "anycast"})
        assert str(third.anycast) == "fd00:0:4000::/64"  # number 0 is free again
        kept = edge_pools.update_pool(tx, "a/na/third", {"probe_interval": 0.5})
        assert kept.anycast == third.anycast  # other settings keep the /64
    with store.read(tenant_principal(built.a), NOW) as tx:
        seen = edge_pools.detail(tx, "a/na/third")
    assert seen.pool.mode is Mode.ANYCAST and seen.anycast is None  # the substrate's
