"""onm.manager.compiler: intent in, per-host snapshots and deltas out, with no database at all.

Every value here is built by hand from `onm.model`; substrate addresses are checked against
`onm.addressing.embed_ipv4` directly, not against the compiler's own helper.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import subprocess
import sys
from dataclasses import replace

import pytest

from onm.addressing import HostPrefix, Location, SubstrateAddress, embed_ipv4
from onm.errors import NotFoundError
from onm.manager.compiler import Intent, changed_hosts, compile_all, compile_host
from onm.model import (
    Encoding,
    Grant,
    Host,
    HostId,
    Network,
    NetworkId,
    Node,
    NodeId,
    Resolution,
    TenantId,
)
from onm.model.ids import PoolId
from onm.model.pool import (
    AllDown,
    CheckKind,
    Health,
    HealthCheck,
    Member,
    Policy,
    Pool,
    PoolState,
    Rotation,
    Scope,
)
from onm.model.snapshot import HostSnapshot, LocalNode, Resident

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CIDR = ipaddress.IPv4Network("10.0.0.0/24")


def host(name: str, rack: int) -> Host:
    prefix = HostPrefix(Location(locale=1, area=1, rack=rack, node=1))
    return Host(HostId(f"hst-{name}"), name, prefix, NOW)


def network(name: str, tenant: str, vni: int, encoding: Encoding = Encoding.SIIT) -> Network:
    net_id, tenant_id = NetworkId(f"net-{name}"), TenantId(f"ten-{tenant}")
    return Network(net_id, tenant_id, name, vni, (CIDR,), encoding, NOW)


def node(name: str, net: Network, on: Host, ip: str, mac: int) -> Node:
    return Node(
        NodeId(f"nod-{name}"), name, net.id, on.id, ipaddress.IPv4Address(ip),
        f"02:00:00:00:00:{mac:02x}", 0, f"onm{name}", NOW,
    )  # fmt: skip


def grant(to: Host, requester: Node, target: Node, expires_at: dt.datetime) -> Grant:
    return Grant(target.network_id, to.id, requester.id, target.ip, target.id, expires_at)


def where(on: Host, net: Network, n: Node) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(embed_ipv4(on.prefix.value, net.vni, n.ip.packed, n.slot))


def resident(on: Host, net: Network, n: Node) -> Resident:
    return Resident(net.id, n.ip, where(on, net, n), n.mac)


X, Y, Z, W = host("x", 1), host("y", 2), host("z", 3), host("w", 4)
NA = network("na", "a", 1)
NB = network("nb", "b", 2)  # another tenant, the same CIDR
A1 = node("a1", NA, X, "10.0.0.11", 1)
A2 = node("a2", NA, Y, "10.0.0.12", 2)
B1 = node("b1", NB, Y, "10.0.0.11", 3)  # a1's IP, in the other tenant's network
LATER = NOW + dt.timedelta(minutes=5)

WORLD = Intent(hosts=(X, Y, Z), networks=(NA, NB), nodes=(A1, A2, B1), grants=())


def snap(intent: Intent, h: Host, revision: int = 7) -> HostSnapshot:
    return compile_host(intent, h.id, revision, NOW)


def test_a_host_with_no_nodes_gets_an_empty_snapshot() -> None:
    assert snap(WORLD, Z) == HostSnapshot(7, Z, (), (), (), ())


def test_a_host_missing_from_the_intent_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        snap(WORLD, W)


def test_local_nodes_and_residents_of_one_network() -> None:
    s = snap(WORLD, X)
    assert (s.revision, s.host, s.networks) == (7, X, (NA,))
    assert s.nodes == (LocalNode(A1, where(X, NA, A1)),)
    # Every node of na wherever it runs, at its own host's prefix; nothing of nb.
    assert s.residents == (resident(X, NA, A1), resident(Y, NA, A2))
    assert s.grants == ()


def test_two_tenants_on_one_cidr_stay_apart() -> None:
    s = snap(WORLD, Y)
    assert s.networks == (NA, NB)
    assert s.nodes == (LocalNode(A2, where(Y, NA, A2)), LocalNode(B1, where(Y, NB, B1)))
    assert s.residents == (resident(X, NA, A1), resident(Y, NA, A2), resident(Y, NB, B1))
    # a1 and b1 share 10.0.0.11 but not a substrate address: the network id differs.
    assert where(X, NA, A1).packed[8:] != where(Y, NB, B1).packed[8:]
    both_here = replace(WORLD, nodes=(A1, replace(B1, host_id=X.id)))
    local = snap(both_here, X).nodes
    assert [n.node.ip for n in local] == [A1.ip, A1.ip]
    assert len({n.substrate_address for n in local}) == 2


def test_grants_carry_where_the_target_lives_until_they_expire() -> None:
    given = grant(X, A1, A2, LATER)
    intent = replace(WORLD, grants=(given,))
    expected = Resolution(NA.id, A1.id, A2.ip, A2.id, where(Y, NA, A2), A2.mac, LATER)
    assert snap(intent, X).grants == (expected,)
    assert snap(intent, Y).grants == ()  # a grant is the asking host's alone
    assert compile_host(intent, X.id, 7, LATER - dt.timedelta(seconds=1)).grants == (expected,)
    assert compile_host(intent, X.id, 7, LATER).grants == ()  # expired at its expiry


def test_a_grant_whose_target_is_gone_is_left_out() -> None:
    intent = Intent((X, Y), (NA,), (A1,), (grant(X, A1, A2, LATER),))
    assert snap(intent, X).grants == ()


def test_grants_are_ordered_by_requester_then_target_ip() -> None:
    a3 = node("a3", NA, X, "10.0.0.3", 4)
    a10 = node("a10", NA, Y, "10.0.0.10", 5)
    given = (grant(X, a3, a10, LATER), grant(X, A1, a10, LATER), grant(X, A1, a3, LATER))
    intent = Intent((X, Y), (NA,), (A1, A2, a3, a10), given)
    order = [(g.requester_id, g.target_ip) for g in snap(intent, X).grants]
    assert order == [(A1.id, a3.ip), (A1.id, a10.ip), (a3.id, a10.ip)]


def test_order_of_the_intent_does_not_matter_and_ips_sort_as_numbers() -> None:
    extra = [node(f"n{i}", NA, X, f"10.0.0.{i}", 10 + i) for i in (2, 10, 100, 30)]
    intent = replace(WORLD, nodes=(*WORLD.nodes, *extra))
    first = snap(intent, X)
    shuffled = list(intent.nodes)
    random.Random(1).shuffle(shuffled)
    reordered = Intent(intent.hosts[::-1], intent.networks[::-1], tuple(shuffled), ())
    assert snap(reordered, X) == first
    assert [str(n.node.ip) for n in first.nodes] == [
        "10.0.0.2", "10.0.0.10", "10.0.0.11", "10.0.0.30", "10.0.0.100",
    ]  # fmt: skip


def test_network_encodings_reach_the_snapshot_and_only_their_hosts() -> None:
    encap = network("ne", "a", 3, Encoding.ENCAP)
    e1 = node("e1", encap, Z, "10.0.0.5", 6)
    intent = replace(WORLD, networks=(*WORLD.networks, encap), nodes=(*WORLD.nodes, e1))
    assert snap(intent, Z).networks == (encap,)
    assert snap(intent, Z).networks[0].encoding is Encoding.ENCAP
    # The encoding decides how packets cross, not where a node lives.
    assert snap(intent, Z).nodes == (LocalNode(e1, where(Z, encap, e1)),)
    switched = replace(intent, networks=(NA, NB, replace(encap, encoding=Encoding.SIIT)))
    before, after = compile_all(intent, 1, NOW), compile_all(switched, 2, NOW)
    assert changed_hosts(before, after) == {Z.id}
    na_encap = replace(intent, networks=(replace(NA, encoding=Encoding.ENCAP), NB, encap))
    assert changed_hosts(before, compile_all(na_encap, 2, NOW)) == {X.id, Y.id}


def test_a_node_moved_between_hosts_changes_both_and_its_network_peers() -> None:
    w1 = node("w1", NB, W, "10.0.0.20", 7)
    start = Intent((X, Y, Z, W), (NA, NB), (A1, A2, B1, w1), (grant(X, A1, A2, LATER),))
    moved = replace(start, nodes=(A1, replace(A2, host_id=Z.id), B1, w1))
    before, after = compile_all(start, 1, NOW), compile_all(moved, 2, NOW)
    # y loses a2, z gains it, x's resident (and its grant) for a2 now point at z;
    # w runs only nb, which did not change.
    assert changed_hosts(before, after) == {X.id, Y.id, Z.id}
    assert after[Y.id].networks == (NB,)
    assert after[Z.id].nodes == (LocalNode(replace(A2, host_id=Z.id), where(Z, NA, A2)),)
    assert after[X.id].grants[0].substrate_address == where(Z, NA, A2)
    assert resident(Z, NA, A2) in after[X.id].residents


def test_the_delta_ignores_the_revision_and_sees_hosts_come_and_go() -> None:
    assert changed_hosts(compile_all(WORLD, 1, NOW), compile_all(WORLD, 9, NOW)) == set()
    grown = replace(WORLD, hosts=(*WORLD.hosts, W))
    assert changed_hosts(compile_all(WORLD, 1, NOW), compile_all(grown, 2, NOW)) == {W.id}
    assert changed_hosts(compile_all(grown, 2, NOW), compile_all(WORLD, 3, NOW)) == {W.id}
    # A network nobody has nodes in is in no snapshot.
    spare = replace(WORLD, networks=(*WORLD.networks, network("spare", "a", 9)))
    assert changed_hosts(compile_all(WORLD, 1, NOW), compile_all(spare, 2, NOW)) == set()


def test_the_compiler_loads_no_database_layer() -> None:
    """Pure means importable without SQLAlchemy: the compiler cannot run SQL by accident."""
    code = "import sys, onm.manager.compiler; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "'onm'" in loaded
    assert "sqlalchemy" not in loaded and "alembic" not in loaded


# --- pools (issue #9) --------------------------------------------------------------------------


def _pool(state: PoolState = PoolState.LIVE) -> Pool:
    check = HealthCheck(CheckKind.NONE, None, "/", 1.0, 1.0, 2, 2)
    return Pool(
        PoolId("pol-web"), NA.id, "web", ipaddress.IPv4Address("10.0.0.3"), "02:00:00:00:00:99",
        Policy.NEAREST, Scope.REQUESTER, AllDown.FAIL_CLOSED, check, Rotation(), state, NOW,
    )  # fmt: skip


def _member(n: Node, rank: int, health: Health, slot: int = 1) -> Member:
    return Member(PoolId("pol-web"), n.id, n.host_id, rank, health, NOW, None, 0.0, slot)


A3 = node("a3", NA, Z, "10.0.0.13", 4)


def test_a_live_pool_reaches_its_network_hosts_with_member_health_and_pool_addresses() -> None:
    pool = _pool()
    intent = Intent(
        hosts=(X, Y, Z), networks=(NA, NB), nodes=(A1, A2, A3, B1), grants=(),
        pools=(pool,), members=(_member(A2, 0, Health.UP), _member(A3, 1, Health.INITIAL)),
    )  # fmt: skip
    [view] = snap(intent, X).pools
    assert view.pool == pool
    assert [(m.node_id, m.health) for m in view.members] == [
        (A2.id, Health.UP),
        (A3.id, Health.INITIAL),
    ]
    address = SubstrateAddress.decode(view.members[0].substrate_address)
    assert (address.host, address.ipv4, address.slot, address.deliver_to_slot) == (
        Y.prefix, pool.ip, 1, True,
    )  # fmt: skip
    assert snap(intent, Y).pools
    proposed = replace(intent, pools=(_pool(PoolState.PROPOSED),))
    assert snap(proposed, X).pools == ()


def test_a_pool_grant_carries_the_ranking_as_addresses_without_members_gone() -> None:
    pool = _pool()
    g = Grant(NA.id, X.id, A1.id, pool.ip, A3.id, LATER, pool.id, (A3.id, A2.id))
    intent = Intent(
        hosts=(X, Y, Z), networks=(NA,), nodes=(A1, A2, A3), grants=(g,), pools=(pool,),
        members=(_member(A2, 0, Health.UP), _member(A3, 1, Health.UP)),
    )  # fmt: skip
    [answer] = snap(intent, X).grants
    assert (answer.pool_id, answer.target_id, answer.mac) == (pool.id, A3.id, pool.mac)
    assert [a.node_id for a in answer.alternatives] == [A3.id, A2.id]
    left = replace(intent, members=(_member(A2, 0, Health.UP),))
    [answer] = snap(left, X).grants
    assert answer.target_id == A2.id and [a.node_id for a in answer.alternatives] == [A2.id]
    assert snap(replace(intent, members=()), X).grants == ()
