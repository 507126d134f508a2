"""onm.manager.resolution: authorized address resolution, grants, and the receiving side's check.

The world (see `support.manager_world.World`): network na (tenant a) with a1 on host x and a2 on
host y; network nb (tenant b) on the same CIDR with b1 on y, at a1's IP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable

import pytest

from onm.addressing import embed_ipv4
from onm.errors import ForbiddenError, InvalidInputError, NotFoundError
from onm.manager import compiler, nodes, pools, reads, resolution
from onm.manager.resolution import RESOLUTION_TTL
from onm.manager.store import Tx
from onm.model import Host, Network, Node, Resolution, Tenant
from support.manager_world import NOW, Actor, Clock, World

AsTenant = Callable[[Tenant], Actor]
AsHost = Callable[[Host], Actor]


def where(host: Host, network: Network, node: Node) -> ipaddress.IPv6Address:
    """The substrate address of `node`, computed by the addressing module itself."""
    return ipaddress.IPv6Address(
        embed_ipv4(host.prefix.value, network.vni, node.ip.packed, node.slot)
    )


def resolve(actor: Actor, network: str, requester: str, ip: str) -> Resolution:
    return actor(lambda tx: resolution.resolve(tx, network, requester, ip))


def grants(actor: Actor, host: Host) -> list[Resolution]:
    """The grants in `host`'s compiled snapshot (unexpired, targets as they stand now)."""
    return list(actor.read(lambda tx: reads.snapshot(tx, host.id).grants))


def test_host_resolves_for_a_node_it_runs(world: World, as_host: AsHost) -> None:
    answer = resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    assert answer == Resolution(
        network_id=world.na.id,
        requester_id=world.a1.id,
        target_ip=ipaddress.IPv4Address("10.0.0.12"),
        target_id=world.a2.id,
        substrate_address=where(world.y, world.na, world.a2),
        mac=world.a2.mac,
        expires_at=NOW + RESOLUTION_TTL,
    )


def test_substrate_address_helper_agrees_with_addressing(world: World) -> None:
    for host, network, node in (
        (world.x, world.na, world.a1),
        (world.y, world.na, world.a2),
        (world.y, world.nb, world.b1),
    ):
        assert compiler.substrate_address(host.prefix, network, node) == where(host, network, node)


def test_same_ip_resolves_per_network(world: World, admin: Actor) -> None:
    """a1 and b1 share 10.0.0.11: the network decides which one answers."""
    in_a = resolve(admin, "a/na", "a2", "10.0.0.11")
    in_b = resolve(admin, "b/nb", "b1", "10.0.0.11")
    assert (in_a.target_id, in_b.target_id) == (world.a1.id, world.b1.id)
    assert in_a.substrate_address == where(world.x, world.na, world.a1)
    assert in_b.substrate_address == where(world.y, world.nb, world.b1)
    assert in_a.substrate_address != in_b.substrate_address


def test_requester_may_be_named_by_id(world: World, as_host: AsHost) -> None:
    answer = resolve(as_host(world.x), world.na.id, world.a1.id, "10.0.0.12")
    assert answer.target_id == world.a2.id


def test_expiry_follows_the_clock(world: World, as_host: AsHost, clock: Clock) -> None:
    clock.advance(dt.timedelta(hours=1))
    answer = resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    assert answer.expires_at == NOW + dt.timedelta(hours=1) + RESOLUTION_TTL


def test_admin_may_inspect_and_no_tenant_may(
    world: World, admin: Actor, as_tenant: AsTenant
) -> None:
    """Answers are substrate addresses, which tenants never see (issue #7 defect 8): otherwise
    a tenant could learn any host's /64 by placing a node there and resolving it."""
    by_host = where(world.y, world.na, world.a2)
    assert resolve(admin, "a/na", "a1", "10.0.0.12").substrate_address == by_host
    for tenant in (world.a, world.b):
        with pytest.raises(ForbiddenError):
            resolve(as_tenant(tenant), "a/na", "a1", "10.0.0.12")
        with pytest.raises(ForbiddenError):
            as_tenant(tenant).read(
                lambda tx: resolution.resolve_from_grant(tx, "a/na", "a1", "10.0.0.12")
            )


@pytest.mark.parametrize(
    ("who", "network", "requester", "ip"),
    [
        # The requester is not in that network (b1 is in nb).
        ("admin", "a/na", "b1", "10.0.0.12"),
        ("admin", "a/na", "nobody", "10.0.0.12"),
        # Host y does not run a1; host x has no node in nb at all.
        ("host_y", "a/na", "a1", "10.0.0.12"),
        ("host_x", "b/nb", "b1", "10.0.0.11"),
        ("host_z", "a/na", "a1", "10.0.0.12"),
        # Nobody has the IP (or it is the gateway's, which no node has).
        ("host_x", "a/na", "a1", "10.0.0.99"),
        ("host_x", "a/na", "a1", "10.0.0.1"),
        ("host_x", "a/na", "a1", "192.168.0.1"),
        ("admin", "a/nothing", "a1", "10.0.0.12"),
    ],
)
def test_refusals_are_not_found(
    world: World,
    admin: Actor,
    as_tenant: AsTenant,
    as_host: AsHost,
    who: str,
    network: str,
    requester: str,
    ip: str,
) -> None:
    actors = {
        "admin": admin,
        "host_x": as_host(world.x),
        "host_y": as_host(world.y),
        "host_z": as_host(world.z),
    }
    with pytest.raises(NotFoundError):
        resolve(actors[who], network, requester, ip)
    assert all(grants(admin, host) == [] for host in (world.x, world.y, world.z))


@pytest.mark.parametrize("ip", ["10.0.0", "10.0.0.300", "::1", "", "a1"])
def test_bad_ip_names_the_field(world: World, as_host: AsHost, ip: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        resolve(as_host(world.x), "a/na", "a1", ip)
    assert caught.value.field == "ip"


def test_grants_only_when_a_host_asks(
    world: World, admin: Actor, as_tenant: AsTenant, as_host: AsHost
) -> None:
    resolve(admin, "a/na", "a1", "10.0.0.12")
    resolve(admin, "a/na", "a2", "10.0.0.11")
    assert grants(admin, world.x) == grants(admin, world.y) == []
    answer = resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    assert grants(admin, world.x) == [answer]
    assert grants(admin, world.y) == []


def test_grant_is_refreshed_not_duplicated(
    world: World, admin: Actor, as_host: AsHost, clock: Clock
) -> None:
    resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    clock.advance(RESOLUTION_TTL / 2)
    again = resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    assert grants(admin, world.x) == [again]
    assert again.expires_at == NOW + RESOLUTION_TTL / 2 + RESOLUTION_TTL


def test_grants_expire(world: World, admin: Actor, as_host: AsHost, clock: Clock) -> None:
    resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    clock.advance(RESOLUTION_TTL - dt.timedelta(seconds=1))
    assert len(grants(admin, world.x)) == 1
    clock.advance(dt.timedelta(seconds=1))
    assert grants(admin, world.x) == []


def test_grants_do_not_change_the_revision(world: World, admin: Actor, as_host: AsHost) -> None:
    before = admin.read(Tx.current_revision)
    resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    assert admin.read(Tx.current_revision) == before


def test_grants_go_with_the_target(world: World, admin: Actor, as_host: AsHost) -> None:
    resolve(as_host(world.x), "a/na", "a1", "10.0.0.12")
    resolve(as_host(world.y), "a/na", "a2", "10.0.0.11")
    admin(lambda tx: nodes.delete_node(tx, "a/na/a2"))
    assert grants(admin, world.x) == []  # a2 was the target
    assert grants(admin, world.y) == []  # a2 was the requester


def verify(actor: Actor, network: str, ip: str, source: str) -> resolution.Verdict:
    return actor.read(lambda tx: resolution.verify(tx, network, ip, source))


def test_verify_true_where_the_node_lives(world: World, as_host: AsHost) -> None:
    source = where(world.x, world.na, world.a1)
    verdict = verify(as_host(world.y), "a/na", "10.0.0.11", str(source))
    assert verdict == resolution.Verdict(True, "ok", source)


def test_verify_false_from_elsewhere(world: World, as_host: AsHost) -> None:
    # b1's address claims a1's IP in na: right IP, wrong network id and host.
    claimed = where(world.y, world.nb, world.b1)
    verdict = verify(as_host(world.y), "a/na", "10.0.0.11", str(claimed))
    assert not verdict.valid
    assert verdict.expected == where(world.x, world.na, world.a1)
    assert str(claimed) in verdict.reason and str(verdict.expected) in verdict.reason


def test_verify_false_for_an_ip_nobody_has(world: World, admin: Actor) -> None:
    verdict = verify(admin, "a/na", "10.0.0.99", "fd00::1")
    assert not verdict.valid
    assert verdict.expected is None
    assert "no node or pool has 10.0.0.99" in verdict.reason


@pytest.mark.parametrize(
    ("ip", "source", "field"),
    [("10.0.0.300", "fd00::1", "ip"), ("10.0.0.11", "10.0.0.1", "substrate_source")],
)
def test_verify_bad_input_names_the_field(
    world: World, admin: Actor, ip: str, source: str, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        verify(admin, "a/na", ip, source)
    assert caught.value.field == field


def test_verify_only_in_networks_the_caller_sees(
    world: World, as_host: AsHost, as_tenant: AsTenant
) -> None:
    source = str(where(world.x, world.na, world.a1))
    with pytest.raises(NotFoundError):
        verify(as_host(world.z), "a/na", "10.0.0.11", source)
    for tenant in (world.a, world.b):
        with pytest.raises(ForbiddenError):
            verify(as_tenant(tenant), "a/na", "10.0.0.11", source)
    assert verify(as_host(world.y), "a/na", "10.0.0.11", source).valid


def _from_grant(actor: Actor, ip: str = "10.0.0.12") -> Resolution | None:
    return actor.read(lambda tx: resolution.resolve_from_grant(tx, "a/na", "a1", ip))


def test_standing_grant_answers_without_a_write(
    world: World, as_host: AsHost, clock: Clock
) -> None:
    host = as_host(world.x)
    assert _from_grant(host) is None  # nothing granted yet: the caller must write
    first = resolve(host, "a/na", "a1", "10.0.0.12")
    clock.advance(RESOLUTION_TTL / 4)
    again = _from_grant(host)
    assert again == first  # same answer, same expiry: the manager's record stays exact
    assert resolve(host, "a/na", "a1", "10.0.0.12") == first


def test_half_expired_grant_is_renewed_by_a_write(
    world: World, as_host: AsHost, clock: Clock
) -> None:
    host = as_host(world.x)
    resolve(host, "a/na", "a1", "10.0.0.12")
    clock.advance(RESOLUTION_TTL / 2 + dt.timedelta(seconds=1))
    assert _from_grant(host) is None
    renewed = resolve(host, "a/na", "a1", "10.0.0.12")
    assert renewed.expires_at == clock() + RESOLUTION_TTL
    assert [g.expires_at for g in grants(host, world.x)] == [renewed.expires_at]


SHORT = dt.timedelta(seconds=6)
"""A manager started with `--resolution-ttl 6`."""


def test_answers_live_the_managers_resolution_ttl(
    world: World, as_host: AsHost, clock: Clock
) -> None:
    host = as_host(world.x)
    answer = host(lambda tx: resolution.resolve(tx, "a/na", "a1", "10.0.0.12", SHORT))
    assert answer.expires_at == NOW + SHORT
    assert [g.expires_at for g in grants(host, world.x)] == [NOW + SHORT]


def test_a_short_grant_stands_for_half_of_its_ttl_then_is_renewed(
    world: World, as_host: AsHost, clock: Clock
) -> None:
    host = as_host(world.x)

    def standing() -> Resolution | None:
        return host.read(
            lambda tx: resolution.resolve_from_grant(tx, "a/na", "a1", "10.0.0.12", SHORT)
        )

    first = host(lambda tx: resolution.resolve(tx, "a/na", "a1", "10.0.0.12", SHORT))
    clock.advance(SHORT / 2 - dt.timedelta(milliseconds=100))
    assert standing() == first
    clock.advance(dt.timedelta(milliseconds=200))  # an agent refreshing in its last quarter
    assert standing() is None
    renewed = host(lambda tx: resolution.resolve(tx, "a/na", "a1", "10.0.0.12", SHORT))
    assert renewed.expires_at == clock() + SHORT


def test_inspection_never_needs_a_write(world: World, admin: Actor) -> None:
    answer = _from_grant(admin)
    assert answer is not None and answer.target_id == world.a2.id
    assert grants(admin, world.x) == []


def _round_robin_pool(admin: Actor, scope: str) -> None:
    """Pool rr on 10.0.0.4, round-robin over a2 and a4 (both on y); a3 and a5 join a1 on x."""

    def build(tx: Tx) -> None:
        nodes.create(tx, "a3", "a/na", "x", "10.0.0.13")
        nodes.create(tx, "a4", "a/na", "y", "10.0.0.14")
        nodes.create(tx, "a5", "a/na", "x", "10.0.0.15")
        settings = {"policy": "round-robin", "scope": scope, "check": {"kind": "none"}}
        pools.create(tx, "rr", "a/na", "10.0.0.4", settings, ["a2", "a4"])

    admin(build)


def _ranking(answer: Resolution) -> list[str]:
    return [a.node_id for a in answer.alternatives]


@pytest.mark.parametrize("scope", ["host", "requester"])
def test_scope_host_gives_a_hosts_requesters_one_choice(
    world: World, admin: Actor, as_host: AsHost, scope: str
) -> None:
    """Round-robin takes a turn per choice: with scope `requester` the second requester of
    host x gets the next member first; with scope `host` it gets the host's choice."""
    _round_robin_pool(admin, scope)
    host = as_host(world.x)
    first = resolve(host, "a/na", "a1", "10.0.0.4")
    second = resolve(host, "a/na", "a3", "10.0.0.4")
    assert (_ranking(second) == _ranking(first)) is (scope == "host")
    assert second.expires_at == first.expires_at  # one clock: each a grant of its own


def test_scope_host_choice_is_made_again_when_half_expired(
    world: World, admin: Actor, as_host: AsHost, clock: Clock
) -> None:
    _round_robin_pool(admin, "host")
    host = as_host(world.x)
    first = resolve(host, "a/na", "a1", "10.0.0.4")
    clock.advance(RESOLUTION_TTL / 2 + dt.timedelta(seconds=1))
    later = resolve(host, "a/na", "a5", "10.0.0.4")  # the host's choice is half-expired
    assert _ranking(later) == list(reversed(_ranking(first)))  # the next turn
    assert _ranking(resolve(host, "a/na", "a3", "10.0.0.4")) == _ranking(later)


def test_answer_and_check_are_functions_of_the_typed_target(world: World) -> None:
    """No transaction: what the IP maps to is a value; the answer and the check follow from it."""
    target = resolution.NodeTarget(world.a2, world.y.prefix)
    answer = resolution.answer_for(world.na, world.a1, world.a2.ip, target, NOW)
    assert (answer.target_id, answer.mac) == (world.a2.id, world.a2.mac)
    assert answer.substrate_address == where(world.y, world.na, world.a2)
    assert answer.expires_at == NOW + RESOLUTION_TTL
    home = where(world.y, world.na, world.a2)
    assert resolution.check(world.na, world.a2.ip, target, home).valid
    elsewhere = where(world.x, world.na, world.a2)
    assert resolution.check(world.na, world.a2.ip, target, elsewhere).expected == home
    nobody = resolution.check(world.na, world.a2.ip, None, home)
    assert (nobody.valid, nobody.expected) == (False, None)
